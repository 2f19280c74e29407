"""SAVEDATE (RFC 8514) on both store backends: the save date is when the message entered its
current mailbox (COPY and MOVE give the copy a new one; the internal date stays), as FETCH
SAVEDATE and the SAVEDBEFORE/SAVEDON/SAVEDSINCE/SAVEDATESUPPORTED search keys see it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import Store

_DATE = re.compile(rb'SAVEDATE "(\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4})"')


def _savedate(line: bytes) -> datetime:
    m = _DATE.search(line)
    assert m is not None, line
    return datetime.strptime(m.group(1).decode(), "%d-%b-%Y %H:%M:%S %z")


async def test_savedate_fetch_and_search(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        before = datetime.now(UTC).replace(microsecond=0)
        for i in range(1, 3):
            await srv.deliver(acc, message(i))
        c = await srv.connected()
        assert b" SAVEDATE" in (await c.cmd("a0 CAPABILITY"))[0]
        await c.cmd("a1 SELECT INBOX")
        out = await c.cmd("a2 FETCH 1:2 (INTERNALDATE SAVEDATE)")
        saved = [_savedate(line) for line in out[:-1]]
        after = datetime.now(UTC) + timedelta(seconds=1)
        assert all(before <= d <= after for d in saved)
        # the fast path (record items only) and the full renderer say the same
        out2 = await c.cmd("a3 UID FETCH 1 (SAVEDATE ENVELOPE)")
        assert _savedate(out2[0]) == saved[0]
        assert out2[0].startswith(b"* 1 FETCH (UID 1 ENVELOPE (")
        # an APPEND with an old internal date is saved now (RFC 8514 1)
        out = await c.cmd(b'a4 APPEND INBOX "01-Jan-2001 10:00:00 +0000" {%d+}\r\n'
                          % len(message(3)) + message(3))
        assert out[-1].startswith(b"a4 OK")
        await c.cmd("a5 NOOP")
        out = await c.cmd("a6 FETCH 3 (INTERNALDATE SAVEDATE)")
        assert b'INTERNALDATE "01-Jan-2001 10:00:00 +0000"' in out[0]
        assert _savedate(out[0]) >= before
        today = datetime.now(UTC).strftime("%d-%b-%Y")
        # RFC 8514 4.2
        assert (await c.cmd(f"a7 SEARCH SAVEDON {today}"))[0] == b"* SEARCH 1 2 3"
        assert (await c.cmd(f"a8 SEARCH SAVEDBEFORE {today}"))[0] == b"* SEARCH"
        assert (await c.cmd("a9 SEARCH SAVEDSINCE 1-Jan-2020 BEFORE 1-Jan-2002"))[0] == (
            b"* SEARCH 3")
        assert (await c.cmd("b1 SEARCH OR SAVEDBEFORE 1-Jan-2020 NOT SAVEDATESUPPORTED"))[0] == (
            b"* SEARCH")
        assert (await c.cmd("b2 UID SEARCH SAVEDATESUPPORTED"))[0] == b"* SEARCH 1 2 3"
        # COPY saves a new message in the target: a save date of its own, not older
        await c.cmd("b3 COPY 1 Archive")
        await c.cmd("b4 SELECT Archive")
        out = await c.cmd("b5 FETCH 1 (SAVEDATE)")
        assert _savedate(out[0]) >= saved[0]
    finally:
        for cl in srv.clients:
            await cl.close()


async def test_savedate_of_the_store(store: Store) -> None:
    srv = Server(store)
    acc = await srv.add_user()
    uid = await srv.deliver(acc, message(1))
    inbox = await store.get_mailbox(acc, "INBOX")
    assert inbox is not None
    dates = await store.save_dates(inbox.id, [uid, 99])
    assert list(dates) == [uid]
    when = dates[uid]
    assert when is not None and abs(when - datetime.now(UTC).timestamp()) < 600
