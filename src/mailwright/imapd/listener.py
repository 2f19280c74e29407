"""The thin asyncio adapter: a ``net.server.Connection`` becomes an IMAP session."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mailwright.imapd import handlers  # noqa: F401 - registers the command handlers
from mailwright.imapd.session import Session, SessionConfig

if TYPE_CHECKING:
    from mailwright.net.server import Connection, Handler

READ_SIZE = 64 * 1024
WRITE_TIMEOUT = 300.0


class ConnectionTransport:
    """Adapts ``net.server.Connection`` (asyncio streams) to ``session.Transport``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.peer_ip = conn.peer_ip

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
        return await self.conn.reader.read(READ_SIZE)

    def write(self, data: bytes) -> None:
        self.conn.writer.write(data)

    async def drain(self) -> None:
        # A client that stops reading must not hold a session (and its memory) forever.
        await asyncio.wait_for(self.conn.writer.drain(), WRITE_TIMEOUT)

    async def start_tls(self, response: bytes) -> None:
        # Order matters (as in smtpd): stop reading so nothing more lands in the plaintext
        # buffer, drop what is there, send the OK; the next bytes are the ClientHello.
        transport = self.conn.writer.transport
        if isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()
        buffer = getattr(self.conn.reader, "_buffer", None)
        if isinstance(buffer, bytearray):
            buffer.clear()  # asyncio has no public way to empty a StreamReader
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


def create(ctx: Any, listener: Any) -> Handler:
    """Listener factory registered for the ``imap`` and ``imaps`` protocol keys."""
    config = session_config(ctx)

    async def handle(conn: Connection) -> None:
        session = Session(
            ConnectionTransport(conn), ctx.store, ctx.authenticator, config, closing=conn.closing
        )
        try:
            # On graceful shutdown the session finishes the command in progress, says BYE
            # and returns; net.server cancels whatever is still running after its grace time.
            conn.result = await session.run()
        finally:
            if session.account is not None:
                conn.user = session.account.address

    return handle
