"""APPEND over a real socket: refused before the upload, and all or nothing.

RFC 9051 6.3.12 / 7.5: a server may answer the continuation request of an APPEND literal with
a tagged NO; so a message for a missing mailbox (TRYCREATE) or beyond the quota (OVERQUOTA) is
refused before the client uploads it. MULTIAPPEND (RFC 3502) checks the quota against every
message announced so far, and stores every message of the command or none. On SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server
from tests.support.backends import Backend

USER = "alice@example.test"


@pytest.fixture
async def server(tmp_path: Path, backend: Backend) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path, backend=backend)
    try:
        yield srv
    finally:
        await srv.stop()


class Wire:
    """A plain socket speaking IMAP line by line."""

    def __init__(self, server: ImapServer) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=30)
        self.f = self.sock.makefile("rb")
        assert self.line().startswith(b"* OK")
        self.send(f'L LOGIN {USER} "{PASSWORD}"\r\n'.encode())
        assert self.line().startswith(b"L OK")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.f.readline()

    def until(self, tag: bytes) -> list[bytes]:
        out = []
        while True:
            line = self.line()
            assert line, out
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    def status(self) -> bytes:
        self.send(b"S STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ)\r\n")
        out = self.until(b"S")
        assert out[-1].startswith(b"S OK"), out
        return out[0]

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def _msg(n: int, size: int, *, bare_lf: int = 0) -> bytes:
    head = b"From: a@example.test\r\nSubject: m%d\r\n\r\n" % n
    body = b"line\n" * bare_lf
    return head + body + b"x" * (size - len(head) - len(body) - 2) + b"\r\n"


async def test_append_to_missing_mailbox_is_refused_before_the_upload(server: ImapServer) -> None:
    await server.add_user()

    def run() -> None:
        w = Wire(server)
        # a 25 MB copy into a Sent that does not exist: no "+", so nothing is uploaded twice
        w.send(b"a APPEND Sent/Missing {26214400}\r\n")
        assert w.line() == b"a NO [TRYCREATE] Mailbox does not exist\r\n"
        w.send(b"b NOOP\r\n")
        assert w.line() == b"b OK NOOP completed\r\n"
        w.close()

    await asyncio.to_thread(run)


async def test_append_beyond_quota_is_refused_before_the_upload(server: ImapServer) -> None:
    acc = await server.add_user()
    await server.store.update_account(acc.id, quota_bytes=1_000_000)

    def run() -> None:
        w = Wire(server)
        w.send(b"a APPEND INBOX {2000000}\r\n")
        assert w.line() == b"a NO [OVERQUOTA] Quota exceeded\r\n"
        msg = _msg(1, 5000)
        w.send(b"b APPEND INBOX {%d}\r\n" % len(msg))
        assert w.line().startswith(b"+ ")
        w.send(msg + b"\r\n")
        assert re.fullmatch(rb"b OK \[APPENDUID \d+ 1\] APPEND completed\r\n", w.line())
        w.close()

    await asyncio.to_thread(run)


async def test_multiappend_checks_the_quota_for_every_message_up_front(
    server: ImapServer,
) -> None:
    acc = await server.add_user()
    msgs = [_msg(i, 10_000) for i in range(3)]
    await server.store.update_account(acc.id, quota_bytes=25_000)  # two of the three fit

    def run() -> None:
        w = Wire(server)
        before = w.status()
        w.send(b"a APPEND INBOX {%d}\r\n" % len(msgs[0]))
        assert w.line().startswith(b"+ ")
        w.send(msgs[0] + b" {%d}\r\n" % len(msgs[1]))
        assert w.line().startswith(b"+ ")
        w.send(msgs[1] + b" {%d}\r\n" % len(msgs[2]))
        # the third is refused before it is sent, and the command with it
        assert w.line() == b"a NO [OVERQUOTA] Quota exceeded\r\n"
        assert w.status() == before
        w.close()

    await asyncio.to_thread(run)
    inbox = await server.store.get_mailbox(acc.id, "INBOX")
    assert inbox is not None
    assert await server.store.list_messages(inbox.id) == []
    assert (await server.store.usage(acc.id)).messages == 0


async def test_multiappend_is_all_or_nothing(server: ImapServer) -> None:
    """Announced sizes fit the quota but the stored (CRLF) sizes do not, so the store refuses
    the command at the end: nothing is stored, not even for a moment (UIDNEXT and
    HIGHESTMODSEQ do not move)."""
    acc = await server.add_user()
    msgs = [_msg(i, 1000, bare_lf=100) for i in range(3)]  # 1,100 octets each once stored
    await server.store.update_account(acc.id, quota_bytes=3150)  # two of the three fit

    def run() -> None:
        w = Wire(server)
        before = w.status()
        w.send(b"a APPEND INBOX {1000+}\r\n" + msgs[0] + b" (\\Seen) {1000+}\r\n" + msgs[1]
               + b" {1000+}\r\n" + msgs[2] + b"\r\n")
        assert w.line() == b"a NO [OVERQUOTA] Quota exceeded\r\n"
        assert w.status() == before
        w.close()

    await asyncio.to_thread(run)
    inbox = await server.store.get_mailbox(acc.id, "INBOX")
    assert inbox is not None
    assert await server.store.list_messages(inbox.id) == []
    usage = await server.store.usage(acc.id)
    assert (usage.bytes, usage.messages) == (0, 0)
