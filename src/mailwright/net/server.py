"""Listeners: bind, accept, implicit TLS, connection limits, PROXY protocol, shutdown.

Protocol code sees a `Connection` and never a socket: it reads and writes the asyncio streams,
asks `start_tls()` for STARTTLS/STLS, and watches `closing` to end at a safe point during a
graceful shutdown. Shutdown order (as uvicorn does it): stop accepting, signal sessions, wait a
bounded time, cancel what remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mailwright.config import ListenerConfig
from mailwright.log import event
from mailwright.net.limits import BANNED
from mailwright.net.registry import BUSY

log = logging.getLogger("mailwright.net")
_ids = itertools.count(1)

Handler = Callable[["Connection"], Awaitable[None]]


class BindError(Exception):
    """A listener's port cannot be bound; the message names it."""


@dataclass(eq=False)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    listener: ListenerConfig
    peer_ip: str
    peer_port: int
    local_ip: str
    local_port: int
    tls: bool
    ssl_context: ssl.SSLContext | None
    closing: asyncio.Event
    id: str = field(default_factory=lambda: f"{next(_ids):x}")
    started: float = field(default_factory=time.monotonic)
    user: str = ""
    result: str = ""

    @property
    def protocol(self) -> str:
        return self.listener.protocol

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.peer_ip).is_loopback
        except ValueError:
            return False

    @property
    def tls_available(self) -> bool:
        return self.ssl_context is not None and not self.tls

    def prepare_tls(self) -> None:
        """Call before sending the "go ahead" reply of STARTTLS/STLS.

        Order matters: stop reading first, so that nothing more lands in the plaintext buffer;
        drop what is there (commands injected before the handshake, RFC 3207 4.2 / RFC 2595
        3.1, CVE-2011-0411); only then may the reply go out, after which the client's next
        bytes are its ClientHello, which must reach the TLS layer intact. uvloop's transports
        are not asyncio.ReadTransport subclasses, hence the duck typing.
        """
        pause = getattr(self.writer.transport, "pause_reading", None)
        if callable(pause):
            pause()
        buffered = getattr(self.reader, "_buffer", None)  # no public way to empty a reader
        if isinstance(buffered, bytearray):
            buffered.clear()

    async def start_tls(self) -> None:
        """Upgrade in place, after `prepare_tls()` and the reply that announces TLS."""
        if self.ssl_context is None:
            raise RuntimeError("no TLS certificate configured")
        await self.writer.start_tls(self.ssl_context)
        self.tls = True

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


def _addr(sockname: object) -> tuple[str, int]:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return "", 0


class ListenerSet:
    """All listeners of one server process."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int = 10000,
        max_per_ip: int = 50,
        handshake_timeout: float = 30.0,
        refuse: Callable[[str], bool] | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.refuse = refuse  # e.g. Authenticator.is_banned: addresses turned away at connect
        self.refused_banned = 0  # connections turned away by `refuse` (metrics)
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.handshake_timeout = handshake_timeout
        self.closing = asyncio.Event()
        self._servers: list[tuple[ListenerConfig, asyncio.Server | _AcceptLoop]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_ip: Counter[str] = Counter()

    @property
    def active(self) -> int:
        return len(self._tasks)

    def bound(self) -> list[tuple[ListenerConfig, int]]:
        """Each listener with the port it actually bound (for port 0)."""
        out = []
        for lc, srv in self._servers:
            port = srv.sockets[0].getsockname()[1] if srv.sockets else lc.port
            out.append((lc, int(port)))
        return out

    async def add(self, lc: ListenerConfig, handler: Handler) -> None:
        if lc.implicit_tls and self.ssl_context is None:
            raise BindError(f"{lc.name}: implicit TLS needs [tls] cert and key")
        if lc.implicit_tls and lc.proxy_protocol:
            # The PROXY header comes in clear before the TLS handshake, so asyncio's own TLS
            # server (which starts the handshake at accept) cannot serve this listener.
            await self._add_proxied_tls(lc, handler)
            return

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)  # type: ignore[arg-type]
            try:
                await self._serve(lc, handler, reader, writer)
            finally:
                self._tasks.discard(task)  # type: ignore[arg-type]

        try:
            server = await asyncio.start_server(
                on_connect,
                lc.address,
                lc.port,
                ssl=self.ssl_context if lc.implicit_tls else None,
                ssl_handshake_timeout=self.handshake_timeout if lc.implicit_tls else None,
                reuse_address=True,
                backlog=1024,
                limit=256 * 1024,
            )
        except OSError as e:
            raise BindError(f"cannot listen on {lc.address}:{lc.port} ({lc.protocol}): {e.strerror or e}") from None
        self._servers.append((lc, server))

    async def _serve(
        self,
        lc: ListenerConfig,
        handler: Handler,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        proxied: tuple[str, int] | None = None,
        header_read: bool = False,
    ) -> None:
        peer_ip, peer_port = _addr(writer.get_extra_info("peername"))
        local_ip, local_port = _addr(writer.get_extra_info("sockname"))
        if proxied is not None:
            peer_ip, peer_port = proxied
        elif not header_read and lc.proxy_protocol and self._trusted(lc, peer_ip):
            try:
                proxied = await _read_proxy_header(reader)
            except Exception as e:  # noqa: BLE001 - any malformed header ends the connection
                event(log, "proxy header rejected", logging.WARNING, peer=peer_ip, error=str(e))
                writer.close()
                return
            if proxied is not None:
                peer_ip, peer_port = proxied
        conn = Connection(
            reader, writer, lc, peer_ip, peer_port, local_ip, local_port,
            tls=lc.implicit_tls, ssl_context=self.ssl_context, closing=self.closing,
        )
        if self.closing.is_set() or len(self._tasks) > self.max_connections or (
            self._per_ip[peer_ip] >= self.max_per_ip
        ):
            with contextlib.suppress(Exception):
                writer.write(BUSY.get(lc.protocol, b""))
                await asyncio.wait_for(writer.drain(), 2)
            await conn.close()
            event(log, "connection refused", proto=lc.protocol, peer=peer_ip, reason="limit")
            return
        if self.refuse is not None and lc.protocol in BANNED and self.refuse(peer_ip):
            self.refused_banned += 1
            with contextlib.suppress(Exception):
                writer.write(BANNED[lc.protocol])
                await asyncio.wait_for(writer.drain(), 2)
            await conn.close()
            event(log, "connection refused", proto=lc.protocol, peer=peer_ip, reason="banned")
            return
        self._per_ip[peer_ip] += 1
        try:
            await handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            conn.result = conn.result or "dropped"
        except asyncio.CancelledError:
            conn.result = "cancelled"
            raise
        except Exception:  # noqa: BLE001 - a bug in one session must not take the server down
            conn.result = "internal-error"
            log.exception("session %s failed", conn.id)
        finally:
            self._per_ip[peer_ip] -= 1
            if self._per_ip[peer_ip] <= 0:
                del self._per_ip[peer_ip]
            await conn.close()
            event(
                log, "connection", id=conn.id, proto=lc.protocol, peer=peer_ip,
                tls=conn.tls, user=conn.user or "-", result=conn.result or "closed",
                duration=f"{time.monotonic() - conn.started:.3f}",
            )

    async def _add_proxied_tls(self, lc: ListenerConfig, handler: Handler) -> None:
        """Implicit TLS behind a PROXY-speaking balancer: header first, then the handshake.

        Connections are accepted on a plain socket; the header is read from the socket one
        byte at a time (so not a byte of the TLS ClientHello is consumed), then the socket is
        handed to asyncio with TLS.
        """
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in lc.address else socket.AF_INET
        try:
            sock = socket.create_server((lc.address, lc.port), family=family, backlog=1024)
        except OSError as e:
            raise BindError(
                f"cannot listen on {lc.address}:{lc.port} ({lc.protocol}): {e.strerror or e}"
            ) from None
        sock.setblocking(False)

        async def accept() -> None:
            while True:
                try:
                    client, _addr_info = await loop.sock_accept(sock)
                except asyncio.CancelledError:
                    raise
                except OSError as e:
                    if sock.fileno() < 0:
                        return
                    event(log, "accept failed", logging.WARNING, listener=lc.name, error=str(e))
                    await asyncio.sleep(0.1)  # e.g. EMFILE: let connections finish
                    continue
                task = loop.create_task(self._accept_proxied_tls(lc, handler, client))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._servers.append((lc, _AcceptLoop(sock, loop.create_task(accept()))))

    async def _accept_proxied_tls(
        self, lc: ListenerConfig, handler: Handler, client: socket.socket
    ) -> None:
        loop = asyncio.get_running_loop()
        client.setblocking(False)
        peer_ip, _port = _addr(client.getpeername())
        proxied: tuple[str, int] | None = None
        if self._trusted(lc, peer_ip):
            try:
                proxied = await _read_proxy_header_sock(loop, client)
            except Exception as e:  # noqa: BLE001 - any malformed header ends the connection
                event(log, "proxy header rejected", logging.WARNING, peer=peer_ip, error=str(e))
                client.close()
                return
        reader = asyncio.StreamReader(limit=256 * 1024)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, client, ssl=self.ssl_context,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError) as e:
            event(log, "tls handshake failed", proto=lc.protocol, peer=peer_ip, error=str(e))
            client.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self._serve(lc, handler, reader, writer, proxied=proxied, header_read=True)

    @staticmethod
    def _trusted(lc: ListenerConfig, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in ipaddress.ip_network(n, strict=False) for n in lc.proxy_trusted)

    async def shutdown(self, grace: float = 10.0) -> None:
        self.closing.set()
        for _lc, srv in self._servers:
            srv.close()
        for _lc, srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 0.5)
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)


class _AcceptLoop:
    """Stands in for `asyncio.Server` on a listener that accepts through `_add_proxied_tls`."""

    def __init__(self, sock: socket.socket, task: asyncio.Task[None]) -> None:
        self.sockets = [sock]
        self._task = task

    def close(self) -> None:
        self._task.cancel()
        self.sockets[0].close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _read_proxy_header_sock(
    loop: asyncio.AbstractEventLoop, sock: socket.socket
) -> tuple[str, int] | None:
    """As `_read_proxy_header`, straight from the socket (nothing buffered beyond the header)."""
    from mailwright.proto.proxy import NEED_DATA, ProxyParser

    parser = ProxyParser()
    async with asyncio.timeout(10):
        while True:
            byte = await loop.sock_recv(sock, 1)
            if not byte:
                raise ConnectionError("connection closed inside the PROXY header")
            parser.receive_data(byte)
            header = parser.next_event()
            if header is not NEED_DATA:
                return None if header.local else header.source


async def _read_proxy_header(reader: asyncio.StreamReader) -> tuple[str, int] | None:
    """Read a PROXY v1/v2 header (HAProxy); the client's address, or None for LOCAL/UNKNOWN.

    Fed one byte at a time so that not a byte of the real protocol is consumed here.
    """
    from mailwright.proto.proxy import NEED_DATA, ProxyParser

    parser = ProxyParser()
    async with asyncio.timeout(10):
        while True:
            parser.receive_data(await reader.readexactly(1))
            header = parser.next_event()
            if header is not NEED_DATA:
                return None if header.local else header.source
