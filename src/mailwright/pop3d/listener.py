"""The asyncio adapter: bytes between a ``net.server.Connection`` and the POP3 core.

Thin on purpose (uvicorn's h11_impl is the model): read when the core needs data, hand
each command to the session, write each reply, and do the two things only the adapter can
do, the STLS handshake and hanging up.  It reads only when the core answers NEED_DATA, so
pipelined input waits in the socket, not in memory.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mailwright.net.limits import CommandRateLimiter
from mailwright.proto import pop3

from . import locks
from .session import MECHANISMS, Pop3Session, SessionSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from mailwright.app import AppContext
    from mailwright.config import ListenerConfig
    from mailwright.net.server import Connection, Handler

READ_SIZE = 65536
WRITE_CHUNK = 256 * 1024
MAX_ERRORS = 20  # protocol errors in a row before we stop listening to a peer
# RFC 1939 3: an autologout timer must be at least 10 minutes.
MIN_IDLE_TIMEOUT = 600.0


def create(ctx: AppContext, listener: ListenerConfig) -> Handler:
    """The handler for one ``pop3`` or ``pop3s`` listener."""
    idle = max(MIN_IDLE_TIMEOUT, ctx.config.limits.idle_timeout)
    settings = SessionSettings(lock_ttl=idle + 300.0)
    # Locks name this process completely (host, PID, boot, start time), so that a restart
    # can tell its own dead locks from a live process that now has the same PID.
    process = locks.current(ctx.node_id.rsplit(":", 1)[0])

    async def handle(conn: Connection) -> None:
        session = Pop3Session(
            ctx.store,
            ctx.authenticator,
            peer_ip=conn.peer_ip,
            loopback=conn.is_loopback,
            tls=conn.tls,
            tls_available=conn.tls_available,
            owner=locks.lock_owner(process, conn.id),
            settings=settings,
        )
        await serve(conn, session, idle_timeout=idle, limiter=ctx.limiter,
                    banned=ctx.authenticator.is_banned)  # fmt: skip

    return handle


async def serve(
    conn: Connection,
    session: Pop3Session,
    *,
    idle_timeout: float,
    limiter: CommandRateLimiter | None = None,
    banned: Callable[[str], bool] | None = None,
) -> None:
    """Run one POP3 connection to its end; always releases the session's lock."""
    core = pop3.ServerConnection(sasl_mechanisms=MECHANISMS, tls_active=conn.tls)
    reader = _Reader(conn, idle_timeout)
    try:
        if conn.closing.is_set():
            await _write(conn, core.send(pop3.Err("Server shutting down", pop3.Code.SYS_TEMP)))
            conn.result = "shutdown"
            return
        await _write(conn, core.send(session.greeting()))
        await _loop(conn, core, session, reader, limiter, banned)
    finally:
        reader.stop()
        await session.close()
        if session.account is not None:
            conn.user = session.account.address


async def _loop(
    conn: Connection,
    core: pop3.ServerConnection,
    session: Pop3Session,
    reader: _Reader,
    limiter: CommandRateLimiter | None = None,
    banned: Callable[[str], bool] | None = None,
) -> None:
    errors = 0
    while True:
        try:
            event = core.next_event()
        except pop3.PeerError as exc:
            errors += 1
            reader.command_done()  # a complete (if wrong) command; MAX_ERRORS bounds these
            if errors >= MAX_ERRORS:
                core.send(exc.reply)
                await _write(conn, pop3.Err("Too many errors, closing").encode())
                conn.result = "errors"
                return
            await _write(conn, core.send(exc.reply))
            continue
        if event is pop3.NEED_DATA:
            data = await reader.read()
            if data is None:  # idle timeout or shutdown
                await _write(conn, reader.goodbye())
                return
            core.receive_data(data)
            continue
        if isinstance(event, pop3.ConnectionClosed) or event is pop3.PAUSED:
            conn.result = conn.result or ("quit" if core.state is pop3.State.CLOSED else "eof")
            return
        assert isinstance(event, pop3.Command)
        errors = 0
        reader.command_done()
        if limiter is not None:
            await limiter.wait(conn.peer_ip)  # per-address command rate, all sessions
        reply = await session.handle(event)
        if session.account is not None:
            conn.user = session.account.address
        starting_tls = isinstance(event, pop3.Stls) and isinstance(reply, pop3.Ok)
        if starting_tls:
            conn.prepare_tls()  # stop reading and drop injected plaintext before the +OK
        for chunk in core.send_chunks(reply, WRITE_CHUNK):
            await _write(conn, chunk)  # a large message goes out piece by piece, with back-pressure
        if starting_tls:
            await conn.start_tls()
            core.tls_started()
            session.tls_started()
        elif isinstance(event, pop3.Quit):
            conn.result = "quit"
            return
        elif session.account is None and banned is not None and banned(conn.peer_ip):
            conn.result = "banned"  # banned across all protocols: no more guesses here
            return


class _Reader:
    """Socket reads with the autologout timer, cut short by a graceful shutdown.

    One watcher per connection (not one task per read): when the server starts closing,
    it expires the timer of the read in progress, and the session says goodbye.
    """

    def __init__(self, conn: Connection, idle_timeout: float) -> None:
        self.conn = conn
        self.idle_timeout = idle_timeout
        self._timer: asyncio.Timeout | None = None
        # Slow senders: the autologout timer runs from the last complete command, not from
        # the last byte, so a command trickled a byte at a time cannot hold the session.
        self._deadline = asyncio.get_running_loop().time() + idle_timeout
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        await self.conn.closing.wait()
        if self._timer is not None:
            self._timer.reschedule(asyncio.get_running_loop().time())

    async def read(self) -> bytes | None:
        if self.conn.closing.is_set():
            return None
        try:
            async with asyncio.timeout_at(self._deadline) as timer:
                self._timer = timer
                data: bytes = await self.conn.reader.read(READ_SIZE)
                return data
        except TimeoutError:
            return None
        finally:
            self._timer = None

    def command_done(self) -> None:
        self._deadline = asyncio.get_running_loop().time() + self.idle_timeout

    def goodbye(self) -> bytes:
        if self.conn.closing.is_set():
            self.conn.result = "shutdown"
            return pop3.Err("Server shutting down", pop3.Code.SYS_TEMP).encode()
        self.conn.result = "timeout"
        return pop3.Err("Autologout, idle for too long").encode()

    def stop(self) -> None:
        self._watcher.cancel()


async def _write(conn: Connection, data: bytes) -> None:
    conn.writer.write(data)
    await conn.writer.drain()
