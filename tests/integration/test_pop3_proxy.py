"""PROXY protocol in front of POP3 (issue 8 item 5): the client address from the header is
the one the session sees, so the plaintext-login rule applies to the real client.

Runs the real chain: ``net.server`` reads the header with ``proto.proxy.ProxyParser``, then
hands the connection (and the bytes after the header) to the POP3 listener.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.proto.proxy import V2_SIGNATURE
from tests.pop3d.harness import Pop3Server, add_user, start_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    srv = await start_server(tmp_path, proxy=True)
    await add_user(srv.store, "bob")
    try:
        yield srv
    finally:
        await srv.stop()


def v2_header(src: str, sport: int) -> bytes:
    block = (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address("127.0.0.1").packed
        + struct.pack("!HH", sport, 110)
    )
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(block)) + block


async def exchange(srv: Pop3Server, header: bytes) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    try:
        # The header and the first command in one segment, as HAProxy may send them.
        writer.write(header + b"USER bob@example.test\r\n")
        await writer.drain()
        greeting = await asyncio.wait_for(reader.readline(), 30)
        answer = await asyncio.wait_for(reader.readline(), 30)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        return greeting, answer
    finally:
        writer.close()


REFUSED = b"-ERR [AUTH] Plaintext authentication needs TLS, use STLS first\r\n"
HEADERS = [
    pytest.param(b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 110\r\n", REFUSED, id="v1-remote"),
    pytest.param(v2_header("203.0.113.9", 40000), REFUSED, id="v2-remote"),
    pytest.param(b"PROXY TCP4 127.0.0.2 127.0.0.1 40000 110\r\n", b"+OK\r\n", id="v1-loopback"),
    # No client address in the header: the socket's is HAProxy's own (here loopback), which
    # says nothing of the client, so no loopback exemption.
    pytest.param(b"PROXY UNKNOWN\r\n", REFUSED, id="v1-unknown-is-not-loopback"),
    pytest.param(V2_SIGNATURE + b"\x20\x00\x00\x00", REFUSED, id="v2-local-is-not-loopback"),
    pytest.param(V2_SIGNATURE + b"\x21\x00\x00\x00", REFUSED, id="v2-unspec-is-not-loopback"),
]


@pytest.mark.parametrize(("header", "expected"), HEADERS)
async def test_pop3_proxy_client_address_reaches_session(
    server: Pop3Server, header: bytes, expected: bytes
) -> None:
    greeting, answer = await exchange(server, header)
    assert greeting.startswith(b"+OK")
    assert answer == expected


async def test_pop3_proxy_missing_header_closes(server: Pop3Server) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"USER bob@example.test\r\n")  # no header on a PROXY listener
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 30) == b""
    writer.close()
