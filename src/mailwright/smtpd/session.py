"""SMTP session logic: who may send what to whom, and getting accepted mail safely stored.

House rules:
- This module decides policy on parsed events from `mailwright.proto.smtp` and answers with a
  `Reply`, or None for the core's default positive reply. It knows its roles of the store
  (`smtpd.roles.SmtpStore`) and the domain services (directory, authenticator, delivery,
  outbound), never a socket or SQL.
- `250` to the end of data only after the blob is fsync'ed and every local delivery and queue
  entry is committed (issue 3, item 5); any failure before that is a 4xx, so the client keeps
  the message and retries (RFC 5321 6.1: a duplicate is better than a loss).
- The MX never relays. A recipient is accepted there only when its domain is one of ours and the
  directory resolves it; percent hacks, bang paths, quoted local parts with `@` and source
  routes never name a second destination (the core already split them off or left them inside
  the local part), address literals are not local, and trailing dots are a syntax error.
- Submission lets a user write only as itself (RFC 6409 8.1): every From:/Sender: address must
  be its own, an alias that delivers only to it, or an administrator's send-as grant; DKIM
  signs only the domain of those checked addresses.
- Memory per session is bounded whatever the message size: content streams into a
  `MessageSpool`, policy looks at the header section only, blobs are made from the spool in
  bounded chunks in worker threads, and what needs a large message whole takes turns.
- Local copies and queue entries of one message commit in one unit of work (RFC 5321 6.1: a
  client retrying after a 4xx must not cause a duplicate local copy).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import enum
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mailwright.accounts.authenticator import Authenticator
from mailwright.accounts.directory import Directory, Resolution
from mailwright.address import AddressError, normalize_domain, parse_address
from mailwright.delivery.dmarcreports import receive_report, record_verdict
from mailwright.delivery.local import DeliveryReport, FailureReport
from mailwright.delivery.spool import MEMORY_LIMIT, MessageSpool
from mailwright.delivery.trace import message_id_of, record_later
from mailwright.diskspace import free_space
from mailwright.log import event as log_event
from mailwright.mailauth import (
    Action,
    KeyStore,
    MailauthSettings,
    sign_outbound_async,
    verify_inbound,
)
from mailwright.mailauth.arcseal import seal_forwarded_async
from mailwright.mailauth.authresults import remove_own_results
from mailwright.mailauth.headers import split_message
from mailwright.mailauth.srs import SRS, SRSError, is_srs
from mailwright.mime.address import MISSING_DOMAIN, MISSING_MAILBOX, SYNTAX_ERROR
from mailwright.mime.address import parse_address_list as mime_address_list
from mailwright.proto.smtp import (
    AuthCredentials,
    BdatChunkEnd,
    BurlPart,
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
from mailwright.proto.smtp.replies import BAD_URL, BURL_NEEDS_AUTH
from mailwright.proto.smtpclient import Recipient
from mailwright.queue.service import failure_report, queue_addition
from mailwright.smtpd.roles import SmtpStore
from mailwright.spam.report import strip_spam_fields
from mailwright.store.api import (
    Account,
    QueueAddition,
    QuotaExceeded,
    StagedBlob,
    StorageFull,
    StoreError,
    TraceEvent,
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
# why a local account could not take its copy at the end of DATA -> its DSN status and text
_REFUSAL_STATUS = {
    "quota": ("5.2.2", "552 5.2.2 Mailbox full"),  # RFC 3463 3.3
    "disabled": ("5.2.1", "550 5.2.1 Mailbox disabled"),
    "gone": ("5.1.1", "550 5.1.1 No such mailbox"),
}
STORAGE_FULL = Reply(452, "4.3.1", "Insufficient system storage")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")
HEADER_TOO_LARGE = Reply(552, "5.3.4", "Message header section too large")


class Mode(enum.Enum):
    MX = "mx"  # port 25: mail for our domains from anyone
    SUBMISSION = "submission"  # ports 587/465: mail from our users to anyone (RFC 6409)


class Outbound(Protocol):
    def wake(self) -> None: ...

    async def enqueue(
        self,
        blob: StagedBlob,
        sender: str,
        recipients: Sequence[str | Recipient],
        *,
        ret: str | None = None,
        envid: str | None = None,
        queue_id: str | None = None,
        requiretls: bool = False,
    ) -> list[int]: ...


class LocalDeliverer(Protocol):
    async def deliver(
        self, blob: StagedBlob, recipients: Sequence[str], *, mailbox: str = "INBOX",
        sender: str = "", refuse_in_smtp: bool = False,
    ) -> Any: ...

    async def deliver_and_queue(
        self,
        blob: StagedBlob | None,
        recipients: Sequence[str],
        queued: QueueAddition | None,
        *,
        mailbox: str = "INBOX",
        sender: str = "",
        refuse_in_smtp: bool = False,
        variants: Mapping[int, tuple[StagedBlob, str]] | None = None,
        resolved: Mapping[str, Resolution] | None = None,
        report_failures: FailureReport | None = None,
        trace: Sequence[TraceEvent] = (),
    ) -> tuple[DeliveryReport, list[int]]: ...


@dataclass(frozen=True, slots=True)
class Services:
    """What a session needs from the application (a slice of `AppContext`)."""

    store: SmtpStore
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


# Verifying or signing needs a message whole in memory (dkimpy): messages above the in-memory
# limit take turns, per event loop, so concurrent large messages cost one message's size.
_WHOLE_MESSAGE_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def _whole_message_slot(size: int) -> AsyncIterator[None]:
    if size <= MEMORY_LIMIT:
        yield
        return
    loop = asyncio.get_running_loop()
    slot = _WHOLE_MESSAGE_SLOTS.get(loop)
    if slot is None:
        slot = _WHOLE_MESSAGE_SLOTS[loop] = asyncio.Semaphore(1)
    async with slot:
        yield


def _header_addresses(value: bytes) -> list[str] | None:
    """Every address in a From:/Sender: value, read by two parsers (the standard library's
    and the one IMAP ENVELOPE uses) so that no trick of syntax hides an address from one of
    them; None when either finds something it cannot read as an address."""
    found: list[str] = []
    text = value.decode("utf-8", errors="replace")
    for _name, addr in email.utils.getaddresses([text]):
        if "@" not in addr:
            return None
        found.append(addr)
    for a in mime_address_list(value) or ():
        if a.host is None:
            continue  # group syntax markers (not valid in From either; the other parser says)
        if a.mailbox in (None, MISSING_MAILBOX) or a.host in (MISSING_DOMAIN, SYNTAX_ERROR):
            return None
        assert a.mailbox is not None
        found.append((a.mailbox + b"@" + a.host).decode("utf-8", errors="replace"))
    return list(dict.fromkeys(found)) or None


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
        # which domains are ours, looked up once per connection rather than once per RCPT
        # (as a Postfix smtpd process reads its domain tables once for all it serves)
        self._domains: dict[str, bool] = {}
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
            return await self._data(event.data)
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
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()
        self._spool: MessageSpool | None = None
        self._sender: SmtpPath | None = None
        self._envelope: MailFrom | None = None
        self._local: list[str] = []
        self._remote: list[Recipient] = []
        # Our domain the message is forwarded out of (an alias's or an SRS address's domain):
        # the envelope sender is SRS-rewritten into it and the forwarded copy ARC-sealed by it.
        self._forward_domain = ""
        self._dmarc_report = False  # addressed to our DMARC report address
        self._local_accounts: dict[int, Account] = {}
        # what each local recipient resolved to at RCPT time: delivery uses it, so a message
        # to 50 recipients is not resolved a second time at the end of DATA
        self._resolved: dict[str, Resolution] = {}
        # RCPT's DSN parameters (RFC 3461 4) of each local recipient, for a failure report
        self._local_params: dict[str, tuple[Sequence[str] | None, tuple[str, str] | None]] = {}
        # account id -> (the fields above its copy, its mailbox), when the spam filter judged
        # the recipient accounts differently
        self._own_copies: dict[int, tuple[bytes, str]] = {}
        self._queue_id = ""
        self._received = b""
        self._message_id = ""  # for the message trace, once the header section is read
        self._trace: list[TraceEvent] = []  # the filters' decisions, recorded with the message
        self._spam_note = ""
        self._spam_log: dict[str, Any] = {}  # the spam verdict, logged with the message's line

    async def _mail(self, ev: MailFrom) -> Reply | None:
        self._reset()
        if len(self._domains) > 256:  # a client naming ever new domains: memory stays bounded
            self._domains.clear()
        if self.settings.mode is Mode.SUBMISSION:
            if self.account is None:
                return AUTH_REQUIRED
            # RFC 6409 8.1: the MSA may insist that the sender is the user's own address.
            if ev.path is not None and not await self._may_use(ev.path.mailbox):
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
            return free_space(data_dir).room_for(self.settings.min_free_bytes, declared)
        except OSError:
            return True

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
            res = await directory.resolve(f"{local}@{domain}", domains=self._domains)
            if res.local_domain and res.deliverable:
                return await self._local_rcpt(f"{local}@{domain}", ev, res)
            return None
        if not path.quoted or is_ascii_dot_string(local):
            address = f"{local}@{domain}"
            res = await directory.resolve(address, domains=self._domains)
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
            res = await self.services.directory.resolve(address, domains=self._domains)
        if not res.local_domain or not res.deliverable:
            return USER_UNKNOWN
        if res.remote and self.services.outbound is None:
            return OUTBOUND_UNAVAILABLE
        if self.settings.mode is Mode.MX and self.services.spam is not None:
            refusal = await self.services.spam.check_recipient(
                self.peer_ip, self._sender_text(), address
            )  # greylisting and rate limits
            if refusal is not None:
                record_later(self.services.store, [TraceEvent(
                    "rejected", f"RCPT refused: {refusal}", self._queue_id,
                    recipient=address)])
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
            self._resolved[address] = res
            self._local_params[address] = (ev.params.notify, ev.params.orcpt)
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
        data_dir = self.services.data_dir
        self._spool = MessageSpool(data_dir / "tmp" if data_dir is not None else None)
        return None

    async def _data(self, data: bytes) -> Reply | None:
        spool = self._spool
        if spool is None:
            return None
        if spool.feed(data):
            try:
                await spool.flush()
            except OSError as exc:
                log.warning("smtp spool write failed: %s", exc)
                return STORAGE_FULL
        return None

    async def _message_end(self, ev: MessageEnd) -> Reply | None:
        spool = self._spool
        assert spool is not None and self._envelope is not None
        staged: list[StagedBlob] = []
        mailbox = "INBOX"
        try:
            await spool.end()
            head = spool.head()
            if head is None:
                # The header section must be seen whole for the From: policy and for removing
                # forged Authentication-Results (Postfix: header_size_limit).
                return self._fail(HEADER_TOO_LARGE, "header too large", staged)
            self._message_id = message_id_of(head)
            if self.settings.mode is Mode.SUBMISSION:
                outcome = await self._submission_headers(head)
            else:
                outcome = await self._mx_headers(spool, head)
            if isinstance(outcome, Reply):
                return self._fail(outcome, "policy", staged)
            local_extra, remote_extra, local_head, remote_head, mailbox = outcome
            store = self.services.store
            local_blob = remote_blob = None
            variants: dict[int, tuple[StagedBlob, str]] = {}
            if self._local:
                prefix = return_path_header(self._sender_text()) + self._received + local_extra
                local_blob = await spool.stage(store, prefix, head=local_head, skip=len(head))
                staged.append(local_blob)
                by_fields = {local_extra: local_blob}
                for account_id, (extra, box) in self._own_copies.items():
                    blob = by_fields.get(extra)
                    if blob is None:
                        prefix = return_path_header(self._sender_text()) + self._received + extra
                        blob = await spool.stage(store, prefix, head=local_head, skip=len(head))
                        staged.append(blob)
                        by_fields[extra] = blob
                    variants[account_id] = (blob, box)
            if self._remote:
                prefix = self._received + remote_extra
                remote_blob = await spool.stage(store, prefix, head=remote_head, skip=len(head))
                staged.append(remote_blob)
            queued = None
            if remote_blob is not None:
                queued = queue_addition(remote_blob, await self._forward_sender(), self._remote,
                                         ret=self._envelope.params.ret,
                                         envid=self._envelope.params.envid,
                                         # one id: reply, Received, logs and the queue
                                         queue_id=self._queue_id,
                                         requiretls=self._envelope.params.requiretls)  # fmt: skip
            # One unit of work: the local copies and the queue entries commit together (and
            # the message trace's events with them).
            report, _ = await self.services.delivery.deliver_and_queue(
                local_blob, self._local, queued, mailbox=mailbox, sender=self._sender_text(),
                refuse_in_smtp=self.settings.mode is Mode.MX and not self._remote,
                variants=variants, resolved=self._resolved,
                trace=[self._accepted_event(), *self._trace],
                report_failures=(self._failure_report(local_blob)
                                 if local_blob is not None and self.services.outbound is not None
                                 else None),
            )
            if report.refused:  # RFC 5429 2.2: a Sieve reject said in the SMTP reply
                reason = report.refused[0][1].replace("\r", " ").replace("\n", " ")[:400]
                reason = reason.encode("ascii", "replace").decode("ascii")
                return self._fail(Reply(550, "5.7.1", reason or "Message refused"),
                                  "sieve reject", staged)
            if (queued is not None or report.failed) and self.services.outbound is not None:
                self.services.outbound.wake()
        except QuotaExceeded:
            return self._fail(MAILBOX_FULL, "quota", staged)
        except StorageFull:
            return self._fail(STORAGE_FULL, "storage full", staged)
        except (StoreError, OSError) as exc:
            log.warning("smtp delivery failed: %s", exc)
            return self._fail(LOCAL_ERROR, "error", staged)
        except Exception:
            # A database error of another kind, or a bug: nothing was committed (one unit of
            # work), the client keeps the message and retries.
            log.exception("smtp delivery failed")
            return self._fail(LOCAL_ERROR, "error", staged)
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
            **self._spam_log,  # one line per message (the MX's spam verdict with it)
        )
        self._reset()
        return Reply(250, "2.0.0", f"Ok: queued as {queue_id}")

    def _failure_report(self, blob: StagedBlob) -> FailureReport:
        """The queue entry that reports local recipients refused inside the delivery's unit
        of work (over quota, disabled since RCPT), committed with the others' copies: the 250
        stands for them, and the sender hears about the rest in a DSN (RFC 3464), as from an
        LMTP delivery that answers per recipient (RFC 2033 4.2)."""
        assert self._envelope is not None
        params = self._envelope.params
        sender = self._sender_text()
        notify = self._local_params
        queue_id = self._queue_id

        def entries(failed: Sequence[tuple[str, str, str]]) -> QueueAddition | None:
            rows = []
            for rcpt, address, why in failed:
                status, text = _REFUSAL_STATUS.get(why, _REFUSAL_STATUS["gone"])
                given_notify, orcpt = notify.get(rcpt, (None, None))
                if orcpt is None and rcpt.lower() != address.lower():
                    orcpt = ("rfc822", rcpt)  # RFC 3461 4.2: the address the sender used
                rows.append((address, status, f"smtp; {text}", given_notify, orcpt))
            return failure_report(blob, sender, rows, ret=params.ret, envid=params.envid,
                                  queue_id=queue_id)

        return entries

    def _accepted_event(self) -> TraceEvent:
        """The trace's first event of an accepted message: client, sender, recipients and
        the spam filter's verdict."""
        helo = self.helo.name if self.helo else "unknown"
        greeting = "EHLO" if self.helo and self.helo.extended else "HELO"
        who = f" as {self.account.address}" if self.account is not None else ""
        rcpts = ", ".join([*self._local, *(r.address for r in self._remote)])
        kind = "submission" if self.settings.mode is Mode.SUBMISSION else "MX"
        detail = (f"{kind} from [{self.peer_ip}] ({greeting} {helo}){who}"
                  f"{' with TLS' if self.tls else ''}: sender <{self._sender_text()}>,"
                  f" recipients {rcpts}")
        if self._spam_note:
            detail += f"; {self._spam_note}"
        return TraceEvent("accepted", detail, self._queue_id, self._message_id)

    async def _mx_headers(
        self, spool: MessageSpool, head: bytes
    ) -> tuple[bytes, bytes, bytes, bytes, str] | Reply:
        """MX: mail authentication (RFC 8601 Authentication-Results above the message, forged
        ones claiming our name removed), the spam filter's verdict and fields, and the mailbox
        they choose."""
        services = self.services
        if self._dmarc_report:
            # An aggregate report addressed to us (RFC 7489 7.2): parsed and kept.
            async with _whole_message_slot(spool.size):
                await receive_report(services.store, await spool.read_all())
        if services.mailauth is None or services.resolver is None:
            return b"", b"", head, head, "INBOX"
        domain = self._local[0].rpartition("@")[2] if self._local else ""
        policy = services.mailauth.for_domain(domain)
        spam_filter = services.spam if self._local else None
        # RFC 8617 5.1: a forwarder seals what it saw, so the next hop can trust it.
        seal_for = (
            self._forward_domain
            if self._remote and self._forward_domain and services.dkim_keys is not None
            else None
        )
        whole = policy.verify or spam_filter is not None or seal_for is not None
        # Verification and the spam filter need the whole message (DKIM hashes the body;
        # dkimpy wants bytes): large ones take turns, so concurrent large messages do not
        # each cost their size. Without either, the header section is all that is looked at.
        local_extra = b""
        cleaned, _ = remove_own_results(head, services.hostname)
        local_head = cleaned
        async with _whole_message_slot(spool.size if whole else 0):
            message = await spool.read_all() if whole else head
            verdict = await verify_inbound(
                services.resolver,
                hostname=services.hostname,
                client_ip=self.peer_ip,
                helo=self.helo.name if self.helo else "",
                mail_from=self._sender_text(),
                message_bytes=message,
                policy=policy,
            )
            remote_extra = verdict.header
            if seal_for is not None and services.dkim_keys is not None:
                body = message[len(head):]
                seal = await seal_forwarded_async(
                    verdict.header + cleaned + body, seal_for, services.dkim_keys,
                    services.hostname,
                )
                remote_extra = seal + verdict.header
                del body
            del message
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
            if verdict.mailbox:  # quarantined by DMARC policy (RFC 7489 6.3) or local policy
                self._trace.append(TraceEvent(
                    "filtered", f"mail authentication: {verdict.reason}, into {mailbox}",
                    self._queue_id, self._message_id))
            if spam_filter is not None:  # score, X-Spam-* fields, Junk or 554 at end of DATA
                spam = await spam_filter.filter_message(
                    verdict, self.peer_ip, self.helo.name if self.helo else "",
                    self._sender_text(), self._local, list(self._local_accounts),
                    {i: a.address for i, a in self._local_accounts.items()},
                    log_verdict=False,
                )  # fmt: skip
                self._spam_log = {f"spam_{k}": v for k, v in spam.log_fields.items()}
                judged = spam.judgement
                top = ", ".join(f"{r.name} {r.points:+.1f}" for r in judged.reasons[:4]
                                if r.points)
                self._spam_note = (f"spam score {judged.score:.1f} (junk at"
                                   f" {judged.required:.1f}), verdict {judged.verdict}"
                                   + (f" ({top})" if top else ""))
                if spam.reply is not None:
                    log_event(log, "message refused as spam", id=self._queue_id,
                              client=self.peer_ip, **self._spam_log)
                    self._spam_log = {}  # said once
                    return spam.reply  # type: ignore[no-any-return]
                names = {i: a.address for i, a in self._local_accounts.items()}
                for i, (j, box) in spam.accounts.items():
                    if box:
                        self._trace.append(TraceEvent(
                            "filtered", f"spam filter: {j.verdict}, score {j.score:.1f}"
                            f" (junk at {j.required:.1f}), into {box}", self._queue_id,
                            self._message_id, names.get(i, "")))
                # the stored copy is the filter's fields, then ours, then the message without
                # X-Spam-* fields claimed by the sender
                local_extra = spam.judgement.fields()
                local_head = strip_spam_fields(cleaned)[0]
                if len(spam.accounts) > 1:  # each account's copy: its own verdict and fields
                    self._own_copies = {
                        i: (j.fields() + verdict.header, box or mailbox)
                        for i, (j, box) in spam.accounts.items()
                    }
                mailbox = spam.mailbox or mailbox
        return local_extra + verdict.header, remote_extra, local_head, cleaned, mailbox

    async def _submission_headers(
        self, head: bytes
    ) -> tuple[bytes, bytes, bytes, bytes, str] | Reply:
        """Submission: the author must be the user (RFC 6409 8.1 lets the MSA insist), forged
        Authentication-Results go, Date: and Message-ID: are added when missing (RFC 6409 8.2,
        8.3), and the copy for remote recipients is DKIM-signed for the author's domain."""
        services = self.services
        fields, _ = split_message(head)
        authors: list[str] = []
        for field in fields:
            if field.name in ("from", "sender"):
                addresses = _header_addresses(field.value)
                if addresses is None:
                    return Reply(550, "5.7.1", f"{field.name.title()}: header not understood")
                authors += addresses
        for address in dict.fromkeys(authors):
            if not await self._may_use(address):
                return Reply(550, "5.7.1", f"From/Sender address not owned by user: {address}")
        cleaned, removed = remove_own_results(head, services.hostname)
        if removed:
            log_event(log, "removed forged Authentication-Results", id=self._queue_id, n=removed)
        names = {f.name for f in fields}
        added = b""
        if "date" not in names:
            added += b"Date: " + email.utils.format_datetime(datetime.now(UTC)).encode() + b"\r\n"
        if "message-id" not in names:
            self._message_id = f"{secrets.token_hex(12)}@{services.hostname}"
            added += f"Message-ID: <{self._message_id}>\r\n".encode()
        new_head = added + cleaned
        signature = b""
        from_fields = [f for f in fields if f.name == "from"]
        signing_domain = None
        if len(from_fields) == 1:
            # Only a domain every author address is in, and every one is the user's own (the
            # check above): never a signature for a domain the user merely typed.
            domains = {a.rpartition("@")[2].lower()
                       for a in _header_addresses(from_fields[0].value) or ()}  # fmt: skip
            signing_domain = domains.pop() if len(domains) == 1 else None
        if (
            self._remote
            and services.dkim_keys is not None
            and services.mailauth is not None
            and signing_domain is not None
            and services.mailauth.for_domain(signing_domain).dkim_sign
        ):
            spool = self._spool
            assert spool is not None
            async with _whole_message_slot(spool.size):
                body = await spool.read_all()
                message = b"".join((new_head, memoryview(body)[len(head):]))
                del body
                try:
                    signature = await sign_outbound_async(
                        message, signing_domain, services.dkim_keys
                    )
                except ValueError:
                    signature = b""
                del message
        return b"", signature, new_head, new_head, "INBOX"

    async def _may_use(self, address: str) -> bool:
        """May the authenticated user send as `address` (its own, an alias that delivers only
        to it, or an administrator's grant)?"""
        account = self.account
        if account is None:
            return False
        if await self.services.directory.may_send_as(account, address):
            return True
        try:
            canonical = str(parse_address(address))
        except AddressError:
            return False
        grants = await self.services.store.list_send_as(account.id)
        return any(granted == canonical for _, granted in grants)

    def _fail(self, reply: Reply, why: str, staged: list[StagedBlob]) -> Reply:
        for blob in staged:
            self.services.store.discard_staged(blob)
        log_event(log, "message refused", id=self._queue_id, reason=why, reply=str(reply),
                  **self._spam_log)
        detail = f"{reply}" + (f"; {self._spam_note}" if self._spam_note else "")
        record_later(self.services.store, [TraceEvent(
            "rejected", f"{why}: {detail}" if why not in detail else detail, self._queue_id,
            self._message_id, ", ".join([*self._local, *(r.address for r in self._remote)]))])
        self._reset()
        return reply

    # ----------------------------------------------------------------- AUTH

    async def burl(self, ev: BurlPart) -> bytes | Reply:
        """RFC 4468 3: the data a URLAUTH-authorized IMAP URL names, read straight from the
        store (this server is the IMAP server).  The token is checked exactly as URLFETCH
        checks it, with the access ``submit+<authenticated user>`` (RFC 4468 5); any failure
        is 554 5.7.8 without saying why.  The data then goes through the same path as DATA
        and BDAT octets (size limit, spool, From: policy, DKIM signing, delivery, queue)."""
        from mailwright.imapd import urls

        if self.account is None:  # pragma: no cover - the core refuses BURL before AUTH
            return BURL_NEEDS_AUTH
        try:
            return await urls.resolve(self.services.store, ev.url,
                                      urls.Accessor(self.account, submit=True),
                                      require_urlauth=True)
        except urls.BadUrl as exc:
            log.info("smtp BURL refused for %s: %s", self.account.address, exc)
            return BAD_URL

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
