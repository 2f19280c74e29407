"""Sieve at local delivery: which mailboxes each account's copy goes to, and what else happens.

House rules:
- Mail is never lost to a script. A script that cannot be read, does not compile, fails at run
  time or goes over a limit gives the implicit keep (RFC 5228 2.10.6), and the error is logged.
- Two phases around the store transaction: `plan` runs the scripts (in a worker thread, with
  bounded time) and says where each copy goes; `commit` runs only after the message is durable
  and carries out the rest: redirects, vacation replies, notifications, rejections that could
  not be said in the SMTP transaction, and what `duplicate` must remember.
- Per account the administrator's `before` script, the user's one active script and the
  administrator's `after` script run in sequence on one result (docs/sieve.md).
- Redirect and every message we generate go through the outbound queue (or local delivery for
  local addresses). A redirected copy carries `Delivered-To:` with the account's address
  (RFC 9228); a message that already carries it for this account is not redirected again, so
  two accounts redirecting to each other stop after one round.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import threading
import urllib.parse
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailwright.delivery.ingest import stage_bytes
from mailwright.mailauth.arcseal import seal_forwarded_async
from mailwright.mailauth.keys import KeyStore
from mailwright.mailauth.srs import SRS, SRSError, srs_from_config
from mailwright.sieve.roles import SieveDeliveryStore
from mailwright.store.api import (
    Account,
    DeliveryTarget,
    StagedBlob,
    StoreError,
    split_shared_name,
)

from . import vacation as vacation_rules
from .actions import Discard, FileInto, Keep, Notify, Redirect, Reject, RunResult, Vacation
from .interpreter import Interpreter, Limits, ScoreHeaders
from .lexer import SieveSyntaxError
from .message import Envelope, SieveMessage
from .validator import CompiledScript, compile_script

if TYPE_CHECKING:
    from mailwright.config import SieveConfig

log = logging.getLogger("mailwright.sieve")

_CACHE_SIZE = 256
_CALLBACK_TIMEOUT = 10.0
_GRACE = 5.0  # seconds past the interpreter's own deadline before a run is abandoned


@dataclass(frozen=True, slots=True)
class SieveSettings:
    before: Path | None = None
    after: Path | None = None
    global_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    scores: ScoreHeaders = field(default_factory=ScoreHeaders)
    vacation_min_period: float = 86400.0
    vacation_max_period: float = 90 * 86400.0
    max_script_size: int = 128 * 1024
    max_scripts: int = 32

    @classmethod
    def from_config(cls, cfg: SieveConfig) -> SieveSettings:
        return cls(
            before=cfg.before, after=cfg.after, global_dir=cfg.global_dir,
            limits=Limits(max_actions=cfg.max_actions, max_redirects=cfg.max_redirects,
                          max_seconds=cfg.max_run_time),
            scores=ScoreHeaders(cfg.spam_score_header, cfg.spam_status_header,
                                cfg.spam_max_score, cfg.virus_score_header),
            vacation_min_period=cfg.vacation_min_period,
            vacation_max_period=cfg.vacation_max_period,
            max_script_size=cfg.max_script_size,
            max_scripts=cfg.max_scripts,
        )


@dataclass(slots=True)
class _Followup:
    """What one account's run asks for once the message is stored."""

    account: Account
    recipient: str
    result: RunResult
    data: bytes  # the message as the script left it (editheader)


@dataclass(slots=True)
class FilterPlan:
    targets: list[DeliveryTarget]  # copies of the original message
    separate: list[tuple[StagedBlob, list[DeliveryTarget]]]  # copies edited by editheader
    refused: list[tuple[str, str]]  # (recipient, reason): reject said in the SMTP reply
    followups: list[_Followup] = field(default_factory=list)
    sender: str = ""


def plan_decisions(plan: FilterPlan) -> list[tuple[str, str]]:
    """(recipient, what the account's Sieve script decided) for the message trace: one line
    per recipient whose script did more than keep the message."""
    out: list[tuple[str, str]] = []
    for f in plan.followups:
        said: list[str] = []
        for action in f.result.actions:
            if isinstance(action, FileInto):
                said.append(f"fileinto {action.mailbox}")
            elif isinstance(action, Redirect):
                said.append(f"redirect to {action.address}" + (" (copy)" if action.copy else ""))
            elif isinstance(action, Discard):
                said.append("discard")
            elif isinstance(action, Reject):
                said.append(f"reject: {action.reason}")
            elif isinstance(action, Vacation):
                said.append("vacation reply")
        if f.result.failed:
            said.append(f"script failed, kept: {f.result.error}")
        if said:
            out.append((f.recipient, "sieve: " + "; ".join(said)))
    return out


class _StoreEnvironment:
    """The interpreter's view of the outside, answered from the worker thread."""

    def __init__(self, sieve: SieveFilter, account: Account, mailboxes: dict[str, str | None],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.sieve = sieve
        self.account = account
        self.mailboxes = mailboxes  # name -> special-use
        self.loop = loop

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(_CALLBACK_TIMEOUT)

    def mailbox_exists(self, name: str) -> bool:
        return name in self.mailboxes or (name.upper() == "INBOX")

    def special_use_exists(self, mailbox: str | None, flags: Sequence[str]) -> bool:
        wanted = {f.lower() for f in flags}
        for name, use in self.mailboxes.items():
            if mailbox is not None and name != mailbox:
                continue
            have = {u.lower() for u in (use or "").split()}
            if wanted <= have and wanted:
                return True
        return False

    def duplicate_seen(self, key: str) -> bool:
        return bool(self._call(self.sieve.store.sieve_seen(self.account.id, key)))

    def load_include(self, name: str, global_: bool) -> CompiledScript | None:
        if global_:
            return self.sieve.global_script(name)
        text = self._call(self.sieve.store.sieve_get(self.account.id, name))
        return None if text is None else self.sieve.compiled(text)


class SieveFilter:
    """Runs Sieve for local delivery (`mailwright.delivery.local.LocalDelivery.filter`)."""

    def __init__(
        self,
        store: SieveDeliveryStore,
        settings: SieveSettings,
        *,
        hostname: str,
        outbound: Any = None,
        deliver_local: Callable[..., Any] | None = None,
        is_local: Callable[[str], Any] | None = None,
        srs: SRS | None = None,
        dkim_keys: KeyStore | None = None,
    ) -> None:
        self.store = store
        # Redirects to other domains are ARC-sealed (RFC 8617 5.1) with the account domain's
        # RSA DKIM key, as alias forwarding is; None: not sealed.
        self.dkim_keys = dkim_keys
        # Redirects to other domains carry an SRS reverse-path at the account's domain, so the
        # destination's SPF check passes for us (docs/forwarding.md); None keeps the sender.
        self.srs = srs
        self.settings = settings
        self.hostname = hostname
        self.outbound = outbound  # the queue service: enqueue(blob, sender, recipients)
        self.deliver_local = deliver_local  # LocalDelivery.deliver, for local destinations
        self.is_local = is_local  # async (domain) -> bool
        # shared by the event loop and the worker threads that run scripts (includes)
        self._cache: OrderedDict[str, CompiledScript | SieveSyntaxError] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- scripts

    def compiled(self, text: str) -> CompiledScript | None:
        """The compiled script, cached by content; None (and a log line) if it is broken."""
        key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is None:
            try:
                hit = compile_script(text)
            except SieveSyntaxError as exc:
                hit = exc
            with self._cache_lock:
                self._cache[key] = hit
                if len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        if isinstance(hit, SieveSyntaxError):
            log.warning("sieve script does not compile: %s", hit)
            return None
        return hit

    def _file_script(self, path: Path | None) -> CompiledScript | None:
        if path is None:
            return None
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.error("sieve: cannot read %s: %s", path, exc)
            return None
        return self.compiled(text)

    def global_script(self, name: str) -> CompiledScript | None:
        base = self.settings.global_dir
        if base is None or "/" in name or name.startswith("."):
            return None
        path = base / (name if name.endswith(".sieve") else name + ".sieve")
        if not path.is_file():
            return None
        return self._file_script(path)

    # -- phase one: where the copies go

    async def plan(
        self,
        blob: StagedBlob,
        sender: str,
        recipients: Sequence[tuple[str, Account, DeliveryTarget]],
        *,
        refuse_in_smtp: bool = False,
        blobs: Mapping[int, StagedBlob] | None = None,
    ) -> FilterPlan:
        """Where each recipient account's copy goes; `blobs` are the accounts whose copy has
        bytes of its own (the spam filter's per-account fields), which their scripts see."""
        plan = FilterPlan([], [], [], sender=sender)
        data: bytes | None = None
        own: dict[str, bytes] = {}
        refusals: list[tuple[str, str, DeliveryTarget]] = []
        every = await self._scripts_for([account for _, account, _ in recipients])
        for rcpt, account, target in recipients:
            scripts = every[account.id]
            if not scripts:
                plan.targets.append(target)
                continue
            mine = (blobs or {}).get(account.id)
            if mine is not None:
                if mine.blob_id not in own:
                    own[mine.blob_id] = await self.store.read_staged(mine)
                seen = own[mine.blob_id]
            else:
                if data is None:
                    data = await self.store.read_staged(blob)
                seen = data
            result, edited = await self._run(account, rcpt, sender, seen, scripts)
            if result.failed:
                log.warning("sieve failed for %s, keeping the message: %s",
                            account.address, result.error)
                plan.targets.append(target)
                continue
            if any(isinstance(a, Redirect) for a in result.actions) and _redirected_by(
                seen, account, rcpt
            ):
                # a redirect loop: the message came back; keep it instead of sending it round
                log.warning("sieve: redirect loop for %s, keeping the message", account.address)
                result.actions = [a for a in result.actions if not isinstance(a, Redirect)]
                if not any(isinstance(a, Keep | FileInto | Discard | Reject) for a in result.actions):
                    result.implicit_keep = True
            targets = await self._targets(account, target, result)
            rejects = [a for a in result.actions if isinstance(a, Reject)]
            if edited is not None and targets:
                staged = await stage_bytes(self.store, edited)
                plan.separate.append((staged, targets))
            else:
                plan.targets.extend(targets)
            if rejects:
                refusals.append((rcpt, rejects[0].reason, target))
            plan.followups.append(_Followup(account, rcpt, result, edited or seen))
        if refusals and refuse_in_smtp and not plan.targets and not plan.separate and len(
            refusals
        ) == len(recipients):
            # RFC 5429 2.1/2.2: everyone refused it, so the SMTP reply can say so
            plan.refused = [(r, reason) for r, reason, _t in refusals]
        return plan

    async def _scripts_for(self, accounts: Sequence[Account]) -> dict[int, list[CompiledScript]]:
        """Each account's scripts in the order they run (before, its active one, after).

        One store read for every account of the message, and the administrator's files read
        once: a message to 50 recipients must not cost 150 thread hops before any script runs.
        """
        # compiling (and reading the administrator's files) is work for a worker thread: a
        # large script takes long enough to stall every session on the event loop
        before, after = None, None
        if self.settings.before is not None or self.settings.after is not None:
            before, after = await asyncio.to_thread(
                lambda: (self._file_script(self.settings.before),
                         self._file_script(self.settings.after)))  # fmt: skip
        ids = list(dict.fromkeys(a.id for a in accounts))
        try:
            active = await self.store.sieve_active_many(ids)
        except StoreError as exc:
            log.error("sieve: cannot read the active scripts: %s", exc)
            active = {}
        out: dict[int, list[CompiledScript]] = {}
        for account in accounts:
            scripts: list[CompiledScript | None] = [before]
            mine = active.get(account.id)
            if mine is not None:
                user = await asyncio.to_thread(self.compiled, mine[1])
                if user is None:
                    log.warning("sieve: active script %r of %s is broken, ignoring it",
                                mine[0], account.address)
                scripts.append(user)
            scripts.append(after)
            out[account.id] = [s for s in scripts if s is not None]
        return out

    async def _run(
        self, account: Account, rcpt: str, sender: str, data: bytes,
        scripts: list[CompiledScript],
    ) -> tuple[RunResult, bytes | None]:
        mailboxes = {m.name: m.special_use for m in await self.store.list_mailboxes(account.id)}
        env = _StoreEnvironment(self, account, mailboxes, asyncio.get_running_loop())
        settings = self.settings

        def work() -> tuple[RunResult, bytes | None]:
            message = SieveMessage.from_bytes(data)
            interp = Interpreter(message, Envelope(sender, rcpt, rcpt), env,
                                 limits=settings.limits, scores=settings.scores)
            result = interp.run_all(scripts)
            edited = message.render() if message.edited and not result.failed else None
            return result, edited

        try:
            # The interpreter checks its own deadline between steps; this bounds one step that
            # does not return (a pathological regular expression): the delivery goes on with
            # the implicit keep while that worker thread finishes on its own.
            return await asyncio.wait_for(asyncio.to_thread(work),
                                          settings.limits.max_seconds + _GRACE)
        except TimeoutError:
            log.error("sieve for %s did not finish in time, keeping the message",
                      account.address)
            return RunResult(error="script ran too long"), None
        except Exception as exc:  # noqa: BLE001 - a script never loses mail
            log.exception("sieve crashed for %s", account.address)
            return RunResult(error=f"internal error: {exc}"), None

    async def _targets(
        self, account: Account, default: DeliveryTarget, result: RunResult
    ) -> list[DeliveryTarget]:
        out: list[DeliveryTarget] = []
        flags = default.flags
        if result.implicit_keep:
            out.append(DeliveryTarget(account.id, default.mailbox,
                                      flags | frozenset(result.implicit_flags)))
        for action in result.actions:
            if isinstance(action, Keep):
                out.append(DeliveryTarget(account.id, default.mailbox, flags | frozenset(action.flags)))
            elif isinstance(action, FileInto):
                shared = await self._shared_target(account, action, flags)
                if shared is not None:
                    out.append(shared)
                    continue
                mailbox = await self._mailbox_for(account, action)
                out.append(DeliveryTarget(account.id, mailbox, flags | frozenset(action.flags)))
        seen: set[tuple[int, str, frozenset[str]]] = set()
        unique = []
        for t in out:
            if (t.account_id, t.mailbox, t.flags) not in seen:
                seen.add((t.account_id, t.mailbox, t.flags))
                unique.append(t)
        return unique

    async def _shared_target(
        self, account: Account, action: FileInto, flags: frozenset[str]
    ) -> DeliveryTarget | None:
        """fileinto "Other Users/<owner>/<name>": another account's mailbox, when its ACL
        gives this account the post right (RFC 4314 2.1 p); the flags this account may not
        set there are left off. Without the right (or the mailbox), the message is kept in
        the user's INBOX as for any mailbox that does not exist (RFC 5228 4.1)."""
        parts = split_shared_name(action.mailbox)
        if parts is None:
            return None
        owner = await self.store.find_account(parts[0])
        mb = await self.store.get_mailbox(owner.id, parts[1]) if owner is not None else None
        rights = ""
        if mb is not None and owner is not None and owner.id != account.id:
            try:
                rights = await self.store.acl_rights(account.id, mb.id)
            except StoreError:
                rights = ""
        if mb is None or "p" not in rights:
            log.info("sieve: %s may not post to %r; keeping in INBOX", account.address,
                     action.mailbox)
            return DeliveryTarget(account.id, "INBOX", flags | frozenset(action.flags))
        wanted = flags | frozenset(action.flags)
        kept = frozenset(
            f for f in wanted
            if ("s" if f == "\\Seen" else "t" if f == "\\Deleted" else "w") in rights
        )
        return DeliveryTarget(mb.account_id, mb.name, kept)

    async def _mailbox_for(self, account: Account, action: FileInto) -> str:
        boxes = await self.store.list_mailboxes(account.id)
        if action.special_use:
            # RFC 8579 4: the mailbox with that special use wins over the name
            for m in boxes:
                if m.special_use and action.special_use.lower() in m.special_use.lower().split():
                    return m.name
        if any(m.name == action.mailbox for m in boxes) or action.mailbox.upper() == "INBOX":
            return action.mailbox
        if action.create:
            try:
                await self.store.create_mailbox(account.id, action.mailbox)  # RFC 5490 3.2
                return action.mailbox
            except StoreError as exc:
                log.warning("sieve: cannot create %r for %s: %s", action.mailbox,
                            account.address, exc)
        return "INBOX"  # RFC 5228 4.1: a mailbox that does not exist gets the message in INBOX

    # -- phase two: after the message is durable

    async def commit(self, plan: FilterPlan) -> None:
        refused = {r for r, _ in plan.refused}
        for f in plan.followups:
            for action in f.result.actions:
                try:
                    if isinstance(action, Redirect):
                        await self._redirect(f, action, plan.sender)
                    elif isinstance(action, Vacation):
                        await self._vacation(f, action, plan.sender)
                    elif isinstance(action, Notify):
                        await self._notify(f, action)
                    elif isinstance(action, Reject) and f.recipient not in refused:
                        await self._bounce(f, action, plan.sender)
                    elif isinstance(action, Discard):
                        log.info("sieve discarded a message for %s", f.account.address)
                except (StoreError, OSError) as exc:
                    log.error("sieve %s for %s failed: %s", type(action).__name__.lower(),
                              f.account.address, exc)
            for dup in f.result.duplicates:
                try:
                    await self.store.sieve_remember(f.account.id, dup.key, dup.seconds)
                except StoreError as exc:
                    log.error("sieve: cannot remember a duplicate for %s: %s",
                              f.account.address, exc)

    async def _send(self, data: bytes, sender: str, recipient: str) -> None:
        blob = await stage_bytes(self.store, data)
        domain = recipient.rpartition("@")[2]
        if self.is_local is not None and self.deliver_local is not None and await self.is_local(domain):
            await self.deliver_local(blob, [recipient], sender=sender)
        elif self.outbound is not None:
            await self.outbound.enqueue(blob, sender, [recipient])
        else:
            self.store.discard_staged(blob)
            log.error("sieve: no outbound queue, cannot send to %s", recipient)

    async def _redirect(self, f: _Followup, action: Redirect, sender: str) -> None:
        seal = await self._arc_seal(f, action.address)
        data = seal + f"Delivered-To: {f.account.address}\r\n".encode() + f.data
        await self._send(data, await self._forward_sender(sender, f.account, action.address),
                         action.address)
        log.info("sieve redirected a message for %s to %s", f.account.address, action.address)

    async def _arc_seal(self, f: _Followup, destination: str) -> bytes:
        """The ARC set for a copy redirected to another domain (RFC 8617 5.1: a forwarder
        seals what it saw), b"" when it stays here or cannot be sealed. The stored copy starts
        with our MX's Authentication-Results, which the seal's AAR repeats (4.1.1)."""
        if self.dkim_keys is None:
            return b""
        if self.is_local is not None and await self.is_local(destination.rpartition("@")[2]):
            return b""
        domain = f.account.address.rpartition("@")[2]
        return await seal_forwarded_async(f.data, domain, self.dkim_keys, self.hostname)

    async def _forward_sender(self, sender: str, account: Account, destination: str) -> str:
        """The reverse-path of a redirected copy: SRS-rewritten into the account's domain when
        it leaves for another domain and the original sender is not ours (RFC 5228 4.2 keeps the
        envelope sender; SRS keeps SPF passing at the destination)."""
        if self.srs is None or not sender:
            return sender
        if self.is_local is not None:
            if await self.is_local(destination.rpartition("@")[2]):
                return sender  # stays here: no SPF check of ours to satisfy
            if await self.is_local(sender.rpartition("@")[2]):
                return sender  # already one of our domains
        try:
            return self.srs.forward(sender, account.address.rpartition("@")[2])
        except SRSError as exc:
            log.warning("sieve: cannot SRS-rewrite %s: %s", sender, exc)
            return sender

    async def _vacation(self, f: _Followup, action: Vacation, sender: str) -> None:
        message = SieveMessage.from_bytes(f.data)
        own = [f.account.address, f.recipient, *action.addresses]
        why = vacation_rules.refusal(message, sender, own)
        if why is not None:
            log.info("sieve vacation for %s not sent: %s", f.account.address, why)
            return
        seconds = min(max(action.seconds, self.settings.vacation_min_period),
                      self.settings.vacation_max_period)
        key = "vacation:" + hashlib.sha256(
            f"{action.handle}\x00{sender.lower()}".encode()
        ).hexdigest()
        if not await self.store.sieve_remember(f.account.id, key, seconds):
            log.info("sieve vacation for %s not sent: %s already answered", f.account.address,
                     sender)
            return
        reply = vacation_rules.build_reply(action, message, sender=sender,
                                           recipient=f.account.address, hostname=self.hostname)
        await self._send(reply, "", sender)  # RFC 3834 3.3: null reverse-path
        log.info("sieve vacation reply from %s to %s", f.account.address, sender)

    async def _notify(self, f: _Followup, action: Notify) -> None:
        target, _, query = action.method.partition(":")[2].partition("?")
        to = [a for a in urllib.parse.unquote(target).split(",") if a]
        params = urllib.parse.parse_qs(query)
        message = SieveMessage.from_bytes(f.data)
        # RFC 5436 2.7 / RFC 3834 2: no notification about a message that is itself automatic
        # (a notification answering a notification, or a bounce, could loop)
        if any(v.split(";")[0].strip().lower() != "no" for v in message.values("auto-submitted")):
            log.info("sieve: no notification for %s about an Auto-Submitted message",
                     f.account.address)
            return
        subject = (params.get("subject") or [action.message or ""])[0]
        if not subject:
            original = message.values("subject")
            subject = f"[SIEVE] New mail: {original[0] if original else ''}"
        from_addr = action.from_address or f.account.address
        body = params.get("body", [action.message or ""])[0]
        for rcpt in to[:4]:
            data = (
                f"From: {from_addr}\r\nTo: {rcpt}\r\nSubject: {_clean(subject)}\r\n"
                "Auto-Submitted: auto-notified\r\nMIME-Version: 1.0\r\n"  # RFC 5436 2.7
                "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{body}\r\n"
            ).encode()
            await self._send(data, "", rcpt)  # RFC 5436 2.7: null reverse-path
        log.info("sieve notification for %s to %s", f.account.address, ",".join(to[:4]))

    async def _bounce(self, f: _Followup, action: Reject, sender: str) -> None:
        """RFC 5429 2.1.1: the refusal could not be said in SMTP; tell the sender with an MDN."""
        if not sender:
            return  # never to the null reverse-path
        message = SieveMessage.from_bytes(f.data)
        await self._send(build_refusal(message, action, recipient=f.recipient, sender=sender,
                                       hostname=self.hostname), "", sender)
        log.info("sieve rejected a message for %s", f.account.address)


def build_refusal(message: SieveMessage, action: Reject, *, recipient: str, sender: str,
                  hostname: str) -> bytes:
    """An RFC 8098 disposition notification ("deleted") carrying the reject reason and the
    original header section, as RFC 5429 2.1.1 asks of a reject that is not said in SMTP."""
    boundary = f"=_refusal_{uuid.uuid4().hex}"
    subject = message.values("subject")
    msgid = message.values("message-id")
    reason = action.reason.replace("\r\n", "\n").replace("\n", "\r\n")
    header_section = b"".join(
        f"{h.name}: {h.raw}\r\n".encode("utf-8", "replace") for h in message.fields
    )
    parts = [
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>",
        f"To: <{sender}>",
        f"Subject: Rejected: {_clean(subject[0] if subject else '')}",
        f"Date: {email.utils.format_datetime(email.utils.localtime())}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-replied (rejected)",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=disposition-notification; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Your message to {recipient} was refused by the recipient's filter:",
        "",
        reason,
        "",
        f"--{boundary}",
        "Content-Type: message/disposition-notification",
        "",
        f"Reporting-UA: {hostname}; Mailwright Sieve",
        f"Final-Recipient: rfc822; {recipient}",
    ]
    if msgid:
        parts.append(f"Original-Message-ID: {msgid[0]}")
    parts += [
        "Disposition: automatic-action/MDN-sent-automatically; deleted",
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    head = "\r\n".join(parts).encode("utf-8") + b"\r\n"
    return head + header_section + f"\r\n--{boundary}--\r\n".encode()


def _redirected_by(data: bytes, account: Account, rcpt: str) -> bool:
    """Did this account redirect the message before (our Delivered-To, RFC 9228)?"""
    mine = {account.address.lower(), rcpt.lower()}
    message = SieveMessage.from_bytes(data)
    return any(v.strip().strip("<>").lower() in mine for v in message.values("delivered-to"))


def _clean(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")[:200]


def create_filter(ctx: Any) -> SieveFilter:
    """The filter for `LocalDelivery.filter`, from the application context (`app`)."""
    return SieveFilter(
        ctx.store,
        SieveSettings.from_config(ctx.config.sieve),
        hostname=ctx.hostname,
        outbound=ctx.outbound,
        deliver_local=ctx.delivery.deliver,
        is_local=ctx.directory.is_local_domain,
        srs=srs_from_config(ctx.config.srs, ctx.config.server.data_dir),
        dkim_keys=KeyStore(ctx.config.server.data_dir),
    )
