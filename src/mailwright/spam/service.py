"""The spam filter as one service object: what the SMTP MX, the trainer and the CLI call.

House rules:
- Three entry points, in the order of an SMTP transaction: `screen_connection` before the
  greeting (pregreet test, DNS block and allow lists), `check_recipient` at RCPT (greylisting,
  rate limits), `filter_message` at the end of DATA (every test, the score, the verdict and the
  X-Spam-* fields). Each returns a reply only to refuse; None or a positive outcome otherwise.
- Never lose ham: an engine or list that fails adds nothing; a message for several accounts gets
  the most lenient of their verdicts; refusing at the end of DATA needs a score far above the
  junk threshold; no test can refuse mail from a client on a DNS allow list.
- Work proportional to the message runs in worker threads (`Classifier`), DNS through the
  shared resolver, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailwright.log import event as log_event
from mailwright.proto.smtp import Reply
from mailwright.spam.roles import SpamFilterStore
from mailwright.store.api import StoreError

from .checks import Reason, auth_reasons, dmarc_domain, header_reasons, shape_reasons
from .classifier import (
    INLINE_ANALYSIS,
    Analysis,
    Classifier,
    bayes_reason,
    from_address,
    novelty_reason,
    structure_reason,
)
from .dnslists import Listing, lookup_all
from .envelope import Greylist, RateLimiter, client_network, purge
from .external import ask_rspamd, ask_spamd
from .overrides import REFRESH_SECONDS, effective
from .report import spam_fields, strip_spam_fields
from .settings import SpamConfigError, SpamSettings, Thresholds

__all__ = ["Judgement", "MessageOutcome", "SpamFilter", "create_filter"]

log = logging.getLogger("mailwright.spam")

LISTING_TTL = 600.0
MAX_CACHED_CLIENTS = 10_000
MAX_OWN_COPIES = 8  # accounts of one message that each get their own X-Spam-* fields
PURGE_EVERY = 600.0  # seconds between purges of stale greylisting and rate-limit rows
PREGREET_REPLY = Reply(554, "5.7.1", "Protocol error: you talked before the greeting")


@dataclass(frozen=True, slots=True)
class Judgement:
    score: float
    verdict: str  # "ham", "junk" or "reject"
    reasons: tuple[Reason, ...]
    required: float  # the junk threshold applied

    def fields(self) -> bytes:
        return spam_fields(self.score, self.required, self.verdict, self.reasons)

    def lines(self) -> list[str]:
        """`score S verdict V`, then one line per reason (the `spam check` output)."""
        return [f"score {self.score:.1f} verdict {self.verdict}", *(r.line() for r in self.reasons)]


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """What the SMTP session does with a message: refuse it (`reply`), or store `content` in
    `mailbox` (None = wherever it was going)."""

    reply: Reply | None
    content: bytes
    mailbox: str | None
    judgement: Judgement  # the most lenient of the accounts'
    # per recipient account: the judgement its copy shows and its mailbox (None = as `mailbox`
    # would be without the filter)
    accounts: dict[int, tuple[Judgement, str | None]] = field(default_factory=dict)
    # the verdict as log fields, when the caller logs them on its own line
    # (`filter_message(log_verdict=False)`: one log line per message, not two)
    log_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _ClientFacts:
    when: float
    listings: list[Listing] = field(default_factory=list)
    names: list[str] | None = None  # forward-confirmed reverse DNS names, once looked up


class SpamFilter:
    def __init__(self, settings: SpamSettings, store: SpamFilterStore, resolver: Any,
                 hostname: str, base: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.settings = settings
        # `[spam]` as configured: the administrator's overrides in the store apply over it
        # (`refresh`); None: the settings are fixed (tests, `spam check`)
        self.base = base
        self._overrides: dict[tuple[str, str], str] = {}
        self._refreshed = float("-inf")
        # tells the other worker processes that overrides were saved (workers.channel)
        self.announce: Callable[[], None] | None = None
        self.store = store
        self.resolver = resolver
        self.hostname = hostname
        self.classifier = Classifier(store, max_bytes=settings.max_scan_bytes)
        self.greylist = Greylist(store, settings.greylist_delay, settings.greylist_expire)
        self.sender_rate = RateLimiter(store, "sender", settings.sender_rate)
        self.client_rate = RateLimiter(store, "client", settings.client_rate)
        self._purged = 0.0
        self._clients: OrderedDict[str, _ClientFacts] = OrderedDict()
        self._nets = [ipaddress.ip_network(n, strict=False) for n in settings.greylist_networks]
        self._rate_exempt = [ipaddress.ip_network(n, strict=False) for n in settings.rate_exempt]

    # ----------------------------------------------------------------- settings

    async def refresh(self, *, force: bool = False) -> None:
        """Apply the administrator's overrides (`spam.overrides`) if they changed: read at most
        every `REFRESH_SECONDS` (so every worker and node follows), at once with `force` (the
        process that saved them). Overrides that do not validate are logged and ignored."""
        if self.base is None:
            return
        now = time.monotonic()
        if not force and now - self._refreshed < REFRESH_SECONDS:
            return
        self._refreshed = now
        try:
            overrides = await self.store.spam_overrides()
        except StoreError as exc:
            log.warning("spam settings overrides not read: %s", exc)
            return
        if overrides == self._overrides:
            return
        try:
            settings = effective(self.base, overrides)
        except SpamConfigError as exc:
            log.error("spam settings overrides ignored: %s", exc)
            return
        self._overrides = overrides
        self.apply(settings)
        log_event(log, "spam settings applied", overrides=len(overrides))

    async def settings_saved(self) -> None:
        """The administrator saved overrides in this process: apply them now, and have the
        other workers read them at their next decision (other nodes: within seconds)."""
        await self.refresh(force=True)
        if self.announce is not None:
            self.announce()

    def expire(self) -> None:
        """Read the overrides again at the next decision (another worker saved some)."""
        self._refreshed = float("-inf")

    def apply(self, settings: SpamSettings) -> None:
        """Use new settings from the next decision on (the state in the store is kept)."""
        if (settings.dnsbl, settings.dnswl) != (self.settings.dnsbl, self.settings.dnswl):
            self._clients.clear()  # the cached listings were for the old zones
        self.settings = settings
        self.classifier.max_bytes = settings.max_scan_bytes
        self.greylist.delay = settings.greylist_delay
        self.greylist.expire = settings.greylist_expire
        self.sender_rate.per_hour = settings.sender_rate
        self.client_rate.per_hour = settings.client_rate
        self._nets = [ipaddress.ip_network(n, strict=False) for n in settings.greylist_networks]
        self._rate_exempt = [ipaddress.ip_network(n, strict=False) for n in settings.rate_exempt]

    # ----------------------------------------------------------------- connection

    async def client_listings(self, peer_ip: str) -> list[Listing]:
        """The client's DNS list entries, cached for ten minutes per address."""
        facts = self._clients.get(peer_ip)
        now = time.monotonic()
        if facts is not None and now - facts.when < LISTING_TTL:
            self._clients.move_to_end(peer_ip)
            return facts.listings
        zones = (*self.settings.dnsbl, *self.settings.dnswl)
        listings = await lookup_all(self.resolver, peer_ip, zones)
        self._clients[peer_ip] = _ClientFacts(now, listings)
        while len(self._clients) > MAX_CACHED_CLIENTS:
            self._clients.popitem(last=False)
        return listings

    async def screen_connection(self, peer_ip: str, reader: asyncio.StreamReader) -> Reply | None:
        """Before the greeting: None to greet, or the 554 to greet with instead.

        The pregreet test (Postfix postscreen's): a client must not speak before our greeting
        (RFC 5321 3.1, 4.3.1); bulk senders that fire their commands blind do. The wait is the
        DNS list lookups plus `greet_wait`; anything the client sent meanwhile refuses it.
        """
        await self.refresh()
        if not self.settings.enabled:
            return None
        try:
            return await self._screen(peer_ip, reader)
        except Exception:  # noqa: BLE001 - a screening failure greets normally
            log.exception("connection screening failed for %s", peer_ip)
            return None

    async def _screen(self, peer_ip: str, reader: asyncio.StreamReader) -> Reply | None:
        early = asyncio.ensure_future(reader.read(1024))
        try:
            listings = await self.client_listings(peer_ip)
            if self.settings.greet_wait > 0 and not early.done():
                await asyncio.wait({early}, timeout=self.settings.greet_wait)
            else:
                await asyncio.sleep(0)  # let a read that can complete now complete
            talked = early.done() and not early.cancelled() and bool(early.result())
        finally:
            if not early.done():
                early.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await early
        if talked:
            log_event(log, "pregreet", client=peer_ip)
            return PREGREET_REPLY
        if any(entry.allow for entry in listings):
            return None
        for entry in listings:
            if not entry.allow and entry.score == 0:
                log_event(log, "dnsbl refusal", client=peer_ip, zone=entry.zone, answer=entry.answer)
                return Reply(554, "5.7.1", f"Service unavailable; client [{peer_ip}] blocked"
                             f" using {entry.zone}: {entry.reason}")  # fmt: skip
        return None

    # ----------------------------------------------------------------- envelope

    async def _greylist_exempt(self, peer_ip: str) -> bool:
        if self._in(peer_ip, self._nets):
            return True
        if any(entry.allow for entry in await self.client_listings(peer_ip)):
            return True
        names = await self._confirmed_names(peer_ip)
        allowed = self.settings.greylist_allow
        return any(n == d or n.endswith("." + d) for n in names for d in allowed)

    async def _confirmed_names(self, peer_ip: str) -> list[str]:
        """Forward-confirmed reverse DNS names of the client (PTR, then A/AAAA back)."""
        facts = self._clients.get(peer_ip)
        if facts is not None and facts.names is not None:
            return facts.names
        names: list[str] = []
        if self.resolver is not None:
            with contextlib.suppress(Exception):
                for name in (await asyncio.wait_for(self.resolver.ptr(peer_ip), 5.0))[:5]:
                    with contextlib.suppress(Exception):
                        addrs = await asyncio.wait_for(self.resolver.ip(name), 5.0)
                        if ipaddress.ip_address(peer_ip) in addrs:
                            names.append(name.rstrip(".").lower())
        if facts is not None:
            facts.names = names
        return names

    async def check_recipient(self, peer_ip: str, sender: str, recipient: str) -> Reply | None:
        """At RCPT on the MX, for a local recipient: greylisting, then the rate limits."""
        await self.refresh()
        try:
            return await self._check_recipient(peer_ip, sender, recipient)
        except StoreError as exc:  # state unreadable: let the recipient through, lose nothing
            log.warning("greylisting/rate limits skipped: %s", exc)
            return None

    async def _check_recipient(self, peer_ip: str, sender: str, recipient: str) -> Reply | None:
        settings = self.settings
        if not settings.enabled or not settings.thresholds_for(recipient).enabled:
            return None
        now = time.monotonic()
        if now - self._purged > PURGE_EVERY:
            self._purged = now
            try:
                await purge(self.store, settings.greylist_expire)
            except StoreError as exc:  # the next RCPT tries again later
                log.warning("spam envelope state not purged: %s", exc)
        if settings.greylist and not await self._greylist_exempt(peer_ip):
            wait = await self.greylist.check(peer_ip, sender, recipient)
            if wait > 0:
                log_event(log, "greylisted", client=peer_ip, sender=sender or "<>", rcpt=recipient)
                return Reply(451, "4.7.1", f"Greylisted, please try again in {int(wait) + 1} seconds")
        if self._in(peer_ip, self._rate_exempt):
            return None
        if not await self.client_rate.hit(client_network(peer_ip)):
            return Reply(450, "4.7.1", "Too many recipients from your network, try again later")
        if sender and not await self.sender_rate.hit(sender.lower()):
            return Reply(450, "4.7.1", "Too many recipients from this sender, try again later")
        return None

    @staticmethod
    def _in(peer_ip: str, networks: list[Any]) -> bool:
        try:
            ip = ipaddress.ip_address(peer_ip)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    # ----------------------------------------------------------------- content

    def _thresholds(self, recipients: Sequence[str]) -> Thresholds:
        """The most lenient settings among the recipients (never lose anyone's ham)."""
        chosen = [self.settings.thresholds_for(r) for r in recipients] or [self.settings.thresholds]
        enabled = all(t.enabled for t in chosen)
        junk = max(t.junk for t in chosen)
        reject = 0.0 if any(t.reject == 0 for t in chosen) else max(t.reject for t in chosen)
        return Thresholds(enabled, junk, reject)

    @staticmethod
    def _reputation_keys(analysis: Analysis, auth: Any) -> list[tuple[str, str]]:
        """The (kind, name) rows of an account's sender reputation this message is judged by."""
        sender = from_address(analysis.document)
        dmarc = dmarc_domain(auth)
        keys: list[tuple[str, str]] = []
        if sender:
            keys += [("contact", sender), ("from", sender)]
        if dmarc:
            keys.append(("dmarc", dmarc))
        return keys

    async def _reputation(
        self, account_id: int, analysis: Analysis, auth: Any,
        known: Mapping[tuple[str, str], tuple[int, int]] | None = None,
    ) -> list[Reason]:
        """`known`: the account's reputation rows, when read already for every account."""
        sender = from_address(analysis.document)
        dmarc = dmarc_domain(auth)
        keys = self._reputation_keys(analysis, auth)
        if not keys:
            return []
        if known is None:
            known = await self.store.spam_senders(account_id, keys)
        out: list[Reason] = []
        if sender and known.get(("contact", sender), (0, 0))[0] > 0:
            wrote = known[("contact", sender)][0]
            authentic = dmarc is not None and sender.endswith("@" + dmarc)
            out.append(Reason("KNOWN_CONTACT", -5.0 if authentic else -2.0,
                              f"you wrote to {sender} ({wrote} messages)"
                              + ("" if authentic else ", but this From is not authenticated")))  # fmt: skip
        if sender and ("from", sender) in known:
            ham, spam = known[("from", sender)]
            if ham >= 2 and spam == 0:
                out.append(Reason("SENDER_KEPT", -2.0, f"you kept {ham} messages from {sender}"))
            elif spam >= 2 and spam > ham:
                out.append(Reason("SENDER_JUNKED", 2.0, f"{spam} messages from {sender} were junk"))
        if dmarc and ("dmarc", dmarc) in known:
            ham, spam = known[("dmarc", dmarc)]
            if ham >= 3 and spam * 4 <= ham:
                out.append(Reason("DOMAIN_GOOD_HISTORY", -1.5,
                                  f"{dmarc} (DMARC-authenticated): {ham} kept, {spam} junk"))  # fmt: skip
            elif spam >= 3 and spam > ham:
                out.append(Reason("DOMAIN_BAD_HISTORY", 1.5,
                                  f"{dmarc} (DMARC-authenticated): {ham} kept, {spam} junk"))  # fmt: skip
        return out

    async def _external(self, message: bytes, peer_ip: str, helo: str, sender: str,
                        recipients: Sequence[str]) -> list[Reason]:  # fmt: skip
        s = self.settings
        asks = []
        if s.rspamd_url:
            asks.append(ask_rspamd(s.rspamd_url, message, peer_ip=peer_ip or "127.0.0.1",
                                   helo=helo, sender=sender, recipients=list(recipients),
                                   timeout=s.external_timeout))  # fmt: skip
        if s.spamd:
            asks.append(ask_spamd(s.spamd, message, timeout=s.external_timeout))
        if not asks:
            return []
        return [r for r in await asyncio.gather(*asks) if r is not None]

    async def judge(
        self,
        message: bytes,
        *,
        peer_ip: str = "",
        helo: str = "",
        sender: str = "",
        recipients: Sequence[str] = (),
        account_ids: Sequence[int] = (),
        auth: Any = None,
    ) -> Judgement:
        """Score `message` for its recipients: every test, the score, the verdict (the most
        lenient of the accounts', as `spam check` shows it)."""
        each = await self.judge_accounts(
            message, peer_ip=peer_ip, helo=helo, sender=sender, recipients=recipients,
            accounts=[(i, "") for i in account_ids], auth=auth,
        )  # fmt: skip
        return min(each.values(), key=lambda j: j.score)

    async def judge_accounts(
        self,
        message: bytes,
        *,
        peer_ip: str = "",
        helo: str = "",
        sender: str = "",
        recipients: Sequence[str] = (),
        accounts: Sequence[tuple[int, str]] = (),
        auth: Any = None,
    ) -> dict[int, Judgement]:
        """One judgement per recipient account (id -> judgement; 0 when there is none): its own
        model, its own reputation, and the thresholds of its own address ("" = those of all
        `recipients`, the most lenient). Everything that does not depend on the account (the
        parse, DNS lists, authentication, external engines) is done once."""
        together = self._thresholds(recipients)
        wanted = list(dict.fromkeys(accounts)) or [(0, "")]
        out: dict[int, Judgement] = {}
        if not self.settings.enabled:
            off = Reason("FILTER_OFF", 0.0, "spam filtering is off for this recipient")
            return {i: Judgement(0.0, "ham", (off,), together.junk) for i, _ in wanted}
        limits = {i: self.settings.thresholds_for(a) if a else together for i, a in wanted}
        if not any(t.enabled for t in limits.values()):
            off = Reason("FILTER_OFF", 0.0, "spam filtering is off for this recipient")
            return {i: Judgement(0.0, "ham", (off,), limits[i].junk) for i, _ in wanted}
        # A small message is analysed here, on the loop (`INLINE_ANALYSIS`); a larger one in a
        # thread while the DNS lists and the external engines are asked. No task is made for
        # engines that are not configured.
        inline = len(message) <= INLINE_ANALYSIS
        analysis_task = None if inline else asyncio.ensure_future(self.classifier.analyse(message))
        external_task = (
            asyncio.ensure_future(self._external(message, peer_ip, helo, sender, recipients))
            if self.settings.rspamd_url or self.settings.spamd
            else None
        )
        listings = await self.client_listings(peer_ip) if peer_ip else []
        analysis = (self.classifier.analyse_now(message) if analysis_task is None
                    else await analysis_task)  # fmt: skip
        common = (header_reasons(analysis.document) + shape_reasons(analysis.tokens)
                  + auth_reasons(auth))  # fmt: skip
        refused_by: Listing | None = None
        allowed = any(entry.allow for entry in listings)
        for entry in listings:
            if entry.allow:
                points = entry.score or -2.0
                common.append(Reason("DNSWL", points, f"client on allow list {entry.zone}: {entry.reason}"))
            elif entry.score:
                common.append(Reason("DNSBL", entry.score, f"client listed in {entry.zone}: {entry.reason}"))
            elif not allowed:
                refused_by = entry
                common.append(Reason("DNSBL", 0.0, f"client listed in {entry.zone}: {entry.reason}"
                                     " (refused at connection)"))  # fmt: skip
        if external_task is not None:
            common += await external_task
        # every account's sender reputation in one read, not one per recipient
        keys = self._reputation_keys(analysis, auth)
        reputations = await self.store.spam_senders_many(
            [i for i, _ in wanted if i and limits[i].enabled], keys) if keys else {}
        for account_id, _ in wanted:
            thresholds = limits[account_id]
            if not thresholds.enabled:
                off = Reason("FILTER_OFF", 0.0, "spam filtering is off for this recipient")
                out[account_id] = Judgement(0.0, "ham", (off,), thresholds.junk)
                continue
            reasons = list(common)
            estimate = await self.classifier.estimate(analysis, account_id or None)
            if estimate is None:
                reasons.append(Reason("BAYES_UNTRAINED", 0.0, "classifier has not learnt enough yet"))
            else:
                for reason in (bayes_reason(*estimate), structure_reason(estimate[0]),
                               novelty_reason(estimate[0])):
                    if reason is not None:
                        reasons.append(reason)
            if account_id:
                reasons += await self._reputation(account_id, analysis, auth,
                                                  reputations.get(account_id, {}))
            score = round(sum(r.points for r in reasons), 1)
            reasons.sort(key=lambda r: -abs(r.points))
            if refused_by is not None or (thresholds.reject and score >= thresholds.reject):
                verdict = "reject"
            elif score >= thresholds.junk:
                verdict = "junk"
            else:
                verdict = "ham"
            out[account_id] = Judgement(score, verdict, tuple(reasons), thresholds.junk)
        return out

    async def filter_message(
        self,
        verdict: Any,
        peer_ip: str,
        helo: str,
        sender: str,
        recipients: Sequence[str],
        account_ids: Sequence[int],
        addresses: Mapping[int, str] | None = None,
        *,
        log_verdict: bool = True,
    ) -> MessageOutcome:
        """At the end of DATA on the MX, after mail authentication (`verdict`, a
        `mailauth.InboundVerdict`): what to do with the message and what to store.

        Each account is judged on its own (`addresses`: account id -> its address, for its own
        thresholds): the message is refused only when every account would refuse it; otherwise
        each account's copy goes to its INBOX or its Junk with its own X-Spam-* fields
        (`MessageOutcome.accounts`), and an account that would have refused it gets it in Junk.
        The verdict is logged ("spam verdict"), or with `log_verdict=False` handed back as
        `MessageOutcome.log_fields` for the caller's own line about the message.
        """
        await self.refresh()
        message, forged = strip_spam_fields(verdict.message)
        addresses = addresses or {}
        try:
            each = await self.judge_accounts(
                message, peer_ip=peer_ip, helo=helo, sender=sender, recipients=recipients,
                accounts=[(i, addresses.get(i, "")) for i in account_ids], auth=verdict,
            )  # fmt: skip
        except Exception:  # noqa: BLE001 - a filter failure must never lose the message
            log.exception("spam filter failed; message delivered unjudged")
            failed = Reason("FILTER_ERROR", 0.0, "the spam filter failed on this message")
            each = {i: Judgement(0.0, "ham", (failed,), self.settings.thresholds.junk)
                    for i in list(account_ids) or [0]}  # fmt: skip
        judgement = min(each.values(), key=lambda j: j.score)  # the most lenient
        fields: dict[str, Any] = {"verdict": judgement.verdict, "score": f"{judgement.score:.1f}",
                  "forged_fields": str(forged),
                  "verdicts": ",".join(f"{i}:{j.verdict}" for i, j in each.items()),
                  "tests": ",".join(r.name for r in judgement.reasons)}  # fmt: skip
        if log_verdict:
            log_event(log, "spam verdict", client=peer_ip, **fields)
        if all(j.verdict == "reject" for j in each.values()):
            # RFC 5321 4.2.5 + 3.6.2: refused at the end of DATA, so the sender's own server,
            # not us, tells the (possibly forged) sender: no backscatter.
            top = next((r for r in judgement.reasons if r.points > 0), None)
            why = f": {top.name}" if top is not None else ""
            reply = Reply(554, "5.7.1", f"Message refused as spam (score {judgement.score:.1f}{why})")
            return MessageOutcome(reply, b"", None, judgement,
                                  log_fields={} if log_verdict else fields)
        # one SMTP reply for everyone: an account that would refuse gets the message in Junk
        each = {i: replace(j, verdict="junk") if j.verdict == "reject" else j
                for i, j in each.items()}  # fmt: skip
        judgement = min(each.values(), key=lambda j: j.score)
        if len(each) > MAX_OWN_COPIES:
            # each distinct X-Spam-Status is another copy of the message on disk: past a few
            # accounts, one copy per verdict (each account still gets its own mailbox)
            lenient = {j.verdict: j for j in sorted(each.values(), key=lambda j: -j.score)}
            shown = {i: lenient[j.verdict] for i, j in each.items()}
        else:
            shown = each
        accounts = {i: (shown[i], "Junk" if j.verdict == "junk" else None) for i, j in each.items()}
        content = judgement.fields() + verdict.header + message
        mailbox = "Junk" if judgement.verdict == "junk" else None
        return MessageOutcome(None, content, mailbox, judgement, accounts,
                              {} if log_verdict else fields)

    # ----------------------------------------------------------------- learning

    async def learn_loop(self) -> None:
        """Train from what users do, every `learn_interval`, until cancelled."""
        from .trainer import Trainer

        trainer = Trainer(self.store, self.classifier, self.hostname)
        while True:
            try:
                await trainer.sync_all()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("spam training pass failed")
            await asyncio.sleep(self.settings.learn_interval)


def create_filter(ctx: Any) -> SpamFilter | None:
    """The application's spam filter (None when `[spam] enabled = false`)."""
    base = dict(getattr(ctx.config, "spam", {}) or {})
    settings = SpamSettings.from_mapping(base)
    if not settings.enabled:
        return None
    return SpamFilter(settings, ctx.store, ctx.resolver, ctx.hostname, base)
