"""STARTTLS command injection (CVE-2011-0411 class, RFC 3207 4.2): whatever a client or a
man in the middle pipelines in plaintext after STARTTLS never runs as a command over TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.smtpd.harness import SmtpServer, add_user, inbox, start_server

INJECTED = (
    b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
    b"Subject: injected\r\n\r\nowned\r\n.\r\n"
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path)
    await add_user(srv.store, "bob")
    try:
        yield srv
    finally:
        await srv.stop()


def _read_reply(f: object) -> list[bytes]:
    lines = []
    while True:
        line = f.readline()  # type: ignore[attr-defined]
        assert line, "connection closed"
        lines.append(line.rstrip(b"\r\n"))
        if line[3:4] != b"-":
            return lines


def _inject(port: int, host: str, context: ssl.SSLContext, *, same_write: bool) -> list[bytes]:
    with socket.create_connection((host, port), timeout=10) as raw:
        f = raw.makefile("rb")
        _read_reply(f)
        raw.sendall(b"EHLO attacker.test\r\n")
        _read_reply(f)
        if same_write:
            raw.sendall(b"STARTTLS\r\n" + INJECTED)
        else:
            raw.sendall(b"STARTTLS\r\n")
            raw.sendall(INJECTED)
        assert _read_reply(f) == [b"220 2.0.0 Ready to start TLS"]
        with context.wrap_socket(raw, server_hostname="mail.example.test") as tls:
            tf = tls.makefile("rb")
            tls.sendall(b"EHLO attacker.test\r\n")
            ehlo = _read_reply(tf)
            tls.sendall(b"RCPT TO:<bob@example.test>\r\nQUIT\r\n")
            return [*ehlo, *_read_reply(tf), *_read_reply(tf)]


@pytest.mark.parametrize("same_write", [True, False], ids=["one-write", "two-writes"])
@pytest.mark.parametrize("listener", ["smtp", "submission"])
async def test_starttls_injection_discarded(
    server: SmtpServer, listener: str, same_write: bool
) -> None:
    port = server.port if listener == "smtp" else server.submission_port
    try:
        replies = await asyncio.to_thread(
            _inject, port, server.host, server.client_ssl(), same_write=same_write
        )
    except (ssl.SSLError, ConnectionError):
        # Injected bytes that reach the server after it stopped reading plaintext are fed to
        # the TLS layer, which rightly fails the handshake: they still never run as commands.
        assert not same_write, "bytes sent with STARTTLS must be dropped, not break TLS"
        assert await inbox(server.store, "bob@example.test") == []
        return
    # The first reply over TLS answers our EHLO, not an injected command ...
    assert replies[0] == b"250-mail.example.test"
    # ... and the injected MAIL never ran, so RCPT has no transaction to join.
    assert replies[-2] == b"503 5.5.1 Error: need MAIL command"
    assert replies[-1].startswith(b"221 ")
    assert await inbox(server.store, "bob@example.test") == []


async def test_starttls_twice_refused(server: SmtpServer) -> None:
    def run() -> list[bytes]:
        with socket.create_connection((server.host, server.port), timeout=10) as raw:
            f = raw.makefile("rb")
            _read_reply(f)
            raw.sendall(b"EHLO a.test\r\n")
            _read_reply(f)
            raw.sendall(b"STARTTLS\r\n")
            _read_reply(f)
            with server.client_ssl().wrap_socket(raw, server_hostname="x") as tls:
                tf = tls.makefile("rb")
                tls.sendall(b"EHLO a.test\r\nSTARTTLS\r\n")
                ehlo = _read_reply(tf)
                return [*ehlo, *_read_reply(tf)]

    replies = await asyncio.to_thread(run)
    assert b"250-STARTTLS" not in replies and b"250 STARTTLS" not in replies
    assert replies[-1] == b"503 5.5.1 Error: TLS already active"


def test_starttls_under_uvloop(tmp_path: Path) -> None:
    """`mailwright serve` runs on uvloop: the ClientHello must survive there too, every time
    (it once raced into the plaintext buffer), and injected input must still be dropped."""
    import uvloop  # a dependency of mailwright: `serve` runs on it

    async def main() -> tuple[int, list[bytes]]:
        srv = await start_server(tmp_path)
        await add_user(srv.store, "bob")

        def clients() -> tuple[int, list[bytes]]:
            ok = 0
            for _ in range(25):
                with socket.create_connection((srv.host, srv.submission_port), timeout=10) as raw:
                    f = raw.makefile("rb")
                    _read_reply(f)
                    raw.sendall(b"EHLO a.test\r\nSTARTTLS\r\n")
                    _read_reply(f)
                    _read_reply(f)
                    with srv.client_ssl().wrap_socket(raw, server_hostname="x") as tls:
                        tls.sendall(b"NOOP\r\n")
                        ok += _read_reply(tls.makefile("rb")) == [b"250 2.0.0 Ok"]
            injected = _inject(srv.submission_port, srv.host, srv.client_ssl(), same_write=True)
            return ok, injected

        try:
            return await asyncio.to_thread(clients)
        finally:
            await srv.stop()

    ok, injected = uvloop.run(main())
    assert ok == 25
    assert injected[-2] == b"503 5.5.1 Error: need MAIL command"
