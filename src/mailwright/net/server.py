"""Listeners: bind, accept, implicit TLS, connection budgets, PROXY protocol, shutdown.

Protocol code sees a `Connection` and never a socket: it reads and writes the asyncio streams,
asks `start_tls()` for STARTTLS/STLS, and watches `closing` to end at a safe point during a
graceful shutdown. Shutdown order (as uvicorn does it): stop accepting, signal sessions, wait a
bounded time, cancel what remains.

House rules of this module:

* A connection is counted against every budget the moment it is accepted, before the PROXY
  header and before the TLS handshake: the node-wide `max_connections`, the listener's own
  budget (so 300 idle POP3 sessions cannot take the MX's share) and the per-address cap. A
  client that opens connections and never sends a ClientHello holds budget, not memory, and only
  for `handshake_timeout`. With several worker processes the budgets are the server's, not
  each worker's: every worker counts in one shared mapping (`net.budgets.SharedCounts`).
* Behind a trusted PROXY-speaking balancer the socket's address is the balancer's, so the
  per-address cap is applied to the address in the header, once it has been read.
* Sessions that must log in (submission, IMAP, POP3, ManageSieve) are hung up on when they have not
  authenticated within `login_timeout` of the accept, however busy they keep themselves (as
  Dovecot's login processes do); the MX never authenticates and keeps its per-command timeouts.
* Loopback exemptions (plaintext login without TLS) belong only to a known loopback client,
  never to one behind a PROXY header that names no address, and can be switched off.
* A connection's budgets belong to the `Connection`, not to the coroutine that accepted it: they
  are given back when the connection ends (`ListenerSet._ended`), which may be long after that
  coroutine returned. A protocol may *park* a connection (`Connection.park`): its streams and
  every coroutine of its session are dropped and one small protocol object of its own receives
  the socket's events (an IMAP session waiting in IDLE, imapd/hibernate.py); `unpark` gives it
  new streams and a new task, counted among the connections a shutdown waits for. A parked
  connection holds its budgets like any other, until it is closed.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from mailwright.config import ListenerConfig
from mailwright.log import event
from mailwright.net.budgets import ConnectionCounts, LocalCounts
from mailwright.net.limits import BANNED, LOGIN_TIMEOUT
from mailwright.net.registry import BUSY

if TYPE_CHECKING:
    from mailwright.proto.proxy import ProxyHeader

log = logging.getLogger("mailwright.net")
_ids = itertools.count(1)

Handler = Callable[["Connection"], Awaitable[None]]
# A PROXY header must arrive promptly; it is at most a few hundred octets.
PROXY_HEADER_TIMEOUT = 10.0
STREAM_LIMIT = 256 * 1024


class BindError(Exception):
    """A listener's port cannot be bound; the message names it."""


class Parked(Protocol):
    """What a parked connection's protocol object does besides receiving the socket's events."""

    def shutdown(self) -> None:
        """The server stops: say goodbye and close (the budgets are freed when it is closed)."""


@dataclass(eq=False, slots=True)
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
    # False when a PROXY header said it had no client address (v1 UNKNOWN, v2 LOCAL or
    # UNSPEC): `peer_ip` is then only the balancer's own socket address.
    peer_known: bool = True
    # [tls] allow_plaintext_loopback: whether a loopback peer gets the loopback exemptions.
    loopback_exempt: bool = True
    handshake_timeout: float = 10.0
    #: the listeners whose budgets this connection holds until it ends (None once given back,
    #: or for a connection made outside a ListenerSet)
    owner: ListenerSet | None = None
    #: while parked: the transport and the protocol object that has its events
    transport: asyncio.BaseTransport | None = None
    parked: Parked | None = None

    @property
    def protocol(self) -> str:
        return self.listener.protocol

    @property
    def is_loopback(self) -> bool:
        """A direct peer on this host's loopback that may have the loopback exemptions.

        Never for a client whose address is unknown: after a PROXY `UNKNOWN` or v2 `LOCAL`
        header the only address is the balancer's own socket, which says nothing of the client
        (a local tunnel would otherwise pass every remote client off as loopback). A trusted
        header that names a loopback client is believed, as every address it names is. False
        too when the operator turned the exemption off.
        """
        if not self.peer_known or not self.loopback_exempt:
            return False
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
        await self.writer.start_tls(
            self.ssl_context, ssl_handshake_timeout=self.handshake_timeout
        )
        self.tls = True

    def park(self, protocol: Parked) -> None:
        """Hand the socket's events to *protocol* and drop the streams (see the house rules).

        Call only with nothing buffered in the reader, from the session's last synchronous
        step before its coroutines return: the next byte goes to *protocol*."""
        owner = self.owner
        if owner is None:
            raise RuntimeError("only a connection of a ListenerSet can be parked")
        writer = self.writer
        transport = writer.transport
        transport.set_protocol(protocol)  # type: ignore[arg-type]
        # StreamWriter.__del__ closes a transport that is not closing: this one lives on
        writer._transport = _DETACHED  # type: ignore[attr-defined]
        self.transport = transport
        self.parked = protocol
        del self.reader, self.writer
        owner._parked.add(self)

    def unpark(self, handler: Handler, data: bytes = b"") -> None:
        """New streams on the parked transport (with *data* already received, if any), and a
        task that runs *handler* on the connection as an accepted one would."""
        owner, transport = self.owner, self.transport
        assert owner is not None and transport is not None and self.parked is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        self.reader = reader
        self.writer = asyncio.StreamWriter(transport, protocol, reader, loop)  # type: ignore[arg-type]
        self.transport = self.parked = None
        owner._parked.discard(self)
        if data:
            protocol.data_received(data)
        owner._spawn(self, handler)

    def end(self, result: str) -> None:
        """A parked connection is over (closed by the peer, timed out, shut down)."""
        owner = self.owner
        if owner is not None:
            owner._parked.discard(self)
        self.parked = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.result = self.result or result
        if owner is not None:
            owner._ended(self)

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


class _Detached:
    """Stands for the transport of a parked connection's old StreamWriter."""

    __slots__ = ()

    def is_closing(self) -> bool:
        return True


_DETACHED = _Detached()


def _addr(sockname: object) -> tuple[str, int]:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return "", 0


class ListenerSet:
    """All listeners of one server process, and the connection budgets they share."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int = 10000,
        max_per_ip: int = 50,
        listener_share: int | None = None,
        handshake_timeout: float = 10.0,
        login_timeout: float = 0.0,
        allow_plaintext_loopback: bool = True,
        refuse: Callable[[str], bool] | None = None,
        counts: ConnectionCounts | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.refuse = refuse  # e.g. Authenticator.is_banned: addresses turned away at connect
        self.refused_banned = 0  # connections turned away by `refuse` (metrics)
        self.refused_busy = 0  # connections turned away by a budget (metrics)
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        # A listener without its own `max_connections` may hold this many (None: the total).
        self.listener_share = listener_share
        self.handshake_timeout = handshake_timeout
        self.login_timeout = login_timeout  # 0: no login deadline
        self.allow_plaintext_loopback = allow_plaintext_loopback
        self.closing = asyncio.Event()
        self._servers: list[tuple[ListenerConfig, asyncio.Server | _AcceptLoop]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # parked connections: no task, a small protocol object each (Connection.park)
        self._parked: set[Connection] = set()
        # connections holding budget, from accept to close: this process's own, or every
        # worker's (net.budgets.SharedCounts, made by the supervisor)
        self.counts: ConnectionCounts = counts if counts is not None else LocalCounts()

    @property
    def active(self) -> int:
        return len(self._tasks) + len(self._parked)

    def budget(self, lc: ListenerConfig) -> int:
        """How many connections `lc` may hold at once."""
        return lc.max_connections or self.listener_share or self.max_connections

    def bound(self) -> list[tuple[ListenerConfig, int]]:
        """Each listener with the port it actually bound (for port 0)."""
        out = []
        for lc, srv in self._servers:
            port = srv.sockets[0].getsockname()[1] if srv.sockets else lc.port
            out.append((lc, int(port)))
        return out

    # -- budgets ---------------------------------------------------------------------------

    def _admit(self, lc: ListenerConfig) -> bool:
        if (
            self.closing.is_set()
            or self.counts.total() >= self.max_connections
            or self.counts.listener(lc.name) >= self.budget(lc)
        ):
            return False
        self.counts.open(lc.name)
        return True

    def _release(self, lc: ListenerConfig) -> None:
        self.counts.close(lc.name)

    def _admit_ip(self, ip: str) -> bool:
        if self.counts.ip(ip) >= self.max_per_ip:
            return False
        self.counts.open_ip(ip)
        return True

    def _release_ip(self, ip: str) -> None:
        self.counts.close_ip(ip)

    def _refused(self, lc: ListenerConfig, peer_ip: str) -> None:
        self.refused_busy += 1
        event(log, "connection refused", proto=lc.protocol, peer=peer_ip, reason="limit")

    # -- plain listeners (STARTTLS protocols, http) -------------------------------------------

    async def add(
        self, lc: ListenerConfig, handler: Handler, sock: socket.socket | None = None
    ) -> None:
        """Serve `lc`; on `sock` when given (a socket bound by the supervisor, which every
        worker process accepts on: `bind_socket`), else on a socket bound here."""
        if lc.implicit_tls:
            if self.ssl_context is None:
                raise BindError(f"{lc.name}: implicit TLS needs [tls] cert and key")
            await self._add_implicit_tls(lc, handler, sock)
            return

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)  # type: ignore[arg-type]
            try:
                await self._accept_stream(lc, handler, reader, writer)
            finally:
                self._tasks.discard(task)  # type: ignore[arg-type]

        try:
            if sock is not None:
                server = await asyncio.start_server(
                    on_connect, sock=sock, backlog=1024, limit=STREAM_LIMIT
                )
            else:
                server = await asyncio.start_server(
                    on_connect, lc.address, lc.port, reuse_address=True, backlog=1024,
                    limit=STREAM_LIMIT,
                )  # fmt: skip
        except OSError as e:
            raise BindError(f"cannot listen on {lc.address}:{lc.port} ({lc.protocol}): {e.strerror or e}") from None
        self._servers.append((lc, server))

    async def _accept_stream(
        self,
        lc: ListenerConfig,
        handler: Handler,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peer_ip, peer_port = _addr(writer.get_extra_info("peername"))
        if not self._admit(lc):
            await _say_and_close(writer, BUSY.get(lc.protocol, b""))
            self._refused(lc, peer_ip)
            return
        counted_ip: str | None = None
        handed = False  # the budgets belong to the Connection from _serve on
        try:
            peer_known = True
            if lc.proxy_protocol and self._trusted(lc, peer_ip):
                try:
                    header = await _read_proxy_header(reader)
                except Exception as e:  # noqa: BLE001 - any malformed header ends the connection
                    event(log, "proxy header rejected", logging.WARNING, peer=peer_ip, error=str(e))
                    writer.close()
                    return
                if header.source is not None:
                    peer_ip, peer_port = header.source
                peer_known = header.source is not None
            if not self._admit_ip(peer_ip):
                await _say_and_close(writer, BUSY.get(lc.protocol, b""))
                self._refused(lc, peer_ip)
                return
            counted_ip = peer_ip
            handed = True
            await self._serve(lc, handler, reader, writer, peer_ip, peer_port, peer_known=peer_known)
        finally:
            if not handed:
                if counted_ip is not None:
                    self._release_ip(counted_ip)
                self._release(lc)

    # -- implicit TLS listeners -------------------------------------------------------------

    async def _add_implicit_tls(
        self, lc: ListenerConfig, handler: Handler, sock: socket.socket | None = None
    ) -> None:
        """Implicit TLS: accept on a plain socket, count, then the handshake under a deadline.

        asyncio's own TLS server runs the handshake before the protocol sees the connection,
        so nothing could be counted or refused until a client finished its handshake (or the
        handshake timeout passed). Here the budgets are taken at accept; behind a balancer the
        PROXY header is read from the socket one byte at a time first (so not a byte of the
        ClientHello is consumed), then the socket is handed to asyncio with TLS.
        """
        loop = asyncio.get_running_loop()
        if sock is None:
            sock = bind_socket(lc)
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
                task = loop.create_task(self._accept_tls(lc, handler, client))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._servers.append((lc, _AcceptLoop(sock, loop.create_task(accept()))))

    async def _accept_tls(self, lc: ListenerConfig, handler: Handler, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        client.setblocking(False)
        try:
            peer_ip, peer_port = _addr(client.getpeername())
        except OSError as e:  # gone already (a plain TCP health check): ENOTCONN
            client.close()
            event(log, "connection lost before the handshake", proto=lc.protocol, error=e.strerror or str(e))
            return
        if not self._admit(lc):
            client.close()  # nothing can be said before TLS: the client sees the close
            self._refused(lc, peer_ip)
            return
        counted_ip: str | None = None
        handed = False  # the budgets belong to the Connection from _serve on
        try:
            peer_known = True
            if lc.proxy_protocol and self._trusted(lc, peer_ip):
                try:
                    header = await _read_proxy_header_sock(loop, client)
                except Exception as e:  # noqa: BLE001 - any malformed header ends the connection
                    event(log, "proxy header rejected", logging.WARNING, peer=peer_ip, error=str(e))
                    client.close()
                    return
                if header.source is not None:
                    peer_ip, peer_port = header.source
                peer_known = header.source is not None
            if not self._admit_ip(peer_ip):
                client.close()
                self._refused(lc, peer_ip)
                return
            counted_ip = peer_ip
            reader = asyncio.StreamReader(limit=STREAM_LIMIT)
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol, client, ssl=self.ssl_context,
                    ssl_handshake_timeout=self.handshake_timeout,
                )  # fmt: skip
            except (OSError, ssl.SSLError, TimeoutError) as e:
                # Health checks that connect and close, scanners, clients that never send a
                # ClientHello: one line, no traceback.
                event(log, "tls handshake failed", proto=lc.protocol, peer=peer_ip,
                      error=getattr(e, "strerror", None) or str(e) or type(e).__name__)  # fmt: skip
                client.close()
                return
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            handed = True
            await self._serve(lc, handler, reader, writer, peer_ip, peer_port, peer_known=peer_known)
        finally:
            if not handed:
                if counted_ip is not None:
                    self._release_ip(counted_ip)
                self._release(lc)

    # -- one admitted connection ----------------------------------------------------------

    async def _serve(
        self,
        lc: ListenerConfig,
        handler: Handler,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_ip: str,
        peer_port: int,
        *,
        peer_known: bool,
    ) -> None:
        local_ip, local_port = _addr(writer.get_extra_info("sockname"))
        conn = Connection(
            reader, writer, lc, peer_ip, peer_port, local_ip, local_port,
            tls=lc.implicit_tls, ssl_context=self.ssl_context, closing=self.closing,
            peer_known=peer_known, loopback_exempt=self.allow_plaintext_loopback,
            handshake_timeout=self.handshake_timeout, owner=self,
        )  # fmt: skip
        if self.refuse is not None and lc.protocol in BANNED and self.refuse(peer_ip):
            self.refused_banned += 1
            try:
                await _say_and_close(writer, BANNED[lc.protocol])
            finally:
                self._release_budgets(conn)
            event(log, "connection refused", proto=lc.protocol, peer=peer_ip, reason="banned")
            return
        login_timer: asyncio.TimerHandle | None = None
        if self.login_timeout > 0 and lc.protocol in LOGIN_TIMEOUT:
            login_timer = asyncio.get_running_loop().call_later(
                self.login_timeout, self._login_expired, conn
            )
        try:
            await self._run(conn, handler)
        finally:
            if login_timer is not None:
                login_timer.cancel()

    async def _run(self, conn: Connection, handler: Handler) -> None:
        """Run *handler* on *conn*; close and account for the connection when it returns,
        unless it parked the connection (which then ends through `Connection.end`)."""
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
            # no await before this test: a parked connection's protocol may only be woken by
            # the loop, so it is still parked here if the handler parked it
            if conn.parked is None:
                try:
                    await conn.close()
                finally:
                    self._ended(conn)

    def _spawn(self, conn: Connection, handler: Handler) -> None:
        """A task for an unparked connection, waited for by `shutdown` like an accepted one."""
        task = asyncio.get_running_loop().create_task(self._run(conn, handler))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release_budgets(self, conn: Connection) -> None:
        """Give back what *conn* holds, once."""
        if conn.owner is self:
            conn.owner = None
            self._release_ip(conn.peer_ip)
            self._release(conn.listener)

    def _ended(self, conn: Connection) -> None:
        if conn.owner is not self:
            return
        self._release_budgets(conn)
        event(
            log, "connection", id=conn.id, proto=conn.listener.protocol, peer=conn.peer_ip,
            tls=conn.tls, user=conn.user or "-", result=conn.result or "closed",
            duration=f"{time.monotonic() - conn.started:.3f}",
        )

    @staticmethod
    def _login_expired(conn: Connection) -> None:
        """The login deadline passed: hang up unless the session has authenticated."""
        if conn.user or conn.writer.is_closing():
            return
        conn.result = "login-timeout"
        transport = conn.writer.transport
        with contextlib.suppress(Exception):
            conn.writer.write(LOGIN_TIMEOUT[conn.protocol])
            conn.writer.close()  # the session's pending read ends; its cleanup runs as usual
        # A peer that does not read would keep the close waiting on its buffer: abort then.
        asyncio.get_running_loop().call_later(2.0, transport.abort)

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
        for conn in list(self._parked):
            if conn.parked is not None:
                conn.parked.shutdown()
        for _lc, srv in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 0.5)
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)


def bind_socket(lc: ListenerConfig) -> socket.socket:
    """A listening TCP socket for `lc` (BindError naming it when the port cannot be had)."""
    family = socket.AF_INET6 if ":" in lc.address else socket.AF_INET
    try:
        return socket.create_server((lc.address, lc.port), family=family, backlog=1024)
    except OSError as e:
        raise BindError(
            f"cannot listen on {lc.address}:{lc.port} ({lc.protocol}): {e.strerror or e}"
        ) from None


async def _say_and_close(writer: asyncio.StreamWriter, line: bytes) -> None:
    with contextlib.suppress(Exception):
        if line:
            writer.write(line)
            await asyncio.wait_for(writer.drain(), 2)
    if not writer.is_closing():
        writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 2)


class _AcceptLoop:
    """Stands in for `asyncio.Server` on a listener that accepts through `_add_implicit_tls`."""

    def __init__(self, sock: socket.socket, task: asyncio.Task[None]) -> None:
        self.sockets = [sock]
        self._task = task

    def close(self) -> None:
        self._task.cancel()
        self.sockets[0].close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _read_proxy_header_sock(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> ProxyHeader:
    """As `_read_proxy_header`, straight from the socket (nothing buffered beyond the header)."""
    from mailwright.proto.proxy import NEED_DATA, ProxyParser

    parser = ProxyParser()
    async with asyncio.timeout(PROXY_HEADER_TIMEOUT):
        while True:
            byte = await loop.sock_recv(sock, 1)
            if not byte:
                raise ConnectionError("connection closed inside the PROXY header")
            parser.receive_data(byte)
            header = parser.next_event()
            if header is not NEED_DATA:
                return header


async def _read_proxy_header(reader: asyncio.StreamReader) -> ProxyHeader:
    """Read a PROXY v1/v2 header (HAProxy). Its `source` is None for LOCAL/UNKNOWN/UNSPEC.

    Fed one byte at a time so that not a byte of the real protocol is consumed here.
    """
    from mailwright.proto.proxy import NEED_DATA, ProxyParser

    parser = ProxyParser()
    async with asyncio.timeout(PROXY_HEADER_TIMEOUT):
        while True:
            parser.receive_data(await reader.readexactly(1))
            header = parser.next_event()
            if header is not NEED_DATA:
                return header
