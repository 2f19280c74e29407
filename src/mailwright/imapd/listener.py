"""The thin asyncio adapter: a ``net.server.Connection`` becomes an IMAP session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailwright.imapd import handlers  # noqa: F401 - registers the command handlers
from mailwright.imapd.hibernate import Hibernated, Home
from mailwright.imapd.session import CloseConnection, Session, SessionConfig
from mailwright.proto.imap.connection import AppendMessageStart
from mailwright.proto.imap.state import State

if TYPE_CHECKING:
    from mailwright.net.limits import CommandRateLimiter
    from mailwright.net.server import Connection, Handler
    from mailwright.proto.imap import ast

READ_SIZE = 64 * 1024
WRITE_TIMEOUT = 300.0


class ConnectionTransport:
    """Adapts ``net.server.Connection`` (asyncio streams) to ``session.Transport``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.peer_ip = conn.peer_ip
        # Slow senders (issue 10): when the command being received must be complete; None
        # while a command runs (IDLE, AUTHENTICATE keep their own timers).
        self.deadline: float | None = None

    @property
    def tls(self) -> bool:
        return self.conn.tls

    @property
    def tls_available(self) -> bool:
        return self.conn.tls_available

    @property
    def is_loopback(self) -> bool:
        return self.conn.is_loopback

    async def read(self) -> bytes:
        if self.deadline is None:
            return await self.conn.reader.read(READ_SIZE)
        try:
            async with asyncio.timeout_at(self.deadline):
                return await self.conn.reader.read(READ_SIZE)
        except TimeoutError:
            self.conn.writer.write(b"* BYE Autologout; command not completed in time\r\n")
            self.conn.result = "timeout"
            return b""  # the session ends as at EOF

    def write(self, data: bytes) -> None:
        self.conn.writer.write(data)

    async def drain(self) -> None:
        # A client that stops reading must not hold a session (and its memory) forever.
        await asyncio.wait_for(self.conn.writer.drain(), WRITE_TIMEOUT)

    async def start_tls(self, response: bytes) -> None:
        # Order matters (as in smtpd): stop reading so nothing more lands in the plaintext
        # buffer, drop what is there, send the OK; the next bytes are the ClientHello.
        self.conn.prepare_tls()
        self.conn.writer.write(response)
        await self.conn.writer.drain()
        await self.conn.start_tls()


def session_config(ctx: Any) -> SessionConfig:
    limits = ctx.config.limits
    return SessionConfig(
        hostname=ctx.hostname,
        max_append=limits.max_message_size,
        idle_timeout=max(float(getattr(limits, "imap_idle_timeout", 1800.0)), 60.0),
    )


@dataclass(eq=False)
class _GuardedSession(Session):
    """A session with the shared abuse controls of net/limits.py around each command."""

    limiter: CommandRateLimiter | None = None
    banned: Callable[[str], bool] | None = None
    #: where a session hibernated in IDLE comes back to life (imapd/hibernate.py)
    home: Home | None = None

    def hibernate(self, tag: str) -> Hibernated | None:
        """A record to keep the connection while IDLE waits, if this is a quiet point
        (imapd/hibernate.py, house rules); None: the session stays awake."""
        t = self.transport
        if self.home is None or not isinstance(t, ConnectionTransport):
            return None
        conn = t.conn
        if conn.owner is None or conn.closing.is_set() or self.account is None:
            return None
        if self.contexts or self.upload is not None:
            return None
        if self.notifier is not None and self.notifier.watch.pending:
            return None
        core = self.conn
        if core.buffered or core.in_command or not core.idling or self._out is not None:
            return None
        reader = conn.reader
        if getattr(reader, "_buffer", b"x") or reader.at_eof() or reader.exception() is not None:
            return None
        if conn.writer.transport.get_write_buffer_size():
            return None  # a client that does not read: its flow control stays with the streams
        window: bytes | None = None
        if self.codec is not None:
            window = self.codec.window()
            if window is None:
                return None
        frozen = None
        if self.view is not None:
            if not self.view.hibernate():
                return None
            if self.notifier is None and self.subscription is not None and self.subscription.pending:
                return None  # (with NOTIFY, its Watch says what IDLE reports)
            frozen = self.view.freeze()
        return Hibernated(self, conn, self.home, tag, frozen, window)

    def _arm(self) -> None:
        t = self.transport
        if isinstance(t, ConnectionTransport):
            # The session's own per-read timer fires first between commands (it says BYE);
            # this one ends a command that is trickled in and never finished.
            cfg = self.config
            timeout = cfg.preauth_timeout if self.state is State.NOT_AUTHENTICATED else cfg.idle_timeout
            t.deadline = asyncio.get_running_loop().time() + timeout + 1.0

    async def _append_event(self, event: Any) -> None:
        # An APPEND message is decided on (store reads) before the command completes: it
        # counts against the command rate like a command, and a refusal ends the command.
        t = self.transport
        start = isinstance(event, AppendMessageStart)
        if start and event.index == 0 and self.limiter is not None and isinstance(
            t, ConnectionTransport
        ):
            await self.limiter.wait(t.peer_ip)
        await super()._append_event(event)
        if start and self.upload is None:
            self._arm()

    async def execute(self, cmd: ast.Command, *, upload: Any = None) -> None:
        t = self.transport
        if isinstance(t, ConnectionTransport):
            t.deadline = None
            # an IDLE woken from hibernation is the same command, not a new one
            if self.limiter is not None and self.idle_resumed is None:
                await self.limiter.wait(t.peer_ip)  # per-address command rate, all sessions
        await super().execute(cmd, upload=upload)
        if self.account is not None and isinstance(t, ConnectionTransport):
            t.conn.user = self.account.address  # logged in: net.server's login deadline is met
        if (
            self.account is None
            and self.banned is not None
            and isinstance(t, ConnectionTransport)
            and self.banned(t.peer_ip)
        ):  # banned across all protocols: no more guesses on this connection either
            self.untagged_status("BYE", "Too many failed logins")
            raise CloseConnection
        self._arm()


def create(ctx: Any, listener: Any) -> Handler:
    """Listener factory registered for the ``imap`` and ``imaps`` protocol keys."""
    config = session_config(ctx)

    def make(conn: Connection) -> _GuardedSession:
        return _GuardedSession(
            ConnectionTransport(conn), ctx.store, ctx.authenticator, config, closing=conn.closing,
            limiter=getattr(ctx, "limiter", None), banned=ctx.authenticator.is_banned, home=home,
        )  # fmt: skip

    async def serve(conn: Connection, session: Session, resumed: ast.Idle | None) -> None:
        try:
            # On graceful shutdown the session finishes the command in progress, says BYE
            # and returns; net.server cancels whatever is still running after its grace time.
            result = await session.run(resumed)
        finally:
            if session.account is not None:
                conn.user = session.account.address
        record = session.hibernated
        if record is None:
            conn.result = result
            return
        # no await from the session's decision to here (imapd/hibernate.py, house rules)
        conn.park(record)
        record.start()

    home = Home(ctx.store, make, serve, config.idle_timeout)

    async def handle(conn: Connection) -> None:
        session = make(conn)
        session._arm()
        await serve(conn, session, None)

    handle.home = home  # type: ignore[attr-defined]  # tests and metrics count hibernated sessions
    return handle
