"""The asyncio adapter between a `net.server.Connection` and the SMTP core and session.

Thin on purpose (uvicorn's h11_impl is the model): read only when the core needs data, so
pipelined input waits in the socket rather than in memory; hand each event to the session and
its answer back to the core; write the queued replies whenever we are about to wait for the
peer (RFC 2920 3.1). The only other things done here are what only the adapter can do: the TLS
handshake after STARTTLS, timeouts (RFC 5321 4.5.3.2), graceful shutdown and hanging up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mailwright.config import ConfigError
from mailwright.mailauth import KeyStore, MailauthSettings
from mailwright.mailauth.srs import SRS, SRSError, srs_from_config
from mailwright.net.limits import CommandRateLimiter, Deadline
from mailwright.proto import smtp
from mailwright.proto.sasl import SUPPORTED

from .session import Mode, Services, SessionSettings, SmtpSession

if TYPE_CHECKING:
    from mailwright.app import AppContext
    from mailwright.config import ListenerConfig
    from mailwright.net.server import Connection, Handler

READ_SIZE = 65536
# RFC 5321 4.5.3.2.7: at least 5 minutes waiting for a command; 4.5.3.2.6: 10 minutes after the
# end of data; 4.5.3.2.5: 3 minutes for each block of data. One idle timeout covers all reads,
# and it is never shorter than 3 minutes.
MIN_TIMEOUT = 180.0
WRITE_TIMEOUT = 300.0

_ANSWERED = (
    smtp.Hello,
    smtp.MailFrom,
    smtp.RcptTo,
    smtp.MessageStart,
    smtp.BdatChunkEnd,
    smtp.MessageEnd,
    smtp.AuthCredentials,
)
# A graceful shutdown lets a transaction in flight finish (operator contract: `serve`).
_BUSY_STATES = frozenset(
    {
        smtp.State.MAIL,
        smtp.State.RCPT,
        smtp.State.DATA_CONTENT,
        smtp.State.BDAT_CHUNK,
        smtp.State.BDAT,
        smtp.State.AUTH,
    }
)


def mode_for(protocol: str) -> Mode:
    return Mode.MX if protocol == "smtp" else Mode.SUBMISSION


def services_for(ctx: AppContext) -> Services:
    """The slice of the application a session uses; `[mailauth]` errors surface here."""
    data_dir = ctx.config.server.data_dir
    return Services(
        store=ctx.store,
        directory=ctx.directory,
        authenticator=ctx.authenticator,
        delivery=ctx.delivery,
        outbound=ctx.outbound,
        hostname=ctx.hostname,
        data_dir=data_dir,
        resolver=ctx.resolver,
        mailauth=MailauthSettings.from_mapping(ctx.config.mailauth),
        dkim_keys=KeyStore(data_dir),
        spam=ctx.spam,
        srs=srs_for(ctx),
        dmarc_record=ctx.config.dmarc.send_reports,
        dmarc_report_address=ctx.config.dmarc.report_address,
    )


def srs_for(ctx: AppContext) -> SRS | None:
    """SRS under `[srs] secret`, or the secret kept in the data directory (made once)."""
    try:
        return srs_from_config(ctx.config.srs, ctx.config.server.data_dir)
    except (OSError, SRSError) as exc:
        raise ConfigError(
            str(ctx.config.source), "srs.secret", f"no secret given and none usable: {exc}"
        ) from None


def make_core(
    hostname: str,
    mode: Mode,
    *,
    tls_active: bool,
    tls_available: bool,
    max_message_size: int,
    max_recipients: int,
) -> smtp.ServerConnection:
    return smtp.ServerConnection(
        hostname,
        max_message_size=max_message_size,
        max_recipients=max_recipients,
        tls_active=tls_active,
        starttls=tls_available,
        # AUTH only on submission and only under TLS (issue 3, item 4); the MX never
        # authenticates, so nothing can make it relay.
        auth_mechanisms=SUPPORTED if mode is Mode.SUBMISSION else (),
        auth_requires_tls=True,
        requiretls=True,  # RFC 8689: the outbound queue honours it (docs/transport.md)
        # Submission answers MAIL before EHLO with policy (530 until authenticated), as
        # Postfix does; the MX insists on EHLO/HELO first (RFC 5321 4.1.4).
        helo_required=mode is Mode.MX,
        # RFC 4468: BURL imap on submission, once authenticated (smtpd/session.py burl())
        burl=mode is Mode.SUBMISSION,
    )


def create(ctx: AppContext, listener: ListenerConfig) -> Handler:
    """The handler for one `smtp`, `submission` or `submissions` listener."""
    limits = ctx.config.limits
    mode = mode_for(listener.protocol)
    # one free-space reserve for the whole server: [storage] min_free (452 4.3.1 below it)
    settings = SessionSettings(mode=mode, max_message_size=limits.max_message_size,
                               min_free_bytes=ctx.config.storage.min_free)  # fmt: skip
    services = services_for(ctx)
    timeout = max(MIN_TIMEOUT, limits.idle_timeout)

    async def handle(conn: Connection) -> None:
        core = make_core(
            ctx.hostname,
            mode,
            tls_active=conn.tls,
            tls_available=conn.ssl_context is not None,
            max_message_size=limits.max_message_size,
            max_recipients=min(limits.max_recipients, 1000),
        )
        session = SmtpSession(services, settings, peer_ip=conn.peer_ip, tls=conn.tls)
        # spam defence before the greeting: pregreet test, DNS block lists (554 greeting)
        greeting = None
        if mode is Mode.MX and ctx.spam is not None and not conn.closing.is_set():
            greeting = await ctx.spam.screen_connection(conn.peer_ip, conn.reader)
        await serve(conn, core, session, timeout=timeout, limiter=ctx.limiter, greeting=greeting)

    return handle


async def answer(core: smtp.ServerConnection, session: SmtpSession, event: smtp.Event) -> None:
    """Let the session decide on `event` and tell the core (everything but STARTTLS I/O)."""
    if isinstance(event, smtp.BurlPart):
        data = await session.burl(event)
        if isinstance(data, bytes):
            core.burl_data(data)
        else:
            core.reject(data)
        return
    reply = await session.handle(event)
    if isinstance(event, _ANSWERED):
        if reply is None or reply.is_positive:
            core.accept(reply)
        else:
            core.reject(reply)
    elif isinstance(event, smtp.DataChunk) and reply is not None:
        core.abort_message(reply)


async def serve(
    conn: Connection,
    core: smtp.ServerConnection,
    session: SmtpSession,
    *,
    timeout: float,
    limiter: CommandRateLimiter | None = None,
    greeting: smtp.Reply | None = None,
) -> None:
    """Run one SMTP connection to its end (`greeting`: a refusal to greet with instead)."""
    closing: asyncio.Future[Any] = asyncio.ensure_future(conn.closing.wait())
    reading = _Reading(asyncio.current_task())
    closing.add_done_callback(reading.interrupt)
    try:
        if conn.closing.is_set():
            core.greet(smtp.Reply(421, "4.3.2", f"{core.hostname} Service shutting down"))
        else:
            core.greet(greeting)
        await _loop(conn, core, session, closing, reading, timeout, limiter)
    finally:
        closing.cancel()
        session.close()
        if session.account is not None:
            conn.user = session.account.address


async def _loop(
    conn: Connection,
    core: smtp.ServerConnection,
    session: SmtpSession,
    closing: asyncio.Future[Any],
    reading: _Reading,
    timeout: float,
    limiter: CommandRateLimiter | None = None,
) -> None:
    # Slow senders: the timeout runs from the last complete command, not from the last byte,
    # so a command trickled a byte at a time cannot hold the session for ever (issue 10).
    deadline = Deadline(timeout)
    while True:
        event = core.next_event()
        if event is smtp.NEED_DATA:
            if await _flush(conn, core):
                deadline.reset()  # a reply went out: a command (NOOP, RSET...) was complete
            if core.closed:
                conn.result = conn.result or "closed"
                return
            # During a graceful shutdown a message being received is finished first.
            idle = core.state not in _BUSY_STATES
            data = await _read(conn, reading, closing, idle, deadline.remaining())
            if data is None:
                if closing.done():
                    conn.result = "shutdown"
                    core.shutdown()
                else:
                    conn.result = "timeout"
                    core.shutdown(smtp.Reply(421, "4.4.2", f"{core.hostname} Error: timeout"))
                session.close()
                await _flush(conn, core)
                return
            core.receive_data(data)
            continue
        if event is smtp.PAUSED:  # pragma: no cover - every event is answered below
            raise AssertionError("SMTP core paused without an event to answer")
        deadline.reset()
        if limiter is not None and not isinstance(event, smtp.DataChunk):
            await limiter.wait(conn.peer_ip)  # per-address command rate, all sessions
        await answer(core, session, event)
        if session.account is not None:
            conn.user = session.account.address
        elif isinstance(event, smtp.AuthCredentials) and session.services.authenticator.is_banned(
            conn.peer_ip
        ):
            # Banned across all protocols: no more guesses on this connection either.
            conn.result = "banned"
            core.shutdown(smtp.Reply(421, "4.7.0", f"{core.hostname} Too many failed logins"))
            session.close()
            await _flush(conn, core)
            return
        if isinstance(event, smtp.StartTLS):
            conn.prepare_tls()  # stop reading and drop injected plaintext before the 220
            await _flush(conn, core)
            await conn.start_tls()
            core.tls_started()
            session.tls_started()
        elif isinstance(event, smtp.Quit):
            conn.result = "quit"
        elif isinstance(event, smtp.ConnectionClosing):
            conn.result = conn.result or event.reason


class _Reading:
    """The session's task, and whether it waits for a command: a graceful shutdown (the
    listener's `closing`) interrupts only that wait, never a message being received.

    Cheaper than racing each read against the shutdown (a task, a wait set and their
    callbacks per read, 7 % of the busy time on SMTP fan-out): the shutdown cancels the task
    once, if it is waiting idle, and `_read` takes that cancellation back.
    """

    __slots__ = ("idle", "interrupted", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.idle = False
        self.interrupted = False

    def interrupt(self, _closing: asyncio.Future[Any]) -> None:
        if self.idle and not self.interrupted and self.task is not None:
            self.interrupted = True
            self.task.cancel()


async def _read(
    conn: Connection, reading: _Reading, closing: asyncio.Future[Any], idle: bool,
    timeout: float,
) -> bytes | None:
    """The next bytes from the peer; None on timeout, or when shutting down while `idle`."""
    if idle and closing.done():
        return None
    reading.idle = idle
    try:
        async with asyncio.timeout(timeout):
            return await conn.reader.read(READ_SIZE)
    except TimeoutError:
        return None
    except asyncio.CancelledError:
        if reading.interrupted and reading.task is not None:
            reading.interrupted = False
            reading.task.uncancel()  # our own cancellation, not the server's
            return None
        raise
    finally:
        reading.idle = False


async def _flush(conn: Connection, core: smtp.ServerConnection) -> bool:
    data = core.data_to_send()
    if data:
        conn.writer.write(data)
        # a reply the kernel took at once leaves nothing to wait for (no task per reply);
        # a peer that does not read is waited for, at most WRITE_TIMEOUT
        if conn.writer.transport.get_write_buffer_size():
            await asyncio.wait_for(conn.writer.drain(), WRITE_TIMEOUT)
    return bool(data)
