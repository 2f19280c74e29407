"""The asyncio driver of the SMTP client core: connect to a domain's MX hosts and hand messages over.

House rules:

* every read and write has a deadline from RFC 5321 4.5.3.2 (``Timeouts``);
* a failure to connect, a 4xx/5xx greeting, a failed EHLO/HELO or a TLS failure moves on to the
  next address, then the next MX host (RFC 5321 5.1, 4.5.4.1);
* once a transaction has started, the replies decide each recipient: 2xx delivered, 4xx
  temporary, 5xx permanent; a connection lost mid-transaction makes every undecided recipient
  temporary;
* STARTTLS is used whenever offered (RFC 3207). Opportunistic TLS does not check the certificate
  unless ``TLSPolicy.verify`` is set; if the handshake fails, the same address is tried again once
  in plaintext, as Postfix does at its "may" level;
* one ``SMTPSession`` carries several messages in turn (connection reuse).
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mailwright.dns.mx import MXHost, RouteError, host_addresses, route
from mailwright.dns.resolver import DNSError, IPAddress, Resolver
from mailwright.proto.smtpclient import (
    NEED_DATA,
    ClientConnection,
    ClientState,
    Command,
    ConnectionClosed,
    Data,
    DeliveryRefused,
    Ehlo,
    Envelope,
    Extensions,
    Greeting,
    Helo,
    Mail,
    Quit,
    Rcpt,
    Recipient,
    RemoteProtocolError,
    Reply,
    Response,
    Rset,
    StartTLS,
    mail_params,
    rcpt_params,
)

__all__ = [
    "AttemptError",
    "OutboundClient",
    "Outcome",
    "RecipientResult",
    "SMTPSession",
    "TLSPolicy",
    "Timeouts",
]

_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds per step; defaults are RFC 5321 4.5.3.2's minimums."""

    connect: float = 30.0
    greeting: float = 300.0  # 4.5.3.2.1
    command: float = 300.0  # EHLO, STARTTLS, RSET, MAIL (4.5.3.2.2), RCPT (4.5.3.2.3)
    data_init: float = 120.0  # 4.5.3.2.4
    data_block: float = 180.0  # 4.5.3.2.5
    data_end: float = 600.0  # 4.5.3.2.6
    tls_handshake: float = 60.0  # not in RFC 5321; a stuck handshake falls back to plaintext
    quit: float = 10.0


@dataclass(frozen=True, slots=True)
class TLSPolicy:
    """``opportunistic``: STARTTLS when offered, no certificate check unless ``verify``;
    ``required``: no STARTTLS (or a failed one) is a temporary failure; ``disabled``: never."""

    mode: Literal["opportunistic", "required", "disabled"] = "opportunistic"
    verify: bool = False
    ca_file: str | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """What happened to one recipient in one attempt, with what a DSN needs to say about it."""

    recipient: Recipient
    outcome: Outcome
    status: str  # RFC 3463, e.g. "5.1.1"
    diagnostic: str  # "smtp; 550 5.1.1 no such user" or our own reason
    remote_mta: str | None = None  # host name of the server that answered
    relayed_without_dsn: bool = False  # RFC 3461 5.2.2.3: the server did not offer DSN


class AttemptError(Exception):
    """No session could be opened to any host of the destination."""

    def __init__(self, status: str, text: str, *, temporary: bool,
                 remote_mta: str | None = None) -> None:
        super().__init__(f"{status} {text}")
        self.status = status
        self.text = text
        self.temporary = temporary
        self.remote_mta = remote_mta


class _Lost(Exception):
    """The connection broke (EOF, timeout, reset, protocol garbage)."""


def _outcome(reply: Reply) -> Outcome:
    if reply.is_positive:
        return Outcome.DELIVERED
    return Outcome.TEMPORARY if reply.code < 500 else Outcome.PERMANENT


class SMTPSession:
    """An open, greeted (and, when possible, encrypted) SMTP connection to one MX host."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 conn: ClientConnection, host: str, address: str, timeouts: Timeouts) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = conn
        self.host = host
        self.address = address
        self.timeouts = timeouts
        self.tls = False
        self.messages_sent = 0

    @property
    def extensions(self) -> Extensions:
        return self._conn.extensions or Extensions()

    @property
    def usable(self) -> bool:
        return self._conn.state is ClientState.READY and not self._writer.is_closing()

    # -- I/O helpers ---------------------------------------------------------------------------

    async def _write(self, data: bytes, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(data)
                await self._writer.drain()
        except (OSError, TimeoutError) as exc:
            raise _Lost(f"write failed: {exc or type(exc).__name__}") from exc

    async def _event(self, timeout: float) -> Greeting | Response:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._conn.next_event()
                    if event is NEED_DATA:
                        self._conn.receive_data(await self._reader.read(_CHUNK))
                        continue
                    if isinstance(event, ConnectionClosed):
                        raise _Lost("connection closed by the server")
                    return event
        except TimeoutError as exc:
            raise _Lost("timed out waiting for the server") from exc
        except OSError as exc:
            raise _Lost(f"read failed: {exc}") from exc
        except RemoteProtocolError as exc:
            raise _Lost(f"protocol error: {exc}") from exc

    async def _reply(self, timeout: float) -> Reply:
        event = await self._event(timeout)
        return event.reply

    async def command(self, command: Command, timeout: float | None = None) -> Reply:
        await self._write(self._conn.send(command), timeout or self.timeouts.command)
        return await self._reply(timeout or self.timeouts.command)

    # -- opening -------------------------------------------------------------------------------

    async def _hello(self, helo_name: str) -> Reply:
        reply = await self.command(Ehlo(helo_name))
        if reply.is_positive:
            return reply
        if reply.code == 421:
            return reply
        # RFC 5321 4.1.4: a server that does not know EHLO answers 5xx; fall back to HELO.
        return await self.command(Helo(helo_name))

    # -- sending -------------------------------------------------------------------------------

    async def send(self, envelope: Envelope, message: bytes,
                   may_finish: Callable[[], bool] | None = None) -> list[RecipientResult]:
        """Hand one message over; one result per envelope recipient, in envelope order.

        ``may_finish`` is asked just before the final dot: when it says no (the queue's lease on
        the message is no longer certain), the connection is dropped instead, so the remote
        discards the message (RFC 5321 4.1.1.4: only the final dot commits it) and the attempt
        is temporary for everyone; another attempt, perhaps another node's, sends it later.
        """
        ext = self.extensions
        mta = self.host
        no_dsn = not ext.dsn

        def everyone(outcome: Outcome, status: str, diagnostic: str) -> list[RecipientResult]:
            return [RecipientResult(r, outcome, status, diagnostic, mta) for r in envelope.recipients]

        try:
            params = mail_params(envelope, ext)
        except DeliveryRefused as exc:
            outcome = Outcome.PERMANENT if exc.permanent else Outcome.TEMPORARY
            return everyone(outcome, exc.status, f"{exc.text} (server {mta})")
        rcpts = [Rcpt(r.address, rcpt_params(r, ext)) for r in envelope.recipients]
        replies: dict[int, Reply] = {}
        try:
            if ext.pipelining:
                # RFC 2920 3.1: MAIL, every RCPT and DATA in one group, then read all replies.
                wire = self._conn.send(Mail(envelope.sender, params))
                for rc in rcpts:
                    wire += self._conn.send(rc)
                wire += self._conn.send(Data())
                await self._write(wire, self.timeouts.command)
                mail_reply = await self._reply(self.timeouts.command)
                for i in range(len(rcpts)):
                    replies[i] = await self._reply(self.timeouts.command)
                data_reply = await self._reply(self.timeouts.data_init)
            else:
                mail_reply = await self.command(Mail(envelope.sender, params))
                if mail_reply.is_positive:
                    for i, rc in enumerate(rcpts):
                        replies[i] = await self.command(rc)
                accepted = any(r.is_positive for r in replies.values())
                if mail_reply.is_positive and accepted:
                    data_reply = await self.command(Data(), self.timeouts.data_init)
                else:
                    data_reply = Reply(503, ("no valid recipients",))
                    if mail_reply.code != 421 and self._conn.state is ClientState.TRANSACTION:
                        await self.command(Rset())

            if not mail_reply.is_positive:
                diag = f"smtp; {mail_reply}"
                if self._conn.state is ClientState.DATA:
                    await self._finish_empty()
                return everyone(_outcome(mail_reply), mail_reply.status(), diag)

            results: list[RecipientResult | None] = []
            for i, r in enumerate(envelope.recipients):
                reply = replies[i]
                if reply.is_positive:
                    results.append(None)  # decided by the end of data
                else:
                    results.append(RecipientResult(r, _outcome(reply), reply.status(),
                                                   f"smtp; {reply}", mta))
            if data_reply.code != 354:
                # No recipient accepted, or DATA refused: the accepted ones share DATA's fate.
                return [res or RecipientResult(envelope.recipients[i], _outcome(data_reply),
                                               data_reply.status(), f"smtp; {data_reply}", mta)
                        for i, res in enumerate(results)]
            if all(res is not None for res in results):
                # RFC 2920 3.1: DATA accepted with no valid recipient; end it empty.
                await self._finish_empty()
                return [res for res in results if res is not None]

            for start in range(0, len(message), _CHUNK):
                await self._write(self._conn.send_data(message[start : start + _CHUNK]),
                                  self.timeouts.data_block)
            if may_finish is not None and not may_finish():
                await self.abort()
                return [res or RecipientResult(envelope.recipients[i], Outcome.TEMPORARY, "4.4.2",
                                               f"not sent to {mta}: the queue lease ran out", mta)
                        for i, res in enumerate(results)]
            await self._write(self._conn.end_data(), self.timeouts.data_block)
            final = await self._reply(self.timeouts.data_end)
        except _Lost as exc:
            await self.abort()
            text = f"lost connection with {mta} ({self.address}): {exc}"
            decided = [
                RecipientResult(r, _outcome(replies[i]), replies[i].status(),
                                f"smtp; {replies[i]}", mta)
                if i in replies and not replies[i].is_positive else None
                for i, r in enumerate(envelope.recipients)
            ]
            return [d or RecipientResult(envelope.recipients[i], Outcome.TEMPORARY, "4.4.2",
                                         text, mta)
                    for i, d in enumerate(decided)]
        self.messages_sent += 1
        return [res or RecipientResult(envelope.recipients[i], _outcome(final), final.status(),
                                       f"smtp; {final}", mta,
                                       relayed_without_dsn=no_dsn and final.is_positive)
                for i, res in enumerate(results)]

    async def _finish_empty(self) -> None:
        await self._write(self._conn.end_data(), self.timeouts.data_block)
        await self._reply(self.timeouts.data_end)

    async def close(self) -> None:
        """QUIT politely (bounded), then close the socket."""
        try:
            if self._conn.state in (ClientState.READY, ClientState.HELLO):
                await self.command(Quit(), self.timeouts.quit)
        except (_Lost, Exception):
            pass
        await self.abort()

    async def abort(self) -> None:
        self._writer.close()
        try:
            async with asyncio.timeout(self.timeouts.quit):
                await self._writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            pass


@dataclass
class OutboundClient:
    """Opens ``SMTPSession``s to destination domains through DNS (see the module docstring)."""

    resolver: Resolver
    helo_name: str
    port: int = 25
    tls: TLSPolicy = field(default_factory=TLSPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    prefer_ipv6: bool = False
    local_names: frozenset[str] = frozenset()  # our own host names (MX loop detection)

    async def connect(self, domain: str) -> SMTPSession:
        """A ready session to the best reachable host of ``domain``; raises ``AttemptError``."""
        try:
            hosts = await route(self.resolver, domain,
                                local_names=self.local_names or frozenset({self.helo_name.lower()}))
        except RouteError as exc:
            raise AttemptError(exc.status, exc.text, temporary=exc.temporary) from exc
        return await self.connect_hosts(hosts)

    async def connect_hosts(self, hosts: Sequence[MXHost]) -> SMTPSession:
        errors: list[AttemptError] = []
        for host in hosts:
            try:
                addresses = await host_addresses(self.resolver, host, prefer_ipv6=self.prefer_ipv6)
            except DNSError as exc:
                errors.append(AttemptError("4.4.3" if exc.temporary else "5.4.4",
                                           f"{host.name}: {exc.reason}", temporary=exc.temporary,
                                           remote_mta=host.name))
                continue
            for address in addresses:
                try:
                    return await self._open(host, address)
                except AttemptError as exc:
                    errors.append(exc)
        if not errors:
            raise AttemptError("4.4.1", "no hosts to try", temporary=True)
        # Permanent only if every host said so (e.g. 5xx greetings everywhere).
        temporary = any(e.temporary for e in errors)
        last = next((e for e in reversed(errors) if e.temporary == temporary), errors[-1])
        summary = "; ".join(e.text for e in errors[-4:])
        raise AttemptError(last.status, summary, temporary=temporary, remote_mta=last.remote_mta)

    async def _open(self, host: MXHost, address: IPAddress, *, use_tls: bool = True) -> SMTPSession:
        where = f"{host.name} [{address}]:{self.port}"
        try:
            async with asyncio.timeout(self.timeouts.connect):
                reader, writer = await asyncio.open_connection(str(address), self.port)
        except (OSError, TimeoutError) as exc:
            raise AttemptError("4.4.1", f"connect to {where} failed: {exc or 'timeout'}",
                               temporary=True, remote_mta=host.name) from exc
        session = SMTPSession(reader, writer, ClientConnection(), host.name, str(address),
                              self.timeouts)
        try:
            greeting = await session._reply(self.timeouts.greeting)
            if greeting.code != 220:
                # RFC 5321 3.1 / 5.1: a host refusing service at the greeting; try the next one.
                await session.close()
                raise AttemptError(greeting.status() if greeting.code >= 400 else "4.4.0",
                                   f"{where} greeted with {greeting}",
                                   temporary=greeting.code < 500, remote_mta=host.name)
            reply = await session._hello(self.helo_name)
            if not reply.is_positive:
                await session.close()
                raise AttemptError(reply.status(), f"{where} refused HELO: {reply}",
                                   temporary=reply.code < 500, remote_mta=host.name)
            wants_tls = self.tls.mode != "disabled" and use_tls
            if wants_tls and session.extensions.starttls:
                reply = await session.command(StartTLS())
                if reply.code == 220:
                    try:
                        await self._handshake(session, host)
                    except (ssl.SSLError, OSError, TimeoutError) as exc:
                        await session.abort()
                        if self.tls.mode == "opportunistic" and not self.tls.verify:
                            return await self._open(host, address, use_tls=False)
                        raise AttemptError("4.7.5", f"TLS with {where} failed: {exc}",
                                           temporary=True, remote_mta=host.name) from exc
                    reply = await session.command(Ehlo(self.helo_name))
                    if not reply.is_positive:
                        await session.close()
                        raise AttemptError(reply.status(), f"{where} refused EHLO after TLS: {reply}",
                                           temporary=True, remote_mta=host.name)
            if self.tls.mode == "required" and not session.tls:
                await session.close()
                raise AttemptError("4.7.5", f"{where} does not offer STARTTLS and TLS is required",
                                   temporary=True, remote_mta=host.name)
        except _Lost as exc:
            await session.abort()
            raise AttemptError("4.4.2", f"{where}: {exc}", temporary=True,
                               remote_mta=host.name) from exc
        return session

    async def _handshake(self, session: SMTPSession, host: MXHost) -> None:
        async with asyncio.timeout(self.timeouts.tls_handshake):
            await session._writer.start_tls(self.tls.context(), server_hostname=host.name)
        session._conn.tls_established()
        session.tls = True
