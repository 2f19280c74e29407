"""Isolation (issue 10, item 5): no command in any protocol reaches another account's data.

Against a real server over real sockets: alice tries every name trick (other users' names,
`..`, `/`, `%`, `*`, namespace-looking prefixes) with SELECT, EXAMINE, STATUS, APPEND, COPY,
MOVE, LIST, RENAME and DELETE; uses bob's UIDs in IMAP and POP3; and sends as bob on
submission. Bob's messages carry a marker that must never appear in anything alice receives,
and bob's mailboxes must be exactly as they were afterwards.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, MailwrightServer

from .netclients import LineClient, no_verify

pytestmark = pytest.mark.slow

ALICE = "alice@example.test"
BOB = "bob@example.test"
MARK = b"BOB-SECRET"

NAMES = [
    "bob@example.test/INBOX", "bob@example.test", "bob", "bob/INBOX", "../bob/INBOX",
    "../bob@example.test/INBOX", "/bob@example.test/INBOX", "//bob/INBOX", "INBOX/../../bob",
    "~bob/INBOX", "~bob@example.test/INBOX", "#shared/bob/INBOX", "#users/bob/INBOX",
    "Other Users/bob/INBOX", "user/bob/INBOX", "user.bob.INBOX", "Shared/bob", "%", "*",
    "%/INBOX", "*/INBOX", "Secret", "../Secret", "/Secret", "Secret/..", ".", "..", "/", "",
    "INBOX/..", "inbox/../../bob", "\\\\bob\\INBOX", "bob\x00INBOX", "&AC4ALg-/bob",
]  # fmt: skip


def quote(name: str) -> bytes:
    return b'"' + name.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class Imap:
    def __init__(self, port: int, user: str) -> None:
        self.c = LineClient(port)
        self.seen = bytearray(self.c.line())
        self.n = 0
        assert self.ok(b"LOGIN %s %s" % (quote(user), quote(PASSWORD)))

    def cmd(self, command: bytes) -> list[bytes]:
        self.n += 1
        tag = b"t%d" % self.n
        self.c.send(tag + b" " + command + b"\r\n")
        lines = self.c.tagged(tag)
        for line in lines:
            self.seen += line
        return lines

    def ok(self, command: bytes) -> bool:
        return self.cmd(command)[-1].split(b" ", 2)[1] == b"OK"

    def append(self, name: str, data: bytes) -> bytes:
        self.n += 1
        tag = b"t%d" % self.n
        self.c.send(tag + b" APPEND " + quote(name) + b" {%d}\r\n" % len(data))
        first = self.c.line()
        if first.startswith(b"+"):
            self.c.send(data + b"\r\n")
            first = self.c.tagged(tag)[-1]
        self.seen += first
        return first

    def close(self) -> None:
        self.cmd(b"LOGOUT")
        self.c.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    root: Path = tmp_path_factory.mktemp("isolation")
    srv = MailwrightServer(root / "mw")
    with srv.cfg.open("a") as f:
        f.write("\n[mailauth]\nverify = false\n")
    srv.add_user(ALICE)
    srv.add_user(BOB)
    srv.start()
    try:
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as s:
            s.sendmail("x@remote.test", [ALICE], b"Subject: for alice\r\n\r\nalice's own\r\n")
            for i in range(5):
                s.sendmail("x@remote.test", [BOB], b"Subject: %s %d\r\n\r\n%s body\r\n"
                           % (MARK, i, MARK))  # fmt: skip
        bob = Imap(srv.port("imap"), BOB)
        assert bob.ok(b"CREATE Secret")
        assert bob.append("Secret", b"Subject: " + MARK + b" in Secret\r\n\r\nx\r\n").startswith(
            b"t"
        )
        bob.close()
        yield srv
    finally:
        srv.stop()


def _refused(tagged: bytes) -> bool:
    return tagged.split(b" ", 2)[1] in (b"NO", b"BAD")


def bob_state(server: MailwrightServer) -> dict[str, list[bytes]]:
    return {name: server.mailbox(BOB, name) for name in ("INBOX", "Secret", "Trash")}


def test_isolation_imap_names_never_reach_another_account(server: MailwrightServer) -> None:
    before = bob_state(server)
    alice = Imap(server.port("imap"), ALICE)
    try:
        for name in NAMES:
            q = quote(name)
            # none of these names is one of alice's mailboxes: every access is refused
            for verb in (b"SELECT", b"EXAMINE"):
                assert _refused(alice.cmd(verb + b" " + q)[-1]), name
            assert _refused(alice.cmd(b"STATUS " + q + b" (MESSAGES UIDNEXT UNSEEN SIZE)")[-1])
            assert _refused(alice.append(name, b"Subject: from alice\r\n\r\nplanted\r\n"))
            alice.cmd(b"SUBSCRIBE " + q)
            alice.cmd(b'LIST "" ' + q)
            alice.cmd(b"LIST " + q + b' "*"')
            alice.cmd(b"LIST " + q + b' "%"')
        listed = b"".join(alice.cmd(b'LIST "" "*" RETURN (STATUS (MESSAGES))'))
        assert b"Secret" not in listed and b"bob" not in listed, listed
        alice.cmd(b'LSUB "" "*"')
        alice.cmd(b"NAMESPACE")
        assert alice.ok(b"SELECT INBOX")
        for name in NAMES:
            assert _refused(alice.cmd(b"COPY 1:* " + quote(name))[-1]), name
            assert _refused(alice.cmd(b"UID COPY 1:* " + quote(name))[-1]), name
        alice.cmd(b"UID MOVE 1:* " + quote("../bob/INBOX"))
        alice.cmd(b"RENAME Trash " + quote("../bob@example.test/Trash"))
        alice.cmd(b"DELETE " + quote("../bob@example.test/Secret"))
        alice.cmd(b"DELETE " + quote("Secret"))
    finally:
        alice.close()
    assert MARK not in alice.seen, bytes(alice.seen)[:2000]
    assert b"SERVERBUG" not in alice.seen
    assert bob_state(server) == before


def test_isolation_imap_and_pop3_with_anothers_uids(server: MailwrightServer) -> None:
    before = bob_state(server)
    # bob has UIDs 1..5 in INBOX; alice has fewer: bob's UIDs mean nothing in her mailbox
    alice = Imap(server.port("imap"), ALICE)
    try:
        assert alice.ok(b"SELECT INBOX")
        for cmd in (b"UID FETCH 1:10 (BODY.PEEK[] FLAGS)", b"FETCH 1:* (BODY.PEEK[])",
                    b"UID FETCH 4294967295 BODY[]", b"FETCH 2:5 BODY[]", b"UID SEARCH ALL",
                    b"SEARCH TEXT " + MARK, b"UID STORE 2:5 +FLAGS (\\Deleted)",
                    b"UID EXPUNGE 2:5", b"UID COPY 2:5 INBOX", b"UID MOVE 2:5 Trash",
                    b"FETCH 1:* (UID)", b"SELECT INBOX (QRESYNC (1 1 2:5))"):  # fmt: skip
            alice.cmd(cmd)
        search = [line for line in alice.seen.split(b"\r\n") if b"* SEARCH" in line]
        assert search and all(line.split()[2:] in ([], [b"1"]) for line in search), search
    finally:
        alice.close()
    assert MARK not in alice.seen

    pop = LineClient(server.port("pop3"))
    seen = bytearray(pop.line())
    pop.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
    seen += pop.line()
    logged_in = pop.line()
    assert logged_in.startswith(b"+OK"), logged_in
    for cmd in (b"STAT", b"RETR 2", b"RETR 5", b"TOP 3 10", b"DELE 2", b"DELE 0", b"LIST 4",
                b"UIDL 5", b"RETR 1", b"RETR -1", b"RETR 4294967297"):  # fmt: skip
        pop.send(cmd + b"\r\n")
        line = pop.line()
        seen += line
        if line.startswith(b"+OK") and cmd.split()[0] in (b"RETR", b"TOP"):
            while (more := pop.line()) != b".\r\n":
                seen += more
    pop.send(b"QUIT\r\n")
    seen += pop.line()
    pop.close()
    assert MARK not in seen
    assert bob_state(server) == before
    assert any(b"alice's own" in m for m in server.mailbox(ALICE))


@pytest.mark.parametrize("sender", [BOB, "BOB@EXAMPLE.TEST", "bob+x@example.test",
                                    "bob@Example.Test", '"bob"@example.test',
                                    "bob@other.test"])  # fmt: skip
def test_isolation_submission_refuses_anothers_sender(
    server: MailwrightServer, sender: str
) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=60) as s:
        s.starttls(context=no_verify())
        s.login(ALICE, PASSWORD)
        code, reply = s.mail(sender)
        assert code == 553 or code // 100 == 5, (sender, code, reply)
        s.rset()
        # her own address works on the same connection
        assert s.mail("alice+tag@example.test")[0] == 250


def test_isolation_races_on_same_named_mailboxes(server: MailwrightServer) -> None:
    # Alice and bob create, fill, read, rename and delete mailboxes of the same names at the
    # same time: each only ever sees their own messages.
    import threading

    seen: dict[str, bytes] = {}
    errors: list[BaseException] = []

    def churn(user: str, mark: bytes) -> None:
        try:
            c = Imap(server.port("imap"), user)
            for i in range(15):
                c.cmd(b"CREATE Race")
                c.append("Race", b"Subject: " + mark + b" %d\r\n\r\n%s\r\n" % (i, mark))
                c.cmd(b"SELECT Race")
                c.cmd(b"UID FETCH 1:* (BODY.PEEK[])")
                c.cmd(b"STATUS Race2 (MESSAGES)")
                c.cmd(b"UNSELECT")
                c.cmd(b"RENAME Race Race2")
                c.cmd(b"DELETE Race2")
            seen[user] = bytes(c.seen)
            c.close()
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=churn, args=(ALICE, b"ALICE-RACE")),
               threading.Thread(target=churn, args=(BOB, b"BOB-RACE"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert b"ALICE-RACE" in seen[ALICE] and b"BOB-RACE" not in seen[ALICE]
    assert b"BOB-RACE" in seen[BOB] and b"ALICE-RACE" not in seen[BOB]
    assert b"SERVERBUG" not in seen[ALICE] + seen[BOB]
