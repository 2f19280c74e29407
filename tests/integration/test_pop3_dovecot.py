"""Mailwright's POP3 answers compared with Dovecot's, byte for byte, on the same corpus.

Dovecot (Debian package dovecot-pop3d) is the reference server: both get the same messages,
and for each one RETR, TOP n 0 and TOP n 3 (the whole multi-line answer after the status
line) and LIST sizes must be identical.  Dovecot runs from a scratch directory with its own
config, as the user ``nobody`` (tests/support/dovecot.py); the test fails when it cannot run.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.pop3d.harness import (
    PASSWORD,
    Pop3Server,
    add_message,
    add_user,
    corpus_messages,
    start_server,
)
from tests.support.dovecot import DEFAULT_PASSWORD, private_dovecot

CORPUS = corpus_messages()
pytestmark = [
    pytest.mark.interop,
]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[int]:
    """Dovecot's POP3 serving bob the corpus (a missing Dovecot fails the test)."""

    def prepare(homes: Path) -> None:
        maildir = homes / "bob" / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        # Names with increasing timestamps: Dovecot numbers new messages in that order.
        for i, path in enumerate(CORPUS):
            (maildir / "cur" / f"{1_000_000_000 + i}.M{i}P1.test:2,").write_bytes(path.read_bytes())

    with private_dovecot(protocol="pop3", prepare=prepare) as reference:
        yield reference.port


@pytest.fixture
async def mailwright(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    srv = await start_server(tmp_path)
    account = await add_user(srv.store, "bob")
    for path in CORPUS:
        await add_message(srv.store, account, path.read_bytes())
    try:
        yield srv
    finally:
        await srv.stop()


class Client:
    """A raw POP3 client that keeps multi-line answers exactly as sent (still dot-stuffed)."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        assert self.command(b"USER " + user.encode()).startswith(b"+OK")
        assert self.command(b"PASS " + password.encode()).startswith(b"+OK")

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.file.readline()

    def multi(self, line: bytes) -> bytes:
        status = self.command(line)
        assert status.startswith(b"+OK"), (line, status)
        body = b""
        while not (body.endswith(b"\r\n.\r\n") or body == b".\r\n"):
            body += self.file.readline()
        return body

    def close(self) -> None:
        self.command(b"QUIT")
        self.sock.close()


def answers(port: int, user: str, password: str
            ) -> tuple[list[int], list[tuple[bytes, bytes, bytes]]]:
    c = Client(port, user, password)
    sizes = [int(line.split()[1]) for line in c.multi(b"LIST").split(b"\r\n")[:-2]]
    out = [
        (c.multi(b"RETR %d" % n), c.multi(b"TOP %d 0" % n), c.multi(b"TOP %d 3" % n))
        for n in range(1, len(sizes) + 1)
    ]
    c.close()
    return sizes, out


async def test_pop3_dovecot_same_bytes_for_retr_top_and_list(mailwright: Pop3Server, dovecot: int) -> None:
    ours_sizes, ours = await asyncio.to_thread(answers, mailwright.port, "bob@example.test", PASSWORD)
    theirs_sizes, theirs = await asyncio.to_thread(answers, dovecot, "bob", DEFAULT_PASSWORD)
    assert len(ours) == len(theirs) == len(CORPUS)
    differ = {
        path.name: [what for what, a, b in zip(("RETR", "TOP 0", "TOP 3"), mine, ref, strict=True) if a != b]
        for path, mine, ref in zip(CORPUS, ours, theirs, strict=True)
        if mine != ref
    }
    assert differ == {}
    assert ours_sizes == theirs_sizes
