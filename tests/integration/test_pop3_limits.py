"""Limits and endings over a real socket: autologout, graceful shutdown, error floods,
oversized lines.  Uses ``pop3d.listener.serve`` with a short idle timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailwright.config import ListenerConfig
from mailwright.net.server import Connection, ListenerSet
from mailwright.pop3d.listener import MAX_ERRORS, serve
from mailwright.pop3d.session import Pop3Session
from mailwright.store.api import Account
from mailwright.store.sqlite import SQLiteStore
from tests.pop3d.harness import PASSWORD, add_message, add_user, fast_authenticator


@dataclass
class Server:
    store: SQLiteStore
    listeners: ListenerSet
    port: int
    account: Account


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    store = SQLiteStore(tmp_path / "data", fsync=False)
    await store.open()
    account = await add_user(store, "bob")
    await add_message(store, account, b"Subject: x\r\n\r\nbody\r\n")
    checker = fast_authenticator(store)

    async def handler(conn: Connection) -> None:
        session = Pop3Session(
            store, checker, peer_ip=conn.peer_ip, loopback=True, tls=False,
            tls_available=False, owner=f"test/{conn.id}",
        )
        await serve(conn, session, idle_timeout=0.3)

    listeners = ListenerSet(None)
    await listeners.add(ListenerConfig("pop3", "127.0.0.1", 0), handler)
    port = listeners.bound()[0][1]
    try:
        yield Server(store, listeners, port, account)
    finally:
        await listeners.shutdown(grace=1.0)
        await store.close()


async def connect(srv: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    assert (await reader.readline()).startswith(b"+OK")
    return reader, writer


async def command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> bytes:
    writer.write(line + b"\r\n")
    await writer.drain()
    return await asyncio.wait_for(reader.readline(), 30)


async def test_pop3_limits_idle_autologout(server: Server) -> None:
    reader, writer = await connect(server)
    assert await command(reader, writer, b"USER bob@example.test") == b"+OK\r\n"
    assert (await command(reader, writer, b"PASS " + PASSWORD.encode())).startswith(b"+OK")
    await command(reader, writer, b"DELE 1")
    # Say nothing: the server logs us out, and an autologout is not an UPDATE (RFC 1939 3).
    assert await asyncio.wait_for(reader.read(), 30) == b"-ERR Autologout, idle for too long\r\n"
    writer.close()
    assert await server.store.lock_maildrop(server.account.id, "other", 60)
    box = await server.store.get_mailbox(server.account.id, "INBOX")
    assert box is not None and len(await server.store.list_messages(box.id)) == 1


async def test_pop3_limits_graceful_shutdown(server: Server) -> None:
    reader, writer = await connect(server)
    await command(reader, writer, b"USER bob@example.test")
    assert (await command(reader, writer, b"PASS " + PASSWORD.encode())).startswith(b"+OK")
    await command(reader, writer, b"DELE 1")
    shutdown = asyncio.create_task(server.listeners.shutdown(grace=10.0))
    assert await asyncio.wait_for(reader.read(), 30) == b"-ERR [SYS/TEMP] Server shutting down\r\n"
    await shutdown
    writer.close()
    assert await server.store.lock_maildrop(server.account.id, "other", 60)
    box = await server.store.get_mailbox(server.account.id, "INBOX")
    assert box is not None and len(await server.store.list_messages(box.id)) == 1


async def test_pop3_limits_error_flood_closes(server: Server) -> None:
    reader, writer = await connect(server)
    writer.write(b"BOGUS\r\n" * (MAX_ERRORS + 5))
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)
    lines = answer.split(b"\r\n")
    assert lines[: MAX_ERRORS - 1] == [b"-ERR Unknown command: BOGUS"] * (MAX_ERRORS - 1)
    assert lines[MAX_ERRORS - 1 :] == [b"-ERR Too many errors, closing", b""]
    writer.close()


async def test_pop3_limits_huge_line_is_discarded_not_buffered(server: Server) -> None:
    reader, writer = await connect(server)
    for _ in range(64):
        writer.write(b"x" * 65536)  # 4 MiB without a line end
        await writer.drain()
    assert await command(reader, writer, b"") == b"-ERR Line too long\r\n"
    assert (await command(reader, writer, b"CAPA")).startswith(b"+OK")
    writer.close()


async def test_pop3_limits_eof_mid_command(server: Server) -> None:
    reader, writer = await connect(server)
    writer.write(b"USER bo")
    await writer.drain()
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 30) == b""
    writer.close()
