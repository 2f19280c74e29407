"""The outbound queue service: keep remote mail safe in the store, deliver it, retry, bounce.

House rules:

* the store is the queue: one entry per message and destination domain, each recipient with its
  status (scheduled, delivered, tempfail, permfail). Nothing lives only in memory, so a restart
  loses nothing; a worker claims due entries with a lease so that several nodes can share one
  store;
* an entry's recipients are decided per attempt from the remote replies (``queue.smtp``): 2xx
  delivered, 5xx permanent, 4xx and connection trouble temporary. Temporary ones retry on
  ``[outbound] retry_schedule`` (the last step repeats) until ``max_age``, then bounce with 4.4.7;
* a DSN (``queue.bounce``) goes to the envelope sender for permanent failures, once for a delay
  past ``delay_warning``, and for NOTIFY=SUCCESS when the next hop does not offer DSN ("relayed",
  RFC 3461 5.2.2.3). Never to the null sender. A DSN for a local sender is delivered locally;
  otherwise it is queued with the null reverse-path;
* one connection per destination carries several messages in turn; at most ``max_per_domain``
  connections per domain and ``max_connections`` in all;
* the DSN is written before the entry is updated: a crash in between may duplicate a DSN but
  never loses one (RFC 5321 6.1 prefers duplicates to losses).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import socket
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mailwright.delivery.ingest import stage_bytes
from mailwright.dns.resolver import DNSError, to_ascii_domain
from mailwright.proto.smtpclient import Envelope, Recipient, scan_message
from mailwright.queue.bounce import Action, DSNRecipient, build_dsn, wants_notification
from mailwright.queue.smtp import (
    AttemptError,
    OutboundClient,
    Outcome,
    RecipientResult,
    SMTPSession,
    TLSPolicy,
)
from mailwright.store.api import QueueEntry, QueueRecipient, StagedBlob, Store, StoreError

__all__ = ["LocalSink", "Outbound", "QueueSettings", "create_outbound", "recipient_domain"]

log = logging.getLogger("mailwright.queue")

SCHEDULED = "scheduled"
DELIVERED = "delivered"
TEMPFAIL = "tempfail"
PERMFAIL = "permfail"
_OPEN = (SCHEDULED, TEMPFAIL)


class LocalSink(Protocol):
    """Local delivery, for DSNs to local senders (``mailwright.delivery.local.LocalDelivery``)."""

    directory: Any

    async def deliver(self, blob: StagedBlob, recipients: Sequence[str]) -> Any: ...


@dataclass(frozen=True, slots=True)
class QueueSettings:
    retry_schedule: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 14400)
    max_age: float = 5 * 86400
    delay_warning: float = 4 * 3600
    max_per_domain: int = 4
    max_connections: int = 50
    lease: float = 900.0  # longer than the longest attempt (RFC 5321 timeouts add up to ~20 min
    # only for pathological peers; the lease is renewed by finishing the attempt)
    poll_interval: float = 5.0
    batch: int = 200
    max_rcpts_per_transaction: int = 100

    @classmethod
    def from_config(cls, cfg: Any) -> QueueSettings:
        schedule = tuple(float(s) for s in cfg.retry_schedule) or (60.0,)
        return cls(
            retry_schedule=schedule,
            max_age=float(cfg.max_age),
            delay_warning=float(getattr(cfg, "delay_warning", 4 * 3600)),
            max_per_domain=int(getattr(cfg, "max_per_domain", 4)),
            max_connections=int(getattr(cfg, "max_connections", 50)),
            lease=float(getattr(cfg, "lease", 900.0)),
            # Poll at least as often as the shortest retry step, so short test schedules work.
            poll_interval=max(0.2, min(5.0, min(schedule))),
        )


def recipient_domain(address: str) -> str:
    """The destination domain of an address, in A-label form (the queue groups by it)."""
    domain = address.rpartition("@")[2].strip().lower()
    try:
        return to_ascii_domain(domain)
    except DNSError:
        return domain


def _wire_address(address: str) -> str:
    # RFC 6531 3.2: an internationalised domain alone does not need SMTPUTF8; send its A-label.
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii() or domain.startswith("["):
        return address
    return f"{local}@{recipient_domain(address)}"


def _notify(text: str | None) -> tuple[str, ...] | None:
    return None if not text else tuple(w.strip().upper() for w in text.split(",") if w.strip())


def _orcpt(text: str | None) -> tuple[str, str] | None:
    if not text or ";" not in text:
        return None
    kind, _, addr = text.partition(";")
    return kind.strip(), addr.strip()


def _status_of(reply: str, default: str) -> str:
    # last_reply is "smtp; 451 4.2.1 text" or "4.4.1 text"; pick the RFC 3463 code back out.
    for word in reply.replace(";", " ").split():
        parts = word.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and word[0] in "245":
            return word
    return default


class Outbound:
    """The queue service. ``enqueue`` is what the SMTP submission session calls."""

    def __init__(
        self,
        store: Store,
        client: OutboundClient,
        *,
        hostname: str,
        owner: str,
        settings: QueueSettings | None = None,
        local: LocalSink | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.hostname = hostname
        self.owner = owner
        self.settings = settings or QueueSettings()
        self.local = local
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # claimed entries whose attempt has not finished
        self._domain_limits: dict[str, asyncio.Semaphore] = {}
        self._domain_users: dict[str, int] = defaultdict(int)  # lanes holding or awaiting one
        self._connections = asyncio.Semaphore(self.settings.max_connections)

    # -- entry point -----------------------------------------------------------------------------

    async def enqueue(
        self,
        blob: StagedBlob,
        sender: str,
        recipients: Sequence[str | Recipient | tuple[str, Any]],
        *,
        ret: str | None = None,
        envid: str | None = None,
    ) -> list[int]:
        """Queue a staged message for remote recipients; durable when this returns.

        ``sender`` is "" for the null reverse-path. ``ret`` ("FULL"/"HDRS") and ``envid`` are the
        MAIL FROM DSN parameters. A recipient is an address, a ``Recipient`` (address, NOTIFY
        tuple, ORCPT (type, address)), or ``(address, params)`` where ``params`` has ``notify``
        and ``orcpt`` attributes like ``mailwright.proto.smtp.events.RcptParams`` (RFC 3461).
        Returns one queue id per destination domain.
        """
        by_domain: dict[str, list[QueueRecipient]] = defaultdict(list)
        seen: set[str] = set()
        for item in recipients:
            if isinstance(item, str):
                rcpt = Recipient(item)
            elif isinstance(item, tuple):
                address, params = item
                rcpt = Recipient(str(address), getattr(params, "notify", None),
                                 getattr(params, "orcpt", None))
            else:
                rcpt = item
            key = rcpt.address.lower()
            if key in seen:
                continue
            seen.add(key)
            by_domain[recipient_domain(rcpt.address)].append(QueueRecipient(
                address=rcpt.address,
                status=SCHEDULED,
                notify=",".join(rcpt.notify) if rcpt.notify else None,
                orcpt=f"{rcpt.orcpt[0]};{rcpt.orcpt[1]}" if rcpt.orcpt else None,
            ))
        if not by_domain:
            return []
        ret_value = ret.upper() if ret and ret.upper() in ("FULL", "HDRS") else None
        ids = await self.store.queue_add(blob, sender, dict(by_domain), ret=ret_value, envid=envid)
        log.info("queued ids=%s sender=<%s> domains=%s size=%d", ids, sender,
                 ",".join(by_domain), blob.size)
        self.wake()
        return ids

    def wake(self) -> None:
        self._wake.set()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._recover_leases()
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="outbound-queue")

    async def stop(self, grace: float = 10.0) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        if self._tasks:
            # Attempts in flight get a bounded time to finish; the rest keep their lease, which
            # the next start of this node takes back (``_recover_leases``).
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _recover_leases(self) -> None:
        now = datetime.now(UTC)
        for entry in await self.store.queue_list():
            if entry.lease_owner == self.owner:
                with contextlib.suppress(StoreError):
                    await self.store.queue_update(
                        entry.id, self.owner, entry.recipients,
                        next_attempt=min(entry.next_attempt, now), last_error=entry.last_error)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once(wait=False)
            except Exception:
                log.exception("queue run failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self, *, wait: bool = True) -> int:
        """Claim the due entries and start their attempts; with ``wait``, until all are done."""
        # Claim only what this node can work on now: other nodes take the rest, and nothing
        # claimed sits idle long enough to outlive its lease.
        room = self.settings.batch - self._in_flight
        if room <= 0:
            return 0
        entries = await self.store.queue_claim(self.owner, self.settings.lease, room)
        by_domain: dict[str, list[QueueEntry]] = defaultdict(list)
        for entry in entries:
            by_domain[entry.domain].append(entry)
        started: list[asyncio.Task[None]] = []
        for domain, group in by_domain.items():
            lanes = min(self.settings.max_per_domain, len(group))
            for lane in range(lanes):
                part = group[lane::lanes]
                task = asyncio.create_task(self._deliver_domain(domain, part))
                self._tasks.add(task)
                self._in_flight += len(part)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(functools.partial(self._done, len(part)))
                started.append(task)
        if wait and started:
            await asyncio.gather(*started, return_exceptions=True)
        return len(entries)

    def _done(self, entries: int, _task: object = None) -> None:
        self._in_flight -= entries
        self._wake.set()  # room for more

    # -- one destination -------------------------------------------------------------------------

    def _domain_limit(self, domain: str) -> asyncio.Semaphore:
        sem = self._domain_limits.get(domain)
        if sem is None:
            sem = self._domain_limits[domain] = asyncio.Semaphore(self.settings.max_per_domain)
        return sem

    async def _deliver_domain(self, domain: str, entries: list[QueueEntry]) -> None:
        limit = self._domain_limit(domain)
        self._domain_users[domain] += 1
        try:
            async with limit, self._connections:
                await self._deliver_lane(domain, entries)
        finally:
            # Forget idle domains so that the table does not grow with every domain ever seen.
            self._domain_users[domain] -= 1
            if self._domain_users[domain] <= 0:
                del self._domain_users[domain]
                self._domain_limits.pop(domain, None)

    async def _deliver_lane(self, domain: str, entries: list[QueueEntry]) -> None:
        session: SMTPSession | None = None
        failure: AttemptError | None = None
        try:
            for entry in entries:
                try:
                    if not any(r.status in _OPEN for r in entry.recipients):
                        await self._complete(entry, [], None)
                        continue
                    if failure is None and (session is None or not session.usable):
                        if session is not None:
                            await session.close()
                            session = None
                        try:
                            session = await self.client.connect(domain)
                        except AttemptError as exc:
                            failure = exc  # every entry of this round shares it
                    if failure is not None or session is None:
                        assert failure is not None
                        await self._complete(entry, failure, None)
                        continue
                    message = await self.store.read_blob(entry.blob_id)
                    results = await self._send(session, self._envelope(entry, message),
                                               message)
                    await self._complete(entry, results, message)
                except Exception as exc:
                    log.exception("delivery of queue entry %d failed", entry.id)
                    await self._release(entry, f"4.3.0 internal error: {exc}")
        finally:
            if session is not None:
                await session.close()

    async def _send(self, session: SMTPSession, envelope: Envelope,
                    message: bytes) -> list[RecipientResult]:
        # RFC 5321 4.5.3.1.8: servers may take as few as 100 recipients per transaction; larger
        # envelopes go out as several transactions on the same connection.
        size = self.settings.max_rcpts_per_transaction
        results: list[RecipientResult] = []
        for start in range(0, len(envelope.recipients), size):
            part = replace(envelope, recipients=envelope.recipients[start : start + size])
            if results and not session.usable:
                results += [RecipientResult(r, Outcome.TEMPORARY, "4.4.2",
                                            f"connection to {session.host} lost", session.host)
                            for r in part.recipients]
                continue
            results += await session.send(part, message)
        return results

    def _envelope(self, entry: QueueEntry, message: bytes) -> Envelope:
        traits = scan_message(message)
        rcpts = tuple(
            Recipient(_wire_address(r.address), _notify(r.notify), _orcpt(r.orcpt))
            for r in entry.recipients if r.status in _OPEN
        )
        return Envelope(
            sender=_wire_address(entry.sender) if entry.sender else "",
            recipients=rcpts,
            size=len(message),
            eight_bit=traits.eight_bit,
            utf8_headers=traits.utf8_headers,
            ret=entry.ret,
            envid=entry.envid,
        )

    async def _release(self, entry: QueueEntry, error: str) -> None:
        delay = self.settings.retry_schedule[0]
        with contextlib.suppress(StoreError):
            await self.store.queue_update(
                entry.id, self.owner, entry.recipients,
                next_attempt=datetime.now(UTC) + timedelta(seconds=delay), last_error=error)

    # -- deciding after an attempt ---------------------------------------------------------------

    async def _complete(self, entry: QueueEntry, outcome: list[RecipientResult] | AttemptError,
                        message: bytes | None) -> None:
        now = datetime.now(UTC)
        s = self.settings
        open_rcpts = [r for r in entry.recipients if r.status in _OPEN]
        results: dict[str, RecipientResult] = {}
        if isinstance(outcome, AttemptError):
            status = PERMFAIL if not outcome.temporary else TEMPFAIL
            text = f"{outcome.status} {outcome.text}"
            remote = outcome.remote_mta
            for r in open_rcpts:
                results[r.address] = RecipientResult(
                    Recipient(r.address), Outcome.TEMPORARY if status == TEMPFAIL
                    else Outcome.PERMANENT, outcome.status, text, remote)
            last_error = text
        else:
            by_wire = {res.recipient.address: res for res in outcome}
            for r in open_rcpts:
                res = by_wire.get(_wire_address(r.address))
                if res is not None:
                    results[r.address] = res
            errors = [res.diagnostic for res in outcome if res.outcome is not Outcome.DELIVERED]
            last_error = errors[-1] if errors else ""

        expired = (now - entry.created).total_seconds() >= s.max_age
        new: list[QueueRecipient] = []
        failed: list[DSNRecipient] = []
        relayed: list[DSNRecipient] = []
        delayed: list[DSNRecipient] = []
        retry_until = entry.created + timedelta(seconds=s.max_age)
        for r in entry.recipients:
            if r.status not in _OPEN:
                new.append(r)
                continue
            res = results.get(r.address)
            if res is None:
                new.append(r)  # not attempted this time (should not happen); keep as it was
                continue
            orcpt = _orcpt(r.orcpt)
            notify = _notify(r.notify)
            if res.outcome is Outcome.DELIVERED:
                new.append(QueueRecipient(r.address, DELIVERED, r.notify, r.orcpt, res.diagnostic))
                if res.relayed_without_dsn and wants_notification(notify, Action.RELAYED):
                    relayed.append(DSNRecipient(r.address, Action.RELAYED, "2.0.0", res.diagnostic,
                                                res.remote_mta, orcpt, now))
            elif res.outcome is Outcome.PERMANENT:
                new.append(QueueRecipient(r.address, PERMFAIL, r.notify, r.orcpt, res.diagnostic))
                if wants_notification(notify, Action.FAILED):
                    failed.append(DSNRecipient(r.address, Action.FAILED, res.status,
                                               res.diagnostic, res.remote_mta, orcpt, now))
            elif expired:
                # RFC 5321 4.5.4.1: give up after the configured time; RFC 3463 4.4.7.
                diag = f"{res.diagnostic} (gave up after {_age(s.max_age)})"
                new.append(QueueRecipient(r.address, PERMFAIL, r.notify, r.orcpt, diag))
                if wants_notification(notify, Action.FAILED):
                    failed.append(DSNRecipient(r.address, Action.FAILED, "4.4.7", diag,
                                               res.remote_mta, orcpt, now))
            else:
                new.append(QueueRecipient(r.address, TEMPFAIL, r.notify, r.orcpt, res.diagnostic))
                if wants_notification(notify, Action.DELAYED):
                    delayed.append(DSNRecipient(r.address, Action.DELAYED, res.status,
                                                res.diagnostic, res.remote_mta, orcpt, now,
                                                will_retry_until=retry_until))

        remaining = any(r.status in _OPEN for r in new)
        warn = (remaining and not entry.warned and delayed
                and (now - entry.created).total_seconds() >= s.delay_warning)
        if failed or relayed or warn:
            if message is None:
                message = await self.store.read_blob(entry.blob_id)
            for group in (failed, relayed, delayed if warn else []):
                if group:
                    await self._send_dsn(entry, group, message)

        if not remaining:
            await self.store.queue_update(entry.id, self.owner, new, next_attempt=None,
                                          last_error=last_error)
            log.info("queue entry %d done: %s", entry.id,
                     " ".join(f"<{r.address}>={r.status}" for r in new))
            return
        step = s.retry_schedule[min(entry.attempts, len(s.retry_schedule) - 1)]
        next_attempt = min(now + timedelta(seconds=step), max(retry_until, now))
        await self.store.queue_update(entry.id, self.owner, new, next_attempt=next_attempt,
                                      last_error=last_error, warned=True if warn else None)
        log.info("queue entry %d deferred until %s: %s", entry.id, next_attempt.isoformat(),
                 last_error)

    async def _send_dsn(self, entry: QueueEntry, recipients: list[DSNRecipient],
                        message: bytes) -> None:
        data = build_dsn(
            reporting_mta=self.hostname, sender=entry.sender, recipients=recipients,
            original=message, ret=entry.ret, envid=entry.envid, arrival_date=entry.created,
        )
        if data is None:
            return  # RFC 3464 2: never to the null reverse-path
        blob = await stage_bytes(self.store, data)
        domain = recipient_domain(entry.sender)
        if self.local is not None and await self.local.directory.is_local_domain(domain):
            await self.local.deliver(blob, [entry.sender])
        else:
            await self.enqueue(blob, "", [entry.sender])
        log.info("dsn %s for queue entry %d to <%s>", recipients[0].action.value, entry.id,
                 entry.sender)


def _age(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds)}s"


def node_owner(config: Any) -> str:
    """A lease owner that is the same across restarts of this node (so it can take its leases
    back at start) and differs between nodes sharing one store."""
    data_dir = str(getattr(getattr(config, "server", None), "data_dir", ""))
    tag = hashlib.sha256(data_dir.encode()).hexdigest()[:8]
    return f"{socket.gethostname()}/{tag}"


def create_outbound(ctx: Any) -> Outbound:
    """Factory called by ``mailwright.app.build_context``."""
    from mailwright.dns.resolver import from_config

    config = ctx.config
    cfg = config.outbound
    resolver = ctx.resolver if ctx.resolver is not None else from_config(config)
    tls = TLSPolicy(
        mode="required" if getattr(cfg, "require_tls", False) else "opportunistic",
        verify=bool(getattr(cfg, "verify_certificates", False)),
    )
    client = OutboundClient(resolver, ctx.hostname, port=int(cfg.port), tls=tls)
    return Outbound(ctx.store, client, hostname=ctx.hostname, owner=node_owner(config),
                    settings=QueueSettings.from_config(cfg), local=ctx.delivery)
