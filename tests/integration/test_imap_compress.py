"""COMPRESS=DEFLATE (RFC 4978) over a real socket: after the OK both directions are raw
deflate streams; a later command and its literal-bearing answer go through them."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server

USER = "alice@example.test"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path)
    try:
        yield srv
    finally:
        await srv.stop()


async def test_imap_compress_deflate_roundtrip(server: ImapServer) -> None:
    acc = await server.add_user()
    body = b"Subject: squeeze\r\n\r\n" + b"compressible text " * 500 + b"\r\n"
    await server.deliver(acc, body)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        assert (await reader.readline()).startswith(b"* OK")
        writer.write(f'a LOGIN {USER} "{PASSWORD}"\r\n'.encode())
        line = await reader.readline()
        assert line.startswith(b"a OK") and b"COMPRESS=DEFLATE" in line
        writer.write(b"b COMPRESS DEFLATE\r\n")
        assert await reader.readline() == b"b OK DEFLATE active\r\n"
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        dec = zlib.decompressobj(-15)

        async def send(data: bytes) -> None:
            writer.write(comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH))
            await writer.drain()

        buf = bytearray()

        async def until(marker: bytes) -> bytes:
            while marker not in buf:
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                assert chunk, bytes(buf)
                buf.extend(dec.decompress(chunk))
            end = buf.index(marker) + len(marker)
            out = bytes(buf[:end])
            del buf[:end]
            return out

        await send(b"c SELECT INBOX\r\n")
        out = await until(b"c OK [READ-WRITE] SELECT completed\r\n")
        assert b"* 1 EXISTS\r\n" in out
        await send(b"d FETCH 1 BODY.PEEK[]\r\n")
        out = await until(b"d OK FETCH completed\r\n")
        assert out.startswith(b"* 1 FETCH (BODY[] {%d}\r\n" % len(body) + body + b")\r\n")
        await send(b"e COMPRESS DEFLATE\r\n")
        assert await until(b"\r\n") == b"e NO [COMPRESSIONACTIVE] Compression is already active\r\n"
        await send(b"f LOGOUT\r\n")
        assert (await until(b"f OK LOGOUT completed\r\n")).startswith(b"* BYE")
    finally:
        writer.close()
