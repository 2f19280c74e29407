"""Any-state and not-authenticated commands: CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN,
AUTHENTICATE, ENABLE, IDLE (RFC 9051 6.1, 6.2, 6.3.1, 6.3.13; RFC 2971; RFC 5161; RFC 4959)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from mailwright.imapd.session import CloseConnection, Hibernate, No, Ok, Session, handles
from mailwright.proto import sasl
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.connection import ContinuationRequest, IdleDone, SaslResponse
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.state import State
from mailwright.store.api import Account


@handles(ast.Capability)
async def capability(s: Session, cmd: ast.Capability) -> Ok | None:
    s.untagged(b"CAPABILITY " + " ".join(s.capabilities()).encode())
    return None


@handles(ast.Noop)
async def noop(s: Session, cmd: ast.Noop) -> Ok | None:
    # RFC 9051 6.1.2: NOOP is the classic polling sync point.
    await s.sync(cmd, force=True)
    return None


@handles(ast.Check)
async def check(s: Session, cmd: ast.Check) -> Ok | None:
    await s.sync(cmd, force=True)
    return None


@handles(ast.Logout)
async def logout(s: Session, cmd: ast.Logout) -> Ok | None:
    s.untagged_status("BYE", "Logging out")
    return None


@handles(ast.Id)
async def id_(s: Session, cmd: ast.Id) -> Ok | None:
    if cmd.params:
        s.client_id = {k[:64]: (v[:256] if v is not None else None) for k, v in cmd.params}
    s.untagged(
        b"ID (" + R.quoted("name") + b" " + R.quoted("Mailwright") + b" "
        + R.quoted("version") + b" " + R.quoted(s.config.version) + b")"
    )
    return None


@handles(ast.StartTLS)
async def starttls(s: Session, cmd: ast.StartTLS) -> Ok | None:
    if not s.transport.tls_available:
        raise No("TLS is not available" if not s.transport.tls else "TLS is already active")
    await s.flush()
    # RFC 9051 6.2.1 / RFC 7817 (STARTTLS injection): whatever the client pipelined after
    # STARTTLS was sent in plaintext and must be discarded: the connection core's buffer
    # here, the transport's before the OK is sent (after it, the next bytes are the ClientHello).
    s.conn = s._new_connection()
    try:
        await s.transport.start_tls(R.tagged(cmd.tag, "OK", "Begin TLS negotiation now"))
    except Exception:  # noqa: BLE001 - handshake failure ends the connection
        raise CloseConnection from None
    return Ok(sent=True)


async def _logged_in(s: Session, account: Account | None, user: str) -> Ok:
    if account is None:
        raise No("Authentication failed", "AUTHENTICATIONFAILED")
    s.account = account
    return Ok("Logged in", s_capability_after_login(s))


def s_capability_after_login(s: Session) -> str:
    # RFC 9051 7.1: a CAPABILITY code in the tagged OK spares the client a round trip;
    # the state is still "not authenticated" here, so compute the post-login list.
    prev = s.state
    s.state = State.AUTHENTICATED
    try:
        return s.capability_code()
    finally:
        s.state = prev


@handles(ast.Login)
async def login(s: Session, cmd: ast.Login) -> Ok | None:
    if not s.plaintext_ok:
        # RFC 9051 6.2.3: LOGINDISABLED; the client must use STARTTLS first.
        raise No("Plaintext authentication is disabled; use STARTTLS", "PRIVACYREQUIRED")
    account = await s.auth.authenticate(cmd.username, cmd.password, s.transport.peer_ip)
    return await _logged_in(s, account, cmd.username)


@handles(ast.Authenticate)
async def authenticate(s: Session, cmd: ast.Authenticate) -> Ok | None:
    mech = sasl.server_mechanism(cmd.mechanism)
    if mech is None or cmd.mechanism not in ("PLAIN", "LOGIN"):
        raise No(f"Unsupported authentication mechanism {cmd.mechanism}", "CANNOT")
    if not s.plaintext_ok:
        raise No("Plaintext authentication is disabled; use STARTTLS", "PRIVACYREQUIRED")
    step = mech.start(cmd.initial)
    rounds = 0
    while isinstance(step, sasl.Challenge):
        rounds += 1
        if rounds > 5:
            raise ProtocolError("too many SASL rounds")
        s.write(R.encode(R.Continuation(data=base64.b64encode(step.data))))
        await s.flush()
        s.conn.expect_sasl_response()
        ev = await s.next_event()
        if ev is None:
            raise CloseConnection
        if not isinstance(ev, SaslResponse):
            if isinstance(ev, ContinuationRequest):
                s.conn.reject_literal()
            raise ProtocolError("expected a SASL response")
        if ev.data is None:
            # RFC 9051 6.2.2: "*" cancels with a tagged BAD.
            raise ProtocolError("Authentication cancelled")
        try:
            decoded = base64.b64decode(ev.data, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("invalid base64 in SASL response") from None
        step = mech.step(decoded)
    if isinstance(step, sasl.SaslFailure):
        raise No(step.reason, "AUTHENTICATIONFAILED")
    if step.authzid and step.authzid != step.authcid:
        raise No("Authorization identity must match", "AUTHORIZATIONFAILED")
    account = await s.auth.authenticate(step.authcid, step.password, s.transport.peer_ip)
    return await _logged_in(s, account, step.authcid)


@handles(ast.Enable)
async def enable(s: Session, cmd: ast.Enable) -> Ok | None:
    enabled: list[str] = []
    for cap in cmd.capabilities:
        if cap == "IMAP4REV2" and not s.rev2:
            s.rev2 = True
            s.utf8 = True  # RFC 9051 5.1: UTF-8 mailbox names
            enabled.append("IMAP4rev2")
        elif cap == "CONDSTORE" and not s.condstore:
            s.enable_condstore()
            enabled.append("CONDSTORE")
        elif cap == "QRESYNC" and not s.qresync:
            # RFC 7162 3.2.3: QRESYNC implies CONDSTORE
            s.qresync = True
            s.enable_condstore()
            enabled.append("QRESYNC")
        elif cap == "UIDONLY" and not s.uidonly:
            # RFC 9586 3.1; from now on no message sequence numbers either way
            s.uidonly = True
            enabled.append("UIDONLY")
        elif cap in ("UTF8=ACCEPT", "UTF8=ONLY") and not s.utf8:
            s.utf8 = True
            enabled.append("UTF8=ACCEPT")
    s.untagged(b"ENABLED" + b"".join(b" " + c.encode() for c in enabled))
    return None


@handles(ast.Compress)
async def compress(s: Session, cmd: ast.Compress) -> Ok | None:
    """RFC 4978: from the CRLF after our OK on, both directions are deflated."""
    from mailwright.imapd.compress import DeflateCodec

    if cmd.mechanism != "DEFLATE":
        raise No(f"Unsupported compression mechanism {cmd.mechanism}", "CANNOT")
    if s.codec is not None:
        raise No("Compression is already active", "COMPRESSIONACTIVE")
    if s.conn.buffered:
        # the client must wait for our OK before compressing (RFC 4978 3)
        raise ProtocolError("COMPRESS must not be pipelined")
    s.write(R.tagged(cmd.tag, "OK", "DEFLATE active"))
    await s.flush()
    s.codec = DeflateCodec()
    return Ok(sent=True)


@handles(ast.Idle)
async def idle(s: Session, cmd: ast.Idle) -> Ok | None:
    """RFC 9051 6.3.13 / RFC 2177: report changes as they happen until DONE.

    Whenever nothing is left to do but wait, the session may hibernate (`Session.hibernate`,
    imapd/hibernate.py): its coroutines return and a session rebuilt later comes back here
    with ``idle_resumed`` set, the continuation request long sent."""
    resumed, s.idle_resumed = s.idle_resumed, None
    if resumed is None:
        s.idle_deadline = None  # a new IDLE: the client spoke
        await s.sync(cmd, force=True)
        s.write(R.encode(R.Continuation("idling")))
        await s.flush()
        s.conn.expect_idle_done()
    changed = resumed == "change"
    reader: asyncio.Future[Any] | None = None
    try:
        while True:
            # RFC 5465: with NOTIFY on, its set says what IDLE reports (imapd/notify.py)
            notifier = s.notifier
            sub = s.subscription if notifier is None else None
            if reader is None:
                if changed or (notifier is not None and notifier.watch.pending) or (
                    sub is not None and sub.pending
                ):
                    changed = False
                    await _idle_news(s, notifier)
                    continue
                s.hibernate_view()
                record = s.hibernate(cmd.tag)
                if record is not None:
                    raise Hibernate(record)
                reader = asyncio.ensure_future(s.next_event())
            s.hibernate_view()
            waiter: asyncio.Future[object] | None = None
            if notifier is not None:
                waiter = asyncio.ensure_future(notifier.watch.wait())
            elif sub is not None:
                waiter = asyncio.ensure_future(sub.wait())  # type: ignore[assignment]
            waits: set[asyncio.Future[object]] = {reader}
            if waiter is not None:
                waits.add(waiter)
            done, _ = await asyncio.wait(
                waits, timeout=s.config.idle_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter is not None and waiter not in done:
                waiter.cancel()
            if not done:
                s.untagged_status("BYE", "IDLE timed out")
                raise CloseConnection
            if reader in done:
                ev = reader.result()
                if ev is None:
                    raise CloseConnection
                if not isinstance(ev, IdleDone) or not ev.valid:
                    raise ProtocolError("expected DONE")
                await s.wake_view()
                return Ok("IDLE terminated")
            await _idle_news(s, notifier)
    except (CloseConnection, Hibernate):
        raise  # the view dies with the session (or is frozen in the record): no need to wake it
    except Exception:
        await s.wake_view()  # BAD for a line other than DONE: the session goes on
        raise
    finally:
        if reader is not None and not reader.done():
            reader.cancel()


async def _idle_news(s: Session, notifier: Any) -> None:
    """A change arrived: RFC 9051 6.3.13 allows EXPUNGE during IDLE."""
    await s.wake_view()
    if notifier is not None:
        if s.notifier is notifier:
            await notifier.deliver(s, None, idle=True)
    else:
        await s.sync(None, force=True)
    await s.flush()
