"""Two sessions over real sockets, on both backends: a FETCH or STORE that names a message the
other session just expunged answers OK for the rest (issue 16; RFC 2180 4.1, RFC 9051 7.5.1),
as Dovecot 2.3 does, never NO [EXPUNGEISSUED] for the whole command.

Dovecot's answers, for the record (a private Dovecot, tests/support/dovecot.py; message 2
expunged by the other session): ``FETCH 2:3 (BODY.PEEK[TEXT])`` gives ``* 2 FETCH (BODY[TEXT]
NIL)``, message 3's text and ``OK [EXPUNGEISSUED] Some messages were already expunged``;
RFC822.SIZE is 0, ENVELOPE all NIL, BODYSTRUCTURE an empty text/plain part; ``STORE 2:3
+FLAGS`` answers both and OK; the EXPUNGE is sent at the next command that may send it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.imapd import blobcache, fetch
from tests.integration.imap_support import DOMAIN, PASSWORD, ImapServer, start_imap_server
from tests.support.backends import Backend

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")


class Line:
    """A bare IMAP client on a socket: one command, the answer as lines (literals inlined)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def login(cls, srv: ImapServer) -> Line:
        reader, writer = await asyncio.open_connection(srv.host, srv.port)
        c = cls(reader, writer)
        assert (await reader.readline()).startswith(b"* OK")
        await c.cmd(f"l LOGIN alice@{DOMAIN} \"{PASSWORD}\"")
        return c

    async def cmd(self, line: str) -> list[bytes]:
        tag = line.split(" ", 1)[0].encode()
        self.writer.write(line.encode() + b"\r\n")
        out: list[bytes] = []
        while True:
            item = await asyncio.wait_for(self.reader.readline(), 30)
            while (m := _LITERAL.search(item)) is not None:
                item = item[:-2] + await self.reader.readexactly(int(m.group(1)))
                item += await self.reader.readline()
            out.append(item.rstrip(b"\r\n"))
            if item.startswith(tag + b" "):
                return out

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def message(n: int) -> bytes:
    return (b"From: sender@example.test\r\nTo: alice@example.test\r\nSubject: m%d\r\n"
            b"Message-ID: <race-%d@example.test>\r\n\r\nbody %d\r\n" % (n, n, n))


@pytest.fixture
async def server(tmp_path: Path, backend: Backend) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path, backend=backend)
    try:
        yield srv
    finally:
        await srv.stop()


async def _expunged_elsewhere(server: ImapServer) -> tuple[Line, Line]:
    """Four messages; A and B select INBOX; B expunges message 2 and its content is
    collected (the grace period over), so A can no longer read it."""
    acc = await server.add_user()
    for n in range(1, 5):
        await server.deliver(acc, message(n))
    a, b = await Line.login(server), await Line.login(server)
    await a.cmd("a1 SELECT INBOX")
    await b.cmd("b1 SELECT INBOX")
    await b.cmd("b2 STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert await b.cmd("b3 EXPUNGE") == [b"* 2 EXPUNGE", b"b3 OK EXPUNGE completed"]
    await server.ctx.store.collect_garbage(min_age=0)  # type: ignore[call-arg]
    # nothing of it left in this process's caches either
    blobcache.BLOBS.clear()
    blobcache.METAS.clear()
    fetch.clear_infos()
    return a, b


async def test_fetch_of_message_expunged_elsewhere_answers_ok(server: ImapServer) -> None:
    a, b = await _expunged_elsewhere(server)
    out = await a.cmd("a2 FETCH 2:3 (BODY.PEEK[TEXT])")
    assert out == [
        b"* 2 FETCH (BODY[TEXT] NIL)",
        b"* 3 FETCH (BODY[TEXT] {8}body 3\r\n)",
        b"a2 OK [EXPUNGEISSUED] Some messages were already expunged",
    ]
    # what the record holds is still given; the content items as Dovecot gives them
    out = await a.cmd("a3 FETCH 2 (UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BINARY.SIZE[1])")
    assert out[0].startswith(b"* 2 FETCH (UID 2 RFC822.SIZE %d ENVELOPE (NIL NIL NIL NIL NIL "
                             b"NIL NIL NIL NIL NIL) BODYSTRUCTURE (\"text\" \"plain\" NIL NIL "
                             b"NIL \"7bit\" 0 0 NIL NIL NIL NIL) BINARY.SIZE[1] 0)" % len(message(2)))
    assert out[1].startswith(b"a3 OK [EXPUNGEISSUED]")
    # a FETCH that would set \Seen answers too
    out = await a.cmd("a4 FETCH 1:4 (BODY[])")
    assert [x.split(b" (", 1)[0] for x in out[:-1]] == [
        b"* 1 FETCH", b"* 2 FETCH", b"* 3 FETCH", b"* 4 FETCH"]
    assert b"BODY[] NIL" in out[1]
    assert out[-1].startswith(b"a4 OK [EXPUNGEISSUED]")
    # a STORE naming it answers OK for the others
    out = await a.cmd("a5 STORE 2:3 +FLAGS (\\Flagged)")
    assert out[-1] == b"a5 OK STORE completed"
    assert b"* 3 FETCH (FLAGS (\\Flagged \\Recent \\Seen))" in out
    # the EXPUNGE comes at the next command allowed to send it (RFC 9051 7.5.1)
    assert await a.cmd("a6 NOOP") == [b"* 2 EXPUNGE", b"a6 OK NOOP completed"]
    await a.close()
    await b.close()


async def test_search_and_uid_fetch_around_message_expunged_elsewhere(
    server: ImapServer,
) -> None:
    a, b = await _expunged_elsewhere(server)
    # SEARCH leaves out what it knows is expunged (RFC 2180 4.1.3), content keys included
    assert await a.cmd('a2 SEARCH BODY "body"') == [b"* SEARCH 1 3 4",
                                                    b"a2 OK SEARCH completed"]
    out = await a.cmd("a3 UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert out[0] == b"* 2 EXPUNGE"  # a UID command may send it
    assert out[-1] == b"a3 OK UID FETCH completed"
    await a.close()
    await b.close()
