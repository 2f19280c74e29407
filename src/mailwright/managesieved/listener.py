"""The asyncio adapter: bytes between a ``net.server.Connection`` and the ManageSieve core.

Thin on purpose, like the POP3 adapter: read only when the core needs data, hand each command
to the session, write each answer, and do what only the adapter can: the STARTTLS handshake
(dropping any plaintext that arrived after the command), the idle timer, the per-address
command rate and hanging up on banned addresses.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mailwright.proto import managesieve as ms

from .session import ManageSieveSession, SessionSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from mailwright.app import AppContext
    from mailwright.config import ListenerConfig
    from mailwright.net.limits import CommandRateLimiter
    from mailwright.net.server import Connection, Handler

READ_SIZE = 65536
MAX_ERRORS = 20


def create(ctx: AppContext, listener: ListenerConfig) -> Handler:
    """The handler for one ``managesieve`` listener."""
    cfg = ctx.config.sieve
    settings = SessionSettings(max_script_size=cfg.max_script_size, max_scripts=cfg.max_scripts,
                               max_redirects=cfg.max_redirects)
    idle = ctx.config.limits.idle_timeout

    async def handle(conn: Connection) -> None:
        session = ManageSieveSession(
            ctx.store, ctx.authenticator, peer_ip=conn.peer_ip, loopback=conn.is_loopback,
            tls=conn.tls, tls_available=conn.tls_available, settings=settings,
        )
        await serve(conn, session, idle_timeout=idle, limiter=ctx.limiter,
                    banned=ctx.authenticator.is_banned)

    return handle


async def serve(
    conn: Connection,
    session: ManageSieveSession,
    *,
    idle_timeout: float,
    limiter: CommandRateLimiter | None = None,
    banned: Callable[[str], bool] | None = None,
) -> None:
    # a literal may carry a whole script plus quoting slack
    core = ms.ServerConnection(max_literal=session.settings.max_script_size + 1024)
    if conn.closing.is_set():
        await _write(conn, ms.bye("Server shutting down", "TRYLATER").encode())
        conn.result = "shutdown"
        return
    if banned is not None and banned(conn.peer_ip):
        # banned by failures on any protocol: no greeting, no more guesses
        await _write(conn, ms.bye("Too many authentication failures").encode())
        conn.result = "banned"
        return
    await _write(conn, session.greeting())
    errors = 0
    while True:
        try:
            event = core.next_event()
        except ms.PeerError as exc:
            errors += 1
            await _write(conn, exc.reply.encode())
            if exc.fatal or errors >= MAX_ERRORS:
                conn.result = "errors"
                return
            continue
        if event is ms.NEED_DATA:
            data = await _read(conn, idle_timeout)
            if data is None:
                reason = "Server shutting down" if conn.closing.is_set() else "Idle for too long"
                await _write(conn, ms.bye(reason).encode())
                conn.result = "shutdown" if conn.closing.is_set() else "timeout"
                return
            core.receive_data(data)
            continue
        if isinstance(event, ms.ConnectionClosed):
            conn.result = conn.result or "eof"
            return
        assert isinstance(event, ms.Command | ms.SaslResponse)
        errors = 0
        if limiter is not None:
            await limiter.wait(conn.peer_ip)
        outcome = await session.handle(event)
        if session.account is not None:
            conn.user = session.account.address
        if outcome.start_tls:
            conn.prepare_tls()  # drop any plaintext queued behind STARTTLS (injection)
        await _write(conn, outcome.data)
        if outcome.expect_sasl:
            core.expect_sasl()
        if outcome.start_tls:
            await conn.start_tls()
            core = ms.ServerConnection(max_literal=session.settings.max_script_size + 1024)
            await _write(conn, session.tls_started())
        elif outcome.close:
            conn.result = "logout"
            return
        elif session.account is None and banned is not None and banned(conn.peer_ip):
            await _write(conn, ms.bye("Too many authentication failures").encode())
            conn.result = "banned"
            return


async def _read(conn: Connection, idle_timeout: float) -> bytes | None:
    if conn.closing.is_set():
        return None
    read = asyncio.ensure_future(conn.reader.read(READ_SIZE))
    closing = asyncio.ensure_future(conn.closing.wait())
    try:
        done, _ = await asyncio.wait({read, closing}, timeout=idle_timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        closing.cancel()
    if read not in done:
        read.cancel()
        return None
    data: bytes = read.result()
    return data


async def _write(conn: Connection, data: bytes) -> None:
    conn.writer.write(data)
    await conn.writer.drain()
