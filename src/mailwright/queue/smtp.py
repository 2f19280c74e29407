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
* the destination's own TLS policy overrides that, per MX host (docs/transport.md): DANE
  (RFC 7672) when DNSSEC authenticates the MX and the host's TLSA records, else the domain's
  MTA-STS policy (RFC 8461), else opportunistic TLS. Under DANE or an ``enforce`` MTA-STS
  policy a host without STARTTLS, with a certificate that does not verify, or (MTA-STS) not
  listed in the policy is not used: the attempt fails temporarily with the reason, and the
  message waits (then bounces at max_age). A ``testing`` policy only reports;
* a message sent with REQUIRETLS (RFC 8689) goes only to a host authenticated by DANE or
  MTA-STS (``testing`` treated as ``enforce``) that advertises REQUIRETLS; else it fails
  permanently with 5.7.30;
* every TLS session, good or bad, is told to ``OutboundClient.reporter`` for TLS-RPT (RFC 8460);
* one ``SMTPSession`` carries several messages in turn (connection reuse).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mailwright.dns.mx import MXHost, RouteError, host_addresses, route
from mailwright.dns.resolver import DNSBogus, DNSError, IPAddress, Resolver
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
from mailwright.transport.dane import DaneLookup, lookup_tlsa, match_chain
from mailwright.transport.mtasts import MTASTS, Policy

__all__ = [
    "AttemptError",
    "OutboundClient",
    "Outcome",
    "RecipientResult",
    "SMTPSession",
    "TLSOutcome",
    "TLSPolicy",
    "Timeouts",
]

log = logging.getLogger("mailwright.queue")

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
        return _context("verify" if self.verify else "opportunistic", self.ca_file)

    def verifying_context(self) -> ssl.SSLContext:
        """The system trust store plus ``[outbound] ca_file`` (a private CA), host names checked
        (MTA-STS, RFC 8461 4.2; the MTA-STS policy fetch, 3.3)."""
        return _context("verify", self.ca_file)

    @staticmethod
    def unverified_context() -> ssl.SSLContext:
        """For DANE: the certificate is checked against the TLSA records after the handshake."""
        return _context("none", None)


@functools.lru_cache(maxsize=16)
def _context(kind: str, ca_file: str | None) -> ssl.SSLContext:
    """Contexts are made once and shared: loading the system trust store costs tens of
    milliseconds, once per handshake before (docs/transport.md, figures)."""
    if kind == "none":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context()
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        if kind == "opportunistic":
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@dataclass(frozen=True, slots=True)
class TLSOutcome:
    """One outbound TLS session (or its failure) for TLS-RPT (RFC 8460 4)."""

    policy_domain: str
    policy_type: str  # "sts", "tlsa" or "no-policy-found"
    policy_string: tuple[str, ...]
    result_type: str  # "" for success, else an RFC 8460 4.3 result type
    mx_host: str = ""
    receiving_ip: str = ""
    info: str = ""


@dataclass(frozen=True, slots=True)
class _HostPlan:
    """How TLS is done with one MX host: ``dane`` (TLSA records), ``dane-unauthenticated`` (a
    secure TLSA RRset without usable records: TLS required, nothing to check, RFC 7672 2.2),
    ``sts`` (web PKI with the MX name, RFC 8461 4.2) or ``opportunistic``."""

    domain: str
    kind: Literal["dane", "dane-unauthenticated", "sts", "opportunistic"]
    enforce: bool  # failures stop delivery to this host (else reported only)
    dane: DaneLookup = field(default_factory=DaneLookup)
    policy: Policy | None = None
    requiretls: bool = False
    quiet: bool = False  # a retry after a reported failure: its session is not counted again

    @property
    def policy_type(self) -> str:
        if self.kind.startswith("dane"):
            return "tlsa"
        return "sts" if self.kind == "sts" else "no-policy-found"

    @property
    def policy_string(self) -> tuple[str, ...]:
        if self.kind.startswith("dane"):
            return tuple(r.text() for r in self.dane.records)
        return self.policy.text if self.policy is not None and self.kind == "sts" else ()

    @property
    def authenticated(self) -> bool:
        return self.kind in ("dane", "sts")


def _verify_failure(exc: ssl.SSLError) -> str:
    """RFC 8460 4.3 result type for a failed certificate verification."""
    code = getattr(exc, "verify_code", None)
    if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        return "certificate-host-mismatch"
    if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        return "certificate-expired"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate-not-trusted"
    return "validation-failure"


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
        self.verified = False  # the certificate was authenticated by DANE or MTA-STS
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
    sts: MTASTS | None = None  # MTA-STS lookups (RFC 8461); None: not used
    dane: bool = False  # DANE (RFC 7672); needs a resolver that can authenticate (dnssec)
    reporter: Callable[[TLSOutcome], Awaitable[None]] | None = None  # TLS-RPT counting

    async def _report(self, outcome: TLSOutcome) -> None:
        if self.reporter is None:
            return
        try:
            await self.reporter(outcome)
        except Exception as exc:  # noqa: BLE001 - reporting must never stop delivery
            log.warning("TLS report result not recorded: %s", exc)

    async def connect(self, domain: str, *, requiretls: bool = False,
                      ignore_policy: bool = False) -> SMTPSession:
        """A ready session to the best reachable host of ``domain``; raises ``AttemptError``.

        ``requiretls``: the message was sent with REQUIRETLS (RFC 8689 4.2.1);
        ``ignore_policy``: it carries ``TLS-Required: No`` (RFC 8689 5), so DANE and MTA-STS
        failures do not stop it (opportunistic TLS).
        """
        try:
            hosts = await route(self.resolver, domain,
                                local_names=self.local_names or frozenset({self.helo_name.lower()}))
        except RouteError as exc:
            raise AttemptError(exc.status, exc.text, temporary=exc.temporary) from exc
        if domain.startswith("[") or ignore_policy:
            if requiretls:
                raise AttemptError("5.7.30", f"REQUIRETLS: {domain} has no TLS policy to "
                                   "authenticate its server (RFC 8689)", temporary=False)
            return await self.connect_hosts(hosts)
        domain = domain.lower().rstrip(".")
        policy: Policy | None = None
        if self.sts is not None:
            lookup = await self.sts.lookup(domain)
            policy = lookup.policy
            if lookup.failure:
                await self._report(TLSOutcome(domain, "sts", policy.text if policy else (),
                                              lookup.failure, info=lookup.reason))
                log.info("MTA-STS for %s: %s (%s)", domain, lookup.failure, lookup.reason)
        if policy is not None and policy.mode == "none":
            policy = None
        if policy is not None and (policy.mode == "enforce" or requiretls):
            matching = [h for h in hosts if policy.matches(h.name)]
            if not matching:
                # RFC 8461 4.1: MX hosts that the policy does not list are not used.
                names = ", ".join(h.name for h in hosts)
                for h in hosts:
                    await self._report(TLSOutcome(domain, "sts", policy.text, "validation-failure",
                                                  h.name, info="MX host not in the policy"))
                raise AttemptError("4.7.5", f"MTA-STS: no MX host of {domain} ({names}) is "
                                   f"listed in its policy (mx: {', '.join(policy.mx)})",
                                   temporary=True)
            hosts = matching
        mx_secure = False
        if self.dane and self.resolver.dnssec:
            # RFC 7672 2.2.1: only an authenticated MX RRset makes the host names trustworthy.
            try:
                _, mx_secure = await self.resolver.authenticated(
                    domain, "A" if hosts and hosts[0].implicit else "MX")
            except DNSBogus as exc:
                # RFC 7672 2.1.1: a bogus answer is no licence to fall back to cleartext.
                await self._report(TLSOutcome(domain, "tlsa", (), "dnssec-invalid",
                                              info=exc.reason))
                raise AttemptError("4.7.5", f"DANE: {exc}", temporary=True) from exc
            except DNSError:
                mx_secure = False
        return await self.connect_hosts(hosts, domain=domain, policy=policy,
                                        mx_secure=mx_secure, requiretls=requiretls)

    async def _addresses_secure(self, host: MXHost) -> bool:
        """RFC 7672 2.2.2: TLSA records are looked up only for a host whose address records
        are authenticated (else the host could be redirected without the zone's signature)."""
        if host.implicit and host.addresses:
            return True  # the domain's own A/AAAA, already checked as the "MX" lookup
        for rdtype in ("A", "AAAA"):
            try:
                _, secure = await self.resolver.authenticated(host.name, rdtype)
            except DNSBogus:
                raise
            except DNSError:
                continue
            return secure
        return False

    async def _plan(self, host: MXHost, domain: str, policy: Policy | None, mx_secure: bool,
                    requiretls: bool) -> _HostPlan:
        try:
            addresses_secure = mx_secure and await self._addresses_secure(host)
        except DNSBogus as exc:
            await self._report(TLSOutcome(domain, "tlsa", (), "dnssec-invalid", host.name,
                                          info=exc.reason))
            raise AttemptError("4.7.5", f"DANE: {exc}", temporary=True,
                               remote_mta=host.name) from exc
        if addresses_secure:
            dane = await lookup_tlsa(self.resolver, host.name, 25)
            if dane.error:
                await self._report(TLSOutcome(domain, "tlsa", (), "dnssec-invalid", host.name,
                                              info=dane.error))
                raise AttemptError("4.7.5", f"DANE: {dane.error}", temporary=True,
                                   remote_mta=host.name)
            if dane.records:
                return _HostPlan(domain, "dane", True, dane, requiretls=requiretls)
            if dane.secure:
                return _HostPlan(domain, "dane-unauthenticated", True, dane,
                                 requiretls=requiretls)
        if policy is not None:
            return _HostPlan(domain, "sts", policy.mode == "enforce" or requiretls,
                             policy=policy, requiretls=requiretls)
        return _HostPlan(domain, "opportunistic", False, requiretls=requiretls)

    async def connect_hosts(self, hosts: Sequence[MXHost], *, domain: str = "",
                            policy: Policy | None = None, mx_secure: bool = False,
                            requiretls: bool = False) -> SMTPSession:
        errors: list[AttemptError] = []
        for host in hosts:
            try:
                addresses = await host_addresses(self.resolver, host, prefer_ipv6=self.prefer_ipv6)
            except DNSError as exc:
                errors.append(AttemptError("4.4.3" if exc.temporary else "5.4.4",
                                           f"{host.name}: {exc.reason}", temporary=exc.temporary,
                                           remote_mta=host.name))
                continue
            try:
                plan = await self._plan(host, domain or host.name, policy, mx_secure, requiretls)
            except AttemptError as exc:
                errors.append(exc)
                continue
            if requiretls and not plan.authenticated:
                # RFC 8689 4.2.1: the next hop must be authenticated by MTA-STS or DANE.
                errors.append(AttemptError(
                    "5.7.30", f"REQUIRETLS: no MTA-STS policy or DANE record authenticates "
                    f"{host.name} (RFC 8689)", temporary=False, remote_mta=host.name))
                continue
            for address in addresses:
                try:
                    return await self._open(host, address, plan=plan)
                except AttemptError as exc:
                    errors.append(exc)
        if not errors:
            raise AttemptError("4.4.1", "no hosts to try", temporary=True)
        # Permanent only if every host said so (e.g. 5xx greetings everywhere).
        temporary = any(e.temporary for e in errors)
        last = next((e for e in reversed(errors) if e.temporary == temporary), errors[-1])
        summary = "; ".join(e.text for e in errors[-4:])
        raise AttemptError(last.status, summary, temporary=temporary, remote_mta=last.remote_mta)

    async def _open(self, host: MXHost, address: IPAddress, *, use_tls: bool = True,
                    plan: _HostPlan | None = None) -> SMTPSession:
        where = f"{host.name} [{address}]:{self.port}"
        plan = plan or _HostPlan("", "opportunistic", False)

        async def report(result_type: str, info: str = "") -> None:
            if plan.quiet or not plan.domain:
                return
            await self._report(TLSOutcome(plan.domain, plan.policy_type, plan.policy_string,
                                          result_type, host.name, str(address), info))

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
            policy_tls = plan.kind != "opportunistic"
            wants_tls = (self.tls.mode != "disabled" or policy_tls) and use_tls
            if policy_tls and use_tls and not session.extensions.starttls:
                why = f"{where} does not offer STARTTLS ({plan.kind} policy of {plan.domain})"
                await report("starttls-not-supported", why)
                if plan.enforce:
                    await session.close()
                    raise AttemptError("4.7.5", why, temporary=True, remote_mta=host.name)
            if wants_tls and session.extensions.starttls:
                reply = await session.command(StartTLS())
                if reply.code == 220:
                    try:
                        await self._handshake(session, host, plan)
                    except ssl.SSLCertVerificationError as exc:
                        await session.abort()
                        if plan.kind != "sts":
                            raise AttemptError("4.7.5", f"TLS with {where} failed: {exc}",
                                               temporary=True, remote_mta=host.name) from exc
                        # MTA-STS: the certificate must be valid for the MX name (RFC 8461 4.2).
                        why = f"MTA-STS: certificate of {where} not valid: {exc.verify_message}"
                        await report(_verify_failure(exc), why)
                        if plan.enforce:
                            raise AttemptError("4.7.5", why, temporary=True,
                                               remote_mta=host.name) from exc
                        # testing mode: reported, then delivered with opportunistic TLS
                        return await self._open(host, address, plan=replace_plan(plan))
                    except _DaneMismatch as exc:
                        await session.abort()
                        why = f"DANE: {where}: {exc}"
                        await report("validation-failure", why)
                        raise AttemptError("4.7.5", why, temporary=True,
                                           remote_mta=host.name) from exc
                    except (ssl.SSLError, OSError, TimeoutError) as exc:
                        await session.abort()
                        if policy_tls:
                            await report("validation-failure", f"TLS with {where} failed: {exc}")
                        if (self.tls.mode == "opportunistic" and not self.tls.verify
                                and not plan.enforce):
                            return await self._open(host, address, use_tls=False,
                                                    plan=replace_plan(plan))
                        raise AttemptError("4.7.5", f"TLS with {where} failed: {exc}",
                                           temporary=True, remote_mta=host.name) from exc
                    reply = await session.command(Ehlo(self.helo_name))
                    if not reply.is_positive:
                        await session.close()
                        raise AttemptError(reply.status(), f"{where} refused EHLO after TLS: {reply}",
                                           temporary=True, remote_mta=host.name)
                    await report("")
            if (self.tls.mode == "required" or plan.enforce) and not session.tls:
                await session.close()
                raise AttemptError("4.7.5", f"{where} does not offer STARTTLS and TLS is required",
                                   temporary=True, remote_mta=host.name)
            if plan.requiretls and not (session.verified and session.extensions.has("REQUIRETLS")):
                # RFC 8689 4.2.1: the next hop must advertise REQUIRETLS; else the message is
                # returned (5.7.30, RFC 8689 5).
                await session.close()
                raise AttemptError("5.7.30", f"REQUIRETLS: {where} does not support REQUIRETLS "
                                   "(RFC 8689)", temporary=False, remote_mta=host.name)
        except _Lost as exc:
            await session.abort()
            raise AttemptError("4.4.2", f"{where}: {exc}", temporary=True,
                               remote_mta=host.name) from exc
        return session

    async def _handshake(self, session: SMTPSession, host: MXHost, plan: _HostPlan) -> None:
        if plan.kind == "sts":
            context = self.tls.verifying_context()
        elif plan.kind.startswith("dane"):
            context = TLSPolicy.unverified_context()
        else:
            context = self.tls.context()
        async with asyncio.timeout(self.timeouts.tls_handshake):
            await session._writer.start_tls(context, server_hostname=host.name)
        session._conn.tls_established()
        session.tls = True
        if plan.kind == "dane":
            problem = match_chain(plan.dane.records, _peer_chain(session._writer), host.name)
            if problem is not None:
                raise _DaneMismatch(problem)
        session.verified = plan.authenticated


class _DaneMismatch(Exception):
    """The server's certificate chain matches none of its TLSA records."""


def replace_plan(plan: _HostPlan) -> _HostPlan:
    """The plan for a retry after a reported (testing-mode) failure: plain opportunistic TLS."""
    return _HostPlan(plan.domain, "opportunistic", False, requiretls=plan.requiretls, quiet=True)


def _peer_chain(writer: asyncio.StreamWriter) -> list[bytes]:
    """The certificates the server sent, its own first, DER (for DANE-TA the whole chain)."""
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return []
    inner = getattr(ssl_object, "_sslobj", ssl_object)
    getter = getattr(inner, "get_unverified_chain", None)
    chain: list[bytes] = []
    if getter is not None:
        for cert in getter() or []:
            chain.append(cert if isinstance(cert, bytes)
                         else cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    if not chain:
        leaf = ssl_object.getpeercert(binary_form=True)
        if leaf:
            chain.append(leaf)
    return chain
