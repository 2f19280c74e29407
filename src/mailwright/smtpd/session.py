"""SMTP session logic: who may send what to whom, and getting accepted mail safely stored.

House rules:
- This module decides policy on parsed events from `mailwright.proto.smtp` and answers with a
  `Reply`, or None for the core's default positive reply. It knows the Store interface and the
  domain services (directory, authenticator, delivery, outbound), never a socket or SQL.
- `250` to the end of data only after the blob is fsync'ed and every local delivery and queue
  entry is committed (issue 3, item 5); any failure before that is a 4xx, so the client keeps
  the message and retries (RFC 5321 6.1: a duplicate is better than a loss).
- The MX never relays. A recipient is accepted there only when its domain is one of ours and the
  directory resolves it; percent hacks, bang paths, quoted local parts with `@` and source
  routes never name a second destination (the core already split them off or left them inside
  the local part), address literals are not local, and trailing dots are a syntax error.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mailwright.accounts.authenticator import Authenticator
from mailwright.accounts.directory import Directory, Resolution
from mailwright.address import AddressError, normalize_domain
from mailwright.delivery.dmarcreports import receive_report, record_verdict
from mailwright.delivery.ingest import stage_bytes
from mailwright.log import event as log_event
from mailwright.mailauth import (
    Action,
    KeyStore,
    MailauthSettings,
    author_domain,
    sign_outbound_async,
    verify_inbound,
)
from mailwright.mailauth.arcseal import seal_forwarded_async
from mailwright.mailauth.srs import SRS, SRSError, is_srs
from mailwright.proto.smtp import (
    AuthCredentials,
    BdatChunkEnd,
    DataChunk,
    Event,
    Hello,
    MailFrom,
    MessageAborted,
    MessageEnd,
    MessageStart,
    RcptTo,
    Reply,
    StartTLS,
    TransactionReset,
)
from mailwright.proto.smtp import (
    Path as SmtpPath,
)
from mailwright.proto.smtp.address import is_ascii_dot_string
from mailwright.proto.smtpclient import Recipient
from mailwright.store.api import (
    Account,
    BlobWriter,
    QuotaExceeded,
    StagedBlob,
    StorageFull,
    Store,
    StoreError,
    new_queue_id,
)

from .received import received_header, return_path_header, with_protocol

log = logging.getLogger("mailwright.smtpd")

# Replies this module sends; codes from RFC 5321 4.2.2-4.2.3 and the RFC 3463 registry.
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")  # RFC 4954 6
AUTH_FAILED = Reply(535, "5.7.8", "Error: authentication failed")  # RFC 4954 6
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address rejected: not owned by user")
USER_UNKNOWN = Reply(550, "5.1.1", "Recipient address rejected: User unknown")
# A bounce address of ours that our secret did not make, or made too long ago.
BAD_SRS = Reply(550, "5.1.1", "Recipient address rejected: invalid or expired SRS address")
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
NO_LITERALS = Reply(550, "5.1.2", "Recipient address rejected: address literals not accepted")
BAD_DOMAIN = Reply(553, "5.1.3", "Recipient address rejected: invalid domain")
OUTBOUND_UNAVAILABLE = Reply(
    451, "4.3.0", "Remote delivery is not available at the moment, try again later"
)
MAILBOX_FULL = Reply(452, "4.2.2", "Mailbox full")
MESSAGE_OVER_QUOTA = Reply(552, "5.2.2", "Message exceeds the mailbox quota")
STORAGE_FULL = Reply(452, "4.3.1", "Insufficient system storage")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")


class Mode(enum.Enum):
    MX = "mx"  # port 25: mail for our domains from anyone
    SUBMISSION = "submission"  # ports 587/465: mail from our users to anyone (RFC 6409)


class Outbound(Protocol):
    async def enqueue(
        self,
        blob: StagedBlob,
        sender: str,
        recipients: Sequence[str | Recipient],
        *,
        ret: str | None = None,
        envid: str | None = None,
        queue_id: str | None = None,
    ) -> list[int]: ...


class LocalDeliverer(Protocol):
    async def deliver(
        self, blob: StagedBlob, recipients: Sequence[str], *, mailbox: str = "INBOX",
        sender: str = "", refuse_in_smtp: bool = False,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Services:
    """What a session needs from the application (a slice of `AppContext`)."""

    store: Store
    directory: Directory
    authenticator: Authenticator
    delivery: LocalDeliverer
    outbound: Outbound | None
    hostname: str
    data_dir: Path | None = None  # free-space check before taking a message
    # Message authentication (issue 7): SPF/DKIM/DMARC/ARC on the MX, DKIM signing of what
    # users submit for remote recipients. None switches each off.
    resolver: Any = None
    mailauth: MailauthSettings | None = None
    dkim_keys: KeyStore | None = None
    spam: Any = None  # mailwright.spam.service.SpamFilter on the MX; None switches it off
    # Forwarding (docs/forwarding.md): SRS rewriting of the envelope sender of mail forwarded
    # to other domains and relaying of bounces to our SRS addresses; None switches it off.
    srs: SRS | None = None
    # DMARC aggregate reports (RFC 7489 7.2): count the MX's results for domains that ask for
    # reports; reports mailed to `dmarc_report_address` are parsed and kept.
    dmarc_record: bool = False
    dmarc_report_address: str = ""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    mode: Mode
    max_message_size: int = 50 * 1024 * 1024
    # Postfix queue_minfree style: refuse MAIL with 452 4.3.1 below this much free space.
    min_free_bytes: int = 64 * 1024 * 1024


# Messages that must be seen whole (verification, signing) are kept in memory up to this size
# and spilled to a staging blob beyond it, so memory per session stays bounded.
SPILL_AT = 4 * 1024 * 1024


def _queue_id() -> str:
    return new_queue_id()


# RFC 3463 5.1.7; 553: mailbox name not allowed (RFC 5321 4.2.3)
UNANSWERABLE_SENDER = Reply(553, "5.1.7", "Sender address rejected: no reply could reach it")
_UNANSWERABLE = frozenset('"\\<>') | frozenset(map(chr, range(0x20))) | {"\x7f"}


def _answerable(path: SmtpPath) -> bool:
    """Whether a bounce could ever reach this reverse-path through ordinary relays.

    RFC 5321 4.1.2: hosts SHOULD NOT define mailboxes whose local part needs the quoted-string
    form. A local part holding a quote, a backslash, angle brackets or a control character only
    exists to be misparsed along the way; mail from it could be neither delivered nor bounced
    (RFC 5321 6.1: it must not vanish), so it is refused at MAIL instead.
    """
    return not any(c in _UNANSWERABLE for c in path.local_part)


class SmtpSession:
    """Policy for one SMTP connection; `handle(event)` returns the session's answer."""

    def __init__(
        self,
        services: Services,
        settings: SessionSettings,
        *,
        peer_ip: str,
        tls: bool,
    ) -> None:
        self.services = services
        self.settings = settings
        self.peer_ip = peer_ip
        self.tls = tls
        self.account: Account | None = None
        self.helo: Hello | None = None
        self.delivered = 0
        self._reset()

    # ----------------------------------------------------------------- dispatch

    async def handle(self, event: Event) -> Reply | None:
        """The answer to `event`: None for the core's default, a Reply to override or refuse.

        For `DataChunk` a Reply means "abort this message with that reply"; information events
        return None. An unexpected error (a bug, a broken database) becomes a 451, so the client
        keeps its message and retries; it is logged once, here.
        """
        try:
            return await self._handle(event)
        except Exception:
            log.exception("smtp session error on %s", type(event).__name__)
            self._reset()
            if isinstance(event, TransactionReset | MessageAborted | StartTLS):
                return None
            return LOCAL_ERROR

    async def _handle(self, event: Event) -> Reply | None:
        if isinstance(event, DataChunk):
            return self._data(event.data)
        if isinstance(event, Hello):
            self.helo = event
            self._reset()
            return None
        if isinstance(event, MailFrom):
            return await self._mail(event)
        if isinstance(event, RcptTo):
            return await self._rcpt(event)
        if isinstance(event, MessageStart):
            return self._message_start()
        if isinstance(event, BdatChunkEnd):
            return None
        if isinstance(event, MessageEnd):
            return await self._message_end(event)
        if isinstance(event, AuthCredentials):
            return await self._auth(event)
        if isinstance(event, MessageAborted | TransactionReset):
            self._reset()
            return None
        if isinstance(event, StartTLS):
            # RFC 3207 4.2: forget what the client told us before TLS.
            self._reset()
            self.helo = None
            self.account = None
            return None
        return None

    def tls_started(self) -> None:
        self.tls = True

    def close(self) -> None:
        """The connection is gone: drop anything half-received."""
        self._reset()

    # ----------------------------------------------------------------- transaction

    def _reset(self) -> None:
        for writer in getattr(self, "_writers", ()):
            writer.abort()
        self._writers: list[BlobWriter] = []
        self._local_writer: BlobWriter | None = None
        self._remote_writer: BlobWriter | None = None
        self._sender: SmtpPath | None = None
        self._envelope: MailFrom | None = None
        self._local: list[str] = []
        self._remote: list[Recipient] = []
        # Our domain the message is forwarded out of (an alias's or an SRS address's domain):
        # the envelope sender is SRS-rewritten into it and the forwarded copy ARC-sealed by it.
        self._forward_domain = ""
        self._dmarc_report = False  # addressed to our DMARC report address
        self._local_accounts: dict[int, Account] = {}
        self._queue_id = ""
        self._received = b""
        self._buffer: bytearray | None = None  # whole-message mode, in memory
        self._spill: BlobWriter | None = None  # whole-message mode, past SPILL_AT

    async def _mail(self, ev: MailFrom) -> Reply | None:
        self._reset()
        if self.settings.mode is Mode.SUBMISSION:
            if self.account is None:
                return AUTH_REQUIRED
            # RFC 6409 8.1: the MSA may insist that the sender is the user's own address.
            if ev.path is not None and not await self.services.directory.may_send_as(
                self.account, ev.path.mailbox
            ):
                return SENDER_NOT_OWNED
        if ev.path is not None and not _answerable(ev.path):
            log_event(log, "sender refused", reason="unanswerable", sender=ev.path.mailbox)
            return UNANSWERABLE_SENDER
        if not self._enough_space(ev.params.size or 0):
            return STORAGE_FULL
        self._envelope = ev
        self._sender = ev.path
        self._queue_id = _queue_id()
        return None

    def _enough_space(self, declared: int) -> bool:
        data_dir = self.services.data_dir
        if data_dir is None or self.settings.min_free_bytes <= 0:
            return True
        try:
            free = shutil.disk_usage(data_dir).free
        except OSError:
            return True
        return free >= self.settings.min_free_bytes + declared

    async def _rcpt(self, ev: RcptTo) -> Reply | None:
        path = ev.path
        directory = self.services.directory
        if path.domain is None:
            # RFC 5321 4.5.1: <postmaster> without a domain reaches our postmaster.
            domain = await self._primary_domain()
            if domain is None:
                return USER_UNKNOWN
            return await self._local_rcpt(f"postmaster@{domain}", ev)
        if path.literal:
            return NO_LITERALS if self.settings.mode is Mode.SUBMISSION else RELAY_DENIED
        try:
            domain = normalize_domain(path.domain)
        except AddressError:
            return BAD_DOMAIN
        local = path.local_part
        # A quoted local part (spaces, "@", ...) is never an account name of ours; anything
        # else is looked up once, which also says whether the domain is ours.
        if (
            self.services.srs is not None
            and is_srs(local)
            and await directory.is_local_domain(domain)
        ):
            return self._srs_rcpt(f"{local}@{domain}", ev)
        if (
            self.settings.mode is Mode.MX
            and self.services.dmarc_report_address
            and f"{local}@{domain}".lower() == self.services.dmarc_report_address
        ):
            # Reports are kept in the store (`mailwright dmarc reports`); when the address is
            # also a mailbox or alias, the message is delivered there as well.
            self._dmarc_report = True
            res = await directory.resolve(f"{local}@{domain}")
            if res.local_domain and res.deliverable:
                return await self._local_rcpt(f"{local}@{domain}", ev, res)
            return None
        if not path.quoted or is_ascii_dot_string(local):
            address = f"{local}@{domain}"
            res = await directory.resolve(address)
            if res.local_domain:
                return await self._local_rcpt(address, ev, res)
        if await directory.is_local_domain(domain):
            return USER_UNKNOWN
        if self.settings.mode is Mode.MX or self.account is None:
            return RELAY_DENIED
        if self.services.outbound is None:
            return OUTBOUND_UNAVAILABLE
        self._remote.append(Recipient(path.mailbox, notify=ev.params.notify, orcpt=ev.params.orcpt))
        return None

    def _srs_rcpt(self, address: str, ev: RcptTo) -> Reply | None:
        """A (bounce) message to one of our SRS addresses goes back to whom it encodes."""
        assert self.services.srs is not None
        try:
            original = self.services.srs.reverse(address)
        except SRSError as exc:
            log_event(log, "recipient refused", reason=str(exc), rcpt=address)
            return BAD_SRS
        if self.services.outbound is None:
            return OUTBOUND_UNAVAILABLE
        self._remote.append(
            Recipient(original, notify=ev.params.notify, orcpt=("rfc822", address))
        )
        self._forward_domain = self._forward_domain or address.rpartition("@")[2]
        return None

    async def _forward_sender(self) -> str:
        """The reverse-path for the forwarded copy: SRS-rewritten when it is not ours.

        RFC 7208 (SPF) at the next hop checks the reverse-path's domain against our address,
        so a foreign sender's domain would fail there; the SRS address is at our domain.
        """
        sender = self._sender_text()
        srs = self.services.srs
        if not sender or srs is None or not self._forward_domain:
            return sender
        domain = sender.rpartition("@")[2].lower()
        if await self.services.directory.is_local_domain(domain):
            return sender
        try:
            return srs.forward(sender, self._forward_domain)
        except SRSError:
            return sender

    async def _primary_domain(self) -> str | None:
        domains = [d.name for d in await self.services.store.list_domains()]
        host = self.services.hostname.lower()
        for name in domains:
            if host == name or host.endswith("." + name):
                return name
        return domains[0] if domains else None

    async def _local_rcpt(
        self, address: str, ev: RcptTo, res: Resolution | None = None
    ) -> Reply | None:
        if res is None:
            res = await self.services.directory.resolve(address)
        if not res.local_domain or not res.deliverable:
            return USER_UNKNOWN
        if res.remote and self.services.outbound is None:
            return OUTBOUND_UNAVAILABLE
        if self.settings.mode is Mode.MX and self.services.spam is not None:
            refusal = await self.services.spam.check_recipient(
                self.peer_ip, self._sender_text(), address
            )  # greylisting and rate limits
            if refusal is not None:
                return refusal  # type: ignore[no-any-return]
        declared = self._envelope.params.size if self._envelope is not None else None
        for account in res.accounts:
            if account.quota_bytes:
                used = (await self.services.store.usage(account.id)).bytes
                if used >= account.quota_bytes:
                    return MAILBOX_FULL
                if declared is not None and used + declared > account.quota_bytes:
                    return MESSAGE_OVER_QUOTA
        if res.accounts:
            self._local.append(address)
            for account in res.accounts:
                self._local_accounts[account.id] = account
        for target in res.remote:
            # Alias forwarding: the original recipient travels as ORCPT (RFC 3461 4.2).
            self._remote.append(
                Recipient(target, notify=ev.params.notify, orcpt=("rfc822", address))
            )
            self._forward_domain = self._forward_domain or address.rpartition("@")[2]
        return None

    # ----------------------------------------------------------------- message

    def _sender_text(self) -> str:
        return "" if self._sender is None else self._sender.mailbox

    def _whole_message_needed(self) -> bool:
        services = self.services
        if self._dmarc_report:
            return True
        if services.mailauth is None:
            return False
        if self.settings.mode is Mode.MX:
            return services.resolver is not None or self._dmarc_report
        return bool(self._remote) and services.dkim_keys is not None

    def _message_start(self) -> Reply | None:
        recipients = len(self._local) + len(self._remote)
        one = (self._local + [r.address for r in self._remote])[0] if recipients == 1 else None
        assert self._envelope is not None
        self._received = received_header(
            helo=self.helo.name if self.helo else "unknown",
            peer_ip=self.peer_ip,
            hostname=self.services.hostname,
            protocol=with_protocol(
                esmtp=bool(self.helo and self.helo.extended),
                tls=self.tls,
                authenticated=self.account is not None,
                utf8=self._envelope.params.smtputf8,
            ),
            queue_id=self._queue_id,
            recipient=one,
            when=datetime.now(UTC),
        )
        if self._whole_message_needed():
            self._buffer = bytearray()
            return None
        store = self.services.store
        try:
            if self._local:
                self._local_writer = store.blob_writer()
                self._writers.append(self._local_writer)
            if self._remote:
                self._remote_writer = store.blob_writer()
                self._writers.append(self._remote_writer)
        except StorageFull:
            self._reset()
            return STORAGE_FULL
        except OSError:
            self._reset()
            return LOCAL_ERROR
        if self._local_writer is not None:
            # RFC 5321 4.4: Return-Path is added at final delivery, which this is.
            self._local_writer.write(return_path_header(self._sender_text()))
            self._local_writer.write(self._received)
        if self._remote_writer is not None:
            self._remote_writer.write(self._received)
        return None

    def _data(self, data: bytes) -> Reply | None:
        if self._spill is not None:
            self._spill.write(data)
        elif self._buffer is not None:
            self._buffer += data
            if len(self._buffer) > SPILL_AT:
                try:
                    self._spill = self.services.store.blob_writer()
                except (StoreError, OSError):
                    return STORAGE_FULL
                self._writers.append(self._spill)
                self._spill.write(bytes(self._buffer))
                self._buffer = bytearray()
        for writer in (self._local_writer, self._remote_writer):
            if writer is not None:
                writer.write(data)
        return None

    async def _whole_message(self) -> bytes:
        if self._spill is None:
            assert self._buffer is not None
            return bytes(self._buffer)
        spill, self._spill = self._spill, None
        self._writers.remove(spill)
        staged = await spill.finish()
        try:
            return await asyncio.to_thread(staged.path.read_bytes)
        finally:
            staged.path.unlink(missing_ok=True)

    async def _stage_whole(self) -> tuple[StagedBlob | None, StagedBlob | None, str] | Reply:
        """Verify (MX) or sign (submission) the whole message, then stage what to store."""
        services = self.services
        message = await self._whole_message()
        mailbox = "INBOX"
        local_content = remote_content = message
        if services.mailauth is None:
            pass  # only here to read a DMARC report (below)
        elif self.settings.mode is Mode.MX and services.resolver is not None:
            domain = self._local[0].rpartition("@")[2] if self._local else ""
            verdict = await verify_inbound(
                services.resolver,
                hostname=services.hostname,
                client_ip=self.peer_ip,
                helo=self.helo.name if self.helo else "",
                mail_from=self._sender_text(),
                message_bytes=message,
                policy=services.mailauth.for_domain(domain),
            )
            if services.dmarc_record and verdict.action is not Action.TEMPFAIL:
                # (a temporary failure comes back and is counted then)
                try:
                    await record_verdict(
                        services.store, verdict, client_ip=self.peer_ip,
                        mail_from=self._sender_text(),
                    )  # fmt: skip
                except (StoreError, OSError) as exc:  # reporting must not cost a message
                    log.warning("dmarc result not recorded: %s", exc)
            if verdict.action in (Action.REJECT, Action.TEMPFAIL) and verdict.reply is not None:
                log_event(log, "message refused by mail authentication", reason=verdict.reason)
                return verdict.reply
            mailbox = verdict.mailbox or "INBOX"
            local_content = remote_content = verdict.authenticated_message
            if services.spam is not None:  # score, X-Spam-* fields, Junk or 554 at end of DATA
                spam = await services.spam.filter_message(
                    verdict, self.peer_ip, self.helo.name if self.helo else "",
                    self._sender_text(), self._local, list(self._local_accounts),
                )  # fmt: skip
                if spam.reply is not None:
                    log_event(log, "message refused as spam", score=spam.judgement.score)
                    return spam.reply  # type: ignore[no-any-return]
                local_content, mailbox = spam.content, spam.mailbox or mailbox
            if self._remote and self._forward_domain and services.dkim_keys is not None:
                # RFC 8617 5.1: a forwarder seals what it saw, so the next hop can trust it.
                seal = await seal_forwarded_async(
                    remote_content, self._forward_domain, services.dkim_keys, services.hostname
                )
                remote_content = seal + remote_content
        elif self._remote and services.dkim_keys is not None:
            domain_name = author_domain(message)
            if domain_name and services.mailauth.for_domain(domain_name).dkim_sign:
                try:
                    signature = await sign_outbound_async(message, domain_name, services.dkim_keys)
                except ValueError:
                    signature = b""
                remote_content = signature + message
        store = services.store
        if self._dmarc_report and self.settings.mode is Mode.MX:
            await receive_report(store, message)
        local_blob = remote_blob = None
        if self._local:
            prefix = return_path_header(self._sender_text()) + self._received
            local_blob = await stage_bytes(store, local_content, prefix=prefix)
        if self._remote:
            remote_blob = await stage_bytes(store, remote_content, prefix=self._received)
        return local_blob, remote_blob, mailbox

    async def _message_end(self, ev: MessageEnd) -> Reply | None:
        local_writer, remote_writer = self._local_writer, self._remote_writer
        whole = self._buffer is not None or self._spill is not None
        staged: list[StagedBlob] = []
        try:
            mailbox = "INBOX"
            if whole:
                outcome = await self._stage_whole()
                if isinstance(outcome, Reply):
                    return self._fail(outcome, "mail authentication", staged)
                local_blob, remote_blob, mailbox = outcome
            else:
                self._writers = []  # from here on this method owns them
                local_blob = await local_writer.finish() if local_writer is not None else None
                remote_blob = await remote_writer.finish() if remote_writer is not None else None
            staged = [b for b in (local_blob, remote_blob) if b is not None]
            if local_blob is not None:
                report = await self.services.delivery.deliver(
                    local_blob, self._local, mailbox=mailbox, sender=self._sender_text(),
                    refuse_in_smtp=self.settings.mode is Mode.MX and not self._remote,
                )
                if report.refused:  # RFC 5429 2.2: a Sieve reject said in the SMTP reply
                    reason = report.refused[0][1].replace("\r", " ").replace("\n", " ")[:400]
                    reason = reason.encode("ascii", "replace").decode("ascii")
                    return self._fail(Reply(550, "5.7.1", reason or "Message refused"),
                                      "sieve reject", staged)
            if remote_blob is not None:
                outbound = self.services.outbound
                assert outbound is not None and self._envelope is not None
                await outbound.enqueue(
                    remote_blob,
                    await self._forward_sender(),
                    self._remote,
                    ret=self._envelope.params.ret,
                    envid=self._envelope.params.envid,
                    queue_id=self._queue_id,  # one id: reply, Received, logs and the queue
                )
        except QuotaExceeded:
            return self._fail(MAILBOX_FULL, "quota", staged, local_writer, remote_writer)
        except StorageFull:
            return self._fail(STORAGE_FULL, "storage full", staged, local_writer, remote_writer)
        except (StoreError, OSError) as exc:
            log.warning("smtp delivery failed: %s", exc)
            return self._fail(LOCAL_ERROR, "error", staged, local_writer, remote_writer)
        queue_id = self._queue_id
        self.delivered += 1
        log_event(
            log,
            "message accepted",
            id=queue_id,
            sender=self._sender_text() or "<>",
            local=len(self._local),
            remote=len(self._remote),
            size=ev.size,
            mailbox=mailbox,
            user=self.account.address if self.account else "-",
        )
        self._reset()
        return Reply(250, "2.0.0", f"Ok: queued as {queue_id}")

    def _fail(
        self,
        reply: Reply,
        why: str,
        staged: list[StagedBlob],
        *writers: BlobWriter | None,
    ) -> Reply:
        for writer in writers:
            if writer is not None:
                try:
                    writer.abort()
                except OSError:
                    pass
        for blob in staged:
            blob.path.unlink(missing_ok=True)
        log_event(log, "message refused", id=self._queue_id, reason=why, reply=str(reply))
        self._reset()
        return reply

    # ----------------------------------------------------------------- AUTH

    async def _auth(self, ev: AuthCredentials) -> Reply | None:
        if self.settings.mode is not Mode.SUBMISSION:
            return AUTH_FAILED
        if ev.authzid and ev.authzid.lower() != ev.authcid.lower():
            # RFC 4616 2: acting as someone else is not something we grant.
            return AUTH_FAILED
        account = await self.services.authenticator.authenticate(
            ev.authcid, ev.password, self.peer_ip
        )
        if account is None:
            return AUTH_FAILED
        self.account = account
        return None
