"""POP3 and IMAP on one mailbox at once (issue 6): IMAP sees POP3's deletions only after
QUIT, POP3's listing is not disturbed by IMAP's expunges, RETR makes \\Seen for IMAP, and
UIDL is the IMAP identity."""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.pop3d.maildrop import uidl_for
from tests.pop3d.harness import PASSWORD, Pop3Server, add_message, add_user, start_server

USER = "bob@example.test"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    srv = await start_server(tmp_path, imap=True)
    account = await add_user(srv.store, "bob")
    for i in range(1, 4):
        await add_message(srv.store, account, b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
    try:
        yield srv
    finally:
        await srv.stop()


def imap_login(srv: Pop3Server) -> imaplib.IMAP4:
    assert srv.imap_port is not None
    imap = imaplib.IMAP4(srv.host, srv.imap_port, timeout=30)
    imap.login(USER, PASSWORD)
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    return imap


def pop_login(srv: Pop3Server) -> poplib.POP3:
    pop = poplib.POP3(srv.host, srv.port, timeout=30)
    pop.user(USER)
    pop.pass_(PASSWORD)
    return pop


def noop_untagged(imap: imaplib.IMAP4) -> tuple[list[bytes], list[bytes]]:
    imap.noop()
    return imap.untagged_responses.pop("EXPUNGE", []), imap.untagged_responses.pop("EXISTS", [])


async def test_pop3_imap_deletions_visible_only_after_quit(server: Pop3Server) -> None:
    def run() -> None:
        imap = imap_login(server)
        pop = pop_login(server)
        pop.dele(2)
        assert noop_untagged(imap)[0] == []  # marked in POP3 only: nothing expunged yet
        assert imap.search(None, "ALL")[1] == [b"1 2 3"]
        pop.quit()  # UPDATE state: the deletion happens now
        expunged, _ = noop_untagged(imap)
        assert expunged == [b"2"]
        assert imap.search(None, "ALL")[1] == [b"1 2"]
        imap.logout()

    await asyncio.to_thread(run)


async def test_pop3_imap_expunge_does_not_disturb_pop3_listing(server: Pop3Server) -> None:
    def run() -> None:
        imap = imap_login(server)
        pop = pop_login(server)
        before = pop.list()[1], pop.uidl()[1], pop.stat()
        imap.store("1", "+FLAGS", r"(\Deleted)")
        imap.expunge()
        assert pop.list()[1] == before[0]
        assert pop.uidl()[1] == before[1]
        assert pop.stat() == before[2]
        assert pop.retr(2)[1][0] == b"Subject: m2"
        pop.quit()
        imap.logout()

    await asyncio.to_thread(run)


async def test_pop3_imap_retr_marks_seen_and_uidl_is_imap_identity(server: Pop3Server) -> None:
    def run() -> None:
        imap = imap_login(server)
        typ, data = imap.status("INBOX", "(UIDVALIDITY)")
        assert typ == "OK"
        match = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert match is not None
        uidvalidity = int(match.group(1))
        typ, data = imap.uid("FETCH", "1:*", "(UID)")
        uids = [int(m) for m in re.findall(rb"UID (\d+)", b" ".join(d for d in data if isinstance(d, bytes)))]
        pop = pop_login(server)
        assert [line.split()[1].decode() for line in pop.uidl()[1]] == [
            uidl_for(uidvalidity, uid) for uid in uids
        ]
        pop.retr(3)
        pop.top(1, 0)
        pop.quit()
        imap.noop()
        typ, data = imap.fetch("1:3", "(FLAGS)")
        flags = b" ".join(d for d in data if isinstance(d, bytes))
        assert re.search(rb"3 \(FLAGS \([^)]*\\Seen", flags)
        assert not re.search(rb"1 \(FLAGS \([^)]*\\Seen", flags)
        imap.logout()

    await asyncio.to_thread(run)
