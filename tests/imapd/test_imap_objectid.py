"""OBJECTID (RFC 8474): MAILBOXID, EMAILID and THREADID, on both store backends."""

from __future__ import annotations

import re

from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import Store


def _mailboxid(line: bytes) -> bytes:
    m = re.search(rb"MAILBOXID \(([A-Za-z0-9_-]{1,255})\)", line)
    assert m is not None, line
    return m.group(1)


async def test_objectid_mailboxid_emailid_threadid(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1))
        await srv.deliver(acc, message(2))
        c = await srv.connected()
        assert b"OBJECTID" in (await c.cmd("a CAPABILITY"))[0].split()
        # RFC 8474 4.1: CREATE says the new mailbox's id
        out = await c.cmd("b CREATE Projects")
        projects = _mailboxid(out[-1])
        assert out[-1].startswith(b"b OK [MAILBOXID (")
        # 4.3: STATUS MAILBOXID, also through LIST-STATUS
        out = await c.cmd("c STATUS Projects (MAILBOXID MESSAGES)")
        assert out[0] == b"* STATUS Projects (MAILBOXID (%s) MESSAGES 0)" % projects
        # the id survives RENAME
        await c.cmd("d RENAME Projects Archive/Projects")
        out = await c.cmd('e LIST "" Archive/Projects RETURN (STATUS (MAILBOXID))')
        assert out[1] == b"* STATUS Archive/Projects (MAILBOXID (%s))" % projects
        # a new mailbox of the same name is a different mailbox: never the same id
        await c.cmd("f DELETE Archive/Projects")
        assert _mailboxid((await c.cmd("g CREATE Archive/Projects"))[-1]) != projects
        # 4.2: SELECT and EXAMINE say it too
        inbox = _mailboxid((await c.cmd("h STATUS INBOX (MAILBOXID)"))[0])
        assert inbox != projects
        out = await c.cmd("i EXAMINE INBOX")
        assert b"* OK [MAILBOXID (%s)] Mailbox id" % inbox in out
        out = await c.cmd("j SELECT INBOX")
        assert b"* OK [MAILBOXID (%s)] Mailbox id" % inbox in out
        # 5.1/5.3: EMAILID per message content; THREADID NIL (5.2: not computed)
        out = await c.cmd("k FETCH 1:2 (EMAILID THREADID)")
        ids = [re.search(rb"EMAILID \((M[0-9a-f]{32})\)", line).group(1)  # type: ignore[union-attr]
               for line in out[:2]]
        assert ids[0] != ids[1]
        assert out[0] == b"* 1 FETCH (EMAILID (%s) THREADID NIL)" % ids[0]
        # the id stays with the message through COPY and MOVE
        await c.cmd("l COPY 1 Archive/Projects")
        await c.cmd("m MOVE 2 Archive/Projects")
        out = await c.cmd("n SELECT Archive/Projects")
        out = await c.cmd("o UID FETCH 1:* (EMAILID)")
        assert out[:2] == [b"* 1 FETCH (UID 1 EMAILID (%s))" % ids[0],
                           b"* 2 FETCH (UID 2 EMAILID (%s))" % ids[1]]
        # 6: SEARCH EMAILID / THREADID
        assert (await c.cmd(b"p SEARCH EMAILID %s" % ids[1]))[0] == b"* SEARCH 2"
        assert (await c.cmd("q SEARCH EMAILID Mnothere"))[0] == b"* SEARCH"
        assert (await c.cmd("r SEARCH THREADID T1"))[0] == b"* SEARCH"
        assert (await c.cmd('s SEARCH EMAILID "a b"'))[-1].startswith(b"s BAD")
    finally:
        for c in srv.clients:
            await c.close()
