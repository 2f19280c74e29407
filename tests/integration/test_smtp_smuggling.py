"""SMTP smuggling battery over a real socket (CVE-2023-51764 class): only <CRLF>.<CRLF> ends
DATA, so a second, forged message hidden behind a bare-LF or bare-CR "end of data" is never
delivered; bare LF stays content, bare CR refuses the message (see proto/smtp/data.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.smtpd.harness import SmtpServer, add_user, inbox, start_server

SMUGGLED = (
    b"MAIL FROM:<ceo@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    b"From: ceo@example.test\r\nSubject: smuggled\r\n\r\nwire the money\r\n"
)

# (end-of-data look-alike, accepted as content?)
CASES = [
    (b"\n.\n", True),
    (b"\n.\r\n", True),
    (b"\r\n.\n", True),
    (b"\n..\n", True),
    (b"\r.\r", False),
    (b"\r.\r\n", False),
    (b"\r\n.\r", False),
    (b"\n.\r", False),
    (b"\r\n.\r\r\n", False),
    (b"\r\n\x00.\r\n", True),
    (b"\r\n .\r\n", True),
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path)
    await add_user(srv.store, "alice")
    await add_user(srv.store, "bob")
    try:
        yield srv
    finally:
        await srv.stop()


def _send(host: str, port: int, fake_end: bytes, use_bdat_after: bool) -> list[bytes]:
    with socket.create_connection((host, port), timeout=10) as s:
        f = s.makefile("rb")

        def reply() -> bytes:
            while True:
                line = f.readline()
                assert line, "connection closed"
                if line[3:4] != b"-":
                    return line.rstrip(b"\r\n")

        reply()
        s.sendall(b"EHLO mta.remote.test\r\n")
        reply()
        s.sendall(b"MAIL FROM:<news@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        out = [reply(), reply(), reply()]
        s.sendall(b"Subject: newsletter\r\n\r\nhello" + fake_end + SMUGGLED + b"\r\n.\r\n")
        out.append(reply())
        s.sendall(b"RCPT TO:<alice@example.test>\r\nQUIT\r\n")
        out += [reply(), reply()]
        return out


@pytest.mark.parametrize(("fake_end", "accepted"), CASES, ids=[repr(c[0]) for c in CASES])
async def test_smuggling_not_split(server: SmtpServer, fake_end: bytes, accepted: bool) -> None:
    replies = await asyncio.to_thread(_send, server.host, server.port, fake_end, False)
    assert replies[:3] == [b"250 2.1.0 Ok", b"250 2.1.5 Ok",
                           b"354 End data with <CR><LF>.<CR><LF>"]  # fmt: skip
    if accepted:
        assert replies[3].startswith(b"250 2.0.0 Ok: queued as ")
    else:
        assert replies[3] == b"550 5.6.0 Error: bare <CR> in message content (RFC 5321 2.3.8)"
    # Nothing after the message ran as a command: no transaction is open.
    assert replies[4] == b"503 5.5.1 Error: need MAIL command"
    assert await inbox(server.store, "alice@example.test") == []
    bob = await inbox(server.store, "bob@example.test")
    assert len(bob) == (1 if accepted else 0)
    if accepted:
        # The forged lines are content of the one message, with bare LF made CRLF.
        assert b"Subject: smuggled\r\n" in bob[0] and bob[0].endswith(b"wire the money\r\n\r\n")
