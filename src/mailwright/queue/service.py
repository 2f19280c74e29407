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
* exactly once: an entry is leased for one attempt at a time (claimed just before its attempt,
  not in batches), the lease is renewed every quarter lease while the attempt runs (heartbeat),
  the final dot is sent only while the lease is certain (else the connection is dropped and the
  remote discards the message), and the outcome is recorded only under an unexpired lease of
  this owner (the store's compare-and-set). A slow remote therefore never lets a second node
  send the same message; only a lease lost between the remote's 250 and our commit (a node
  that stops, or a database out of reach for a whole lease) can still duplicate, as with any
  SMTP relay;
* the recipients' fate is recorded before any DSN goes out, together with the reports still to
  send; the reports are then sent under a fresh lease and the entry finished. A crash in
  between sends the reports from the record on the next claim: a DSN may be duplicated, never
  lost, and never sent by a node whose result did not count (RFC 5321 6.1);
* outbound TLS follows the destination's policy (``queue.smtp``, docs/transport.md); a message
  sent with REQUIRETLS (RFC 8689) keeps that demand in the entry (``extra["requiretls"]``) and
  gets a connection of its own; one with ``TLS-Required: No`` ignores DANE and MTA-STS;
* every TLS session is counted per policy domain and day in the store, and once a day the
  counts of the days before go out as TLS-RPT aggregate reports (RFC 8460) to the ``rua`` of
  each domain that asks for them, by mail through this queue or by HTTPS POST;
* a report that cannot be delivered (a bounce to a bad sender, a local sender that no longer
  exists) goes to the postmaster (``[outbound] double_bounce_recipient``, by default
  postmaster@ the first local domain), with the failed report attached; only a report to the
  postmaster itself that fails is dropped, logged as an error (RFC 5321 6.1: a message must
  not vanish silently, nor bounce forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import hashlib
import json
import logging
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.trace import record as record_trace
from mailwright.dns.resolver import DNSError, to_ascii_domain
from mailwright.proto.smtpclient import Envelope, Recipient, scan_message
from mailwright.queue.bounce import Action, DSNRecipient, build_dsn, wants_notification
from mailwright.queue.roles import QueueStore
from mailwright.queue.smtp import (
    AttemptError,
    OutboundClient,
    Outcome,
    RecipientResult,
    SMTPSession,
    TLSOutcome,
    TLSPolicy,
)
from mailwright.store.api import (
    LeaseLost,
    NotFound,
    QueueAddition,
    QueueEntry,
    QueueRecipient,
    StagedBlob,
    StoreError,
    TLSResult,
    TraceEvent,
    new_queue_id,
)
from mailwright.transport.https import HTTPError, request
from mailwright.transport.mtasts import MTASTS
from mailwright.transport.tlsrpt import (
    MEDIA_TYPE,
    ReportError,
    ResultRow,
    build_report,
    parse_record,
    report_message,
)

__all__ = ["LocalSink", "Outbound", "QueueSettings", "create_outbound", "recipient_domain"]

log = logging.getLogger("mailwright.queue")

SCHEDULED = "scheduled"
DELIVERED = "delivered"
TEMPFAIL = "tempfail"
PERMFAIL = "permfail"
_OPEN = (SCHEDULED, TEMPFAIL)
# QueueEntry.extra keys of an entry whose reports are recorded but not yet sent
_DSN_PENDING = "dsn_pending"
_DSN_THEN = "dsn_then"
_REQUIRETLS = "requiretls"  # "1": sent with MAIL FROM ... REQUIRETLS (RFC 8689)


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
    lease: float = 900.0  # renewed every quarter of itself while the attempt runs
    poll_interval: float = 5.0
    batch: int = 200
    max_rcpts_per_transaction: int = 100
    double_bounce_recipient: str = ""  # "" = postmaster@ the first local domain
    tls_reports: bool = True  # send TLS-RPT aggregate reports (RFC 8460)
    tls_report_contact: str = ""  # "" = postmaster@ the first local domain

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
            double_bounce_recipient=str(getattr(cfg, "double_bounce_recipient", "") or ""),
            tls_reports=bool(getattr(cfg, "tls_reports", True)),
            tls_report_contact=str(getattr(cfg, "tls_report_contact", "") or ""),
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



def failure_report(
    blob: StagedBlob,
    sender: str,
    failures: Sequence[tuple[str, str, str, Sequence[str] | None, tuple[str, str] | None]],
    *,
    ret: str | None = None,
    envid: str | None = None,
    queue_id: str | None = None,
) -> QueueAddition | None:
    """A queue entry that only reports: the local recipients of an accepted message that could
    not take their copy, as (address, RFC 3463 status, diagnostic, NOTIFY, ORCPT), each
    already failed, with the failure report recorded as still to send (the entry is due at
    once, and whoever claims it sends the report and removes it). Committed in the same unit of
    work as the other copies, so the 250 is never given for a copy that is silently missing.
    None when no recipient asked for a failure report (RFC 3461 4.1 NOTIFY=NEVER)."""
    now = datetime.now(UTC)
    rows: list[QueueRecipient] = []
    blocks: list[DSNRecipient] = []
    for address, status, diagnostic, notify, orcpt in failures:
        rows.append(QueueRecipient(address, PERMFAIL, ",".join(notify) if notify else None,
                                   f"{orcpt[0]};{orcpt[1]}" if orcpt else None, diagnostic))
        if wants_notification(notify, Action.FAILED):
            blocks.append(DSNRecipient(address, Action.FAILED, status, diagnostic, None,
                                       orcpt, now))  # fmt: skip
    if not blocks:
        return None
    ret_value = ret.upper() if ret and ret.upper() in ("FULL", "HDRS") else None
    # one entry (one report) for all of them, filed under the first one's domain: it is never
    # delivered anywhere, only reported on
    pending = {_DSN_PENDING: json.dumps([[_dsn_json(b) for b in blocks]]), _DSN_THEN: ""}
    return QueueAddition(blob, sender, {recipient_domain(rows[0].address): rows}, ret_value,
                         envid, queue_id or new_queue_id(), pending)


def queue_addition(
    blob: StagedBlob,
    sender: str,
    recipients: Sequence[Any],
    *,
    ret: str | None = None,
    envid: str | None = None,
    queue_id: str | None = None,
    requiretls: bool = False,
) -> QueueAddition:
    """The queue entries of one message, one per destination domain, each recipient once, with
    its DSN parameters (RFC 3461 4): what `Outbound.enqueue` stores, and what an SMTP session
    commits together with its local copies (`FanOut.deliver_each`). A recipient is an
    address, a `Recipient`, ``(address, params)`` as in `Outbound.enqueue`, or any object with
    ``address``, ``notify`` and ``orcpt`` attributes. ``requiretls``: MAIL FROM had REQUIRETLS
    (RFC 8689), kept with each entry."""
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
        ))  # fmt: skip
    ret_value = ret.upper() if ret and ret.upper() in ("FULL", "HDRS") else None
    return QueueAddition(blob, sender, dict(by_domain), ret_value, envid,
                         queue_id or new_queue_id(),
                         {_REQUIRETLS: "1"} if requiretls else None)


class Outbound:
    """The queue service. ``enqueue`` is what the SMTP submission session calls."""

    def __init__(
        self,
        store: QueueStore,
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
        self._queued: set[int] = set()  # due entries handed to a lane, not yet claimed
        self._leases: dict[int, float] = {}  # entry id -> monotonic time its lease surely ends
        self._heartbeat: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # set when the last lease is dropped
        self._reported_day = ""  # the UTC day whose TLS-RPT run is done
        # TLS-RPT (RFC 8460): the client reports each policy session's outcome to us
        # (a service built only to enqueue, as local delivery tests do, may have no client)
        if client is not None and client.reporter is None:
            client.reporter = self.record_tls

    # -- entry point -----------------------------------------------------------------------------

    async def enqueue(
        self,
        blob: StagedBlob,
        sender: str,
        recipients: Sequence[str | Recipient | tuple[str, Any]],
        *,
        ret: str | None = None,
        envid: str | None = None,
        queue_id: str | None = None,
        requiretls: bool = False,
    ) -> list[int]:
        """Queue a staged message for remote recipients; durable when this returns.

        ``sender`` is "" for the null reverse-path. ``ret`` ("FULL"/"HDRS") and ``envid`` are the
        MAIL FROM DSN parameters. A recipient is an address, a ``Recipient`` (address, NOTIFY
        tuple, ORCPT (type, address)), or ``(address, params)`` where ``params`` has ``notify``
        and ``orcpt`` attributes like ``mailwright.proto.smtp.events.RcptParams`` (RFC 3461).
        ``queue_id`` is the id the SMTP session already showed (reply, Received header); every
        destination's entry carries it. ``requiretls``: MAIL FROM had REQUIRETLS (RFC 8689).
        Returns one entry number per destination domain.
        """
        addition = queue_addition(blob, sender, recipients, ret=ret, envid=envid,
                                  queue_id=queue_id, requiretls=requiretls)
        if not addition.by_domain:
            return []
        ids = await self.store.queue_add(blob, sender, addition.by_domain, ret=addition.ret,
                                         envid=envid, queue_id=addition.queue_id,
                                         extra=addition.extra)
        log.info("queued id=%s sender=<%s> domains=%s size=%d", addition.queue_id, sender,
                 ",".join(addition.by_domain), blob.size)
        await record_trace(self.store, [
            TraceEvent("queued", f"for remote delivery to {domain} (sender <{sender}>)",
                       addition.queue_id or "", recipient=r.address)
            for domain, rcpts in addition.by_domain.items() for r in rcpts])
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
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None

    async def _recover_leases(self) -> None:
        now = datetime.now(UTC)
        for entry in await self.store.queue_list():
            if entry.lease_owner == self.owner:
                with contextlib.suppress(StoreError):
                    await self.store.queue_update(
                        entry.id, self.owner, entry.recipients,
                        next_attempt=min(entry.next_attempt, now), last_error=entry.last_error,
                        attempt=False)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once(wait=False)
            except Exception:
                log.exception("queue run failed")
            today = datetime.now(UTC).date().isoformat()
            if self.settings.tls_reports and self._reported_day != today:
                # in the background: an HTTPS report endpoint may be slow, the queue must not be
                self._reported_day = today
                task = asyncio.create_task(self._tls_reports_once(), name="tls-reports")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    async def run_once(self, *, wait: bool = True) -> int:
        """Hand the due entries to delivery lanes; with ``wait``, until all are done.

        Nothing is claimed here: a lane claims each entry just before its attempt, so entries
        waiting behind a slow one stay free for other nodes, and no lease outlives its attempt.
        """
        room = self.settings.batch - self._in_flight
        if room <= 0:
            return 0
        due = await self.store.queue_due(room + len(self._queued))
        entries = [e for e in due if e.id not in self._queued][:room]
        self._queued.update(e.id for e in entries)
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
            for due in entries:
                self._queued.discard(due.id)
                claimed = await self._claim(due.id)
                if claimed is None:
                    continue  # another node's attempt, or deleted meanwhile
                entry = claimed
                try:
                    if entry.extra.get(_DSN_PENDING):
                        await self._send_pending_reports(entry, None)
                        continue
                    if not any(r.status in _OPEN for r in entry.recipients):
                        await self._complete(entry, [], None)
                        continue
                    message = await self.store.read_blob(entry.blob_id)
                    requiretls = entry.extra.get(_REQUIRETLS) == "1"
                    if requiretls or _tls_optional(message):
                        # A TLS demand of its own: a connection of its own (RFC 8689 4.2.1, 5).
                        await self._deliver_alone(domain, entry, message, requiretls)
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
                    results = await self._send(session, self._envelope(entry, message),
                                               message, entry.id)
                    await self._complete(entry, results, message)
                except (LeaseLost, NotFound) as exc:
                    # Deleted by the operator, or the lease ran out and another attempt owns
                    # the entry now: nothing of this attempt may be recorded (nor reported).
                    log.warning("queue %s to %s: result of this attempt dropped: %s",
                                _qid(entry), domain, exc)
                except Exception as exc:
                    log.exception("queue %s to %s: attempt failed", _qid(entry), domain)
                    await self._release(entry, f"4.3.0 internal error: {exc}")
                finally:
                    self._drop_lease(entry.id)
        finally:
            for due in entries:
                self._queued.discard(due.id)
            if session is not None:
                await session.close()

    async def _deliver_alone(self, domain: str, entry: QueueEntry, message: bytes,
                             requiretls: bool) -> None:
        try:
            session = await self.client.connect(domain, requiretls=requiretls,
                                                ignore_policy=not requiretls)
        except AttemptError as exc:
            await self._complete(entry, exc, None)
            return
        try:
            results = await self._send(session, self._envelope(entry, message), message, entry.id)
        finally:
            await session.close()
        await self._complete(entry, results, message)

    # -- TLS reporting (RFC 8460) ------------------------------------------------------------------

    async def record_tls(self, outcome: TLSOutcome) -> None:
        """Count one outbound TLS session for the policy domain's daily report."""
        await self.store.tls_result_add(TLSResult(
            day=datetime.now(UTC).date().isoformat(), policy_domain=outcome.policy_domain,
            policy_type=outcome.policy_type, policy_string=json.dumps(list(outcome.policy_string)),
            result_type=outcome.result_type, mx_host=outcome.mx_host,
            receiving_ip=outcome.receiving_ip, count=1, info=outcome.info[:500]))

    async def _tls_reports_once(self) -> None:
        try:
            await self.send_tls_reports()
        except Exception:
            log.exception("TLS reports failed")

    async def send_tls_reports(self, today: str | None = None) -> int:
        """Report the counted days before ``today`` (UTC, ISO) to the domains that publish a
        ``_smtp._tls`` record (RFC 8460 3); the number of reports handed over. The counts are
        taken out of the store in one transaction, so of several nodes one reports each day."""
        rows = await self.store.tls_results_take(today or datetime.now(UTC).date().isoformat())
        by_domain: dict[str, list[ResultRow]] = defaultdict(list)
        for r in rows:
            by_domain[r.policy_domain].append(ResultRow(
                r.day, r.policy_domain, r.policy_type, r.policy_string, r.result_type, r.mx_host,
                r.receiving_ip, r.count, r.info))
        contact = self.settings.tls_report_contact or await self.postmaster() or \
            f"postmaster@{self.hostname}"
        sent = 0
        for domain, group in by_domain.items():
            try:
                uris = parse_record(await self.client.resolver.txt(f"_smtp._tls.{domain}"))
            except (DNSError, ReportError):
                continue  # the domain asks for no reports
            days = sorted(r.day for r in group)
            report = build_report(group, organization=self.hostname, contact=f"mailto:{contact}",
                                  policy_domain=domain, start=date.fromisoformat(days[0]),
                                  end=date.fromisoformat(days[-1]))
            for uri in uris[:4]:  # bounded: a record cannot make us send without end
                try:
                    await self._send_tls_report(uri, report, domain, contact)
                    sent += 1
                except (HTTPError, StoreError, DNSError, ValueError) as exc:
                    log.warning("TLS report for %s to %s not sent: %s", domain, uri, exc)
        return sent

    async def _send_tls_report(self, uri: str, report: dict[str, Any], domain: str,
                               contact: str) -> None:
        if uri.lower().startswith("mailto:"):
            # RFC 8460 5.3: mail through our queue, from the null reverse-path as reports are.
            to = unquote(uri[7:].split("?")[0]).strip()
            if "@" not in to:
                raise ValueError(f"bad mailto: {uri!r}")
            data = report_message(report, sender=contact, to=to, submitter=self.hostname,
                                  policy_domain=domain)
            await self.enqueue(await stage_bytes(self.store, data), "", [to])
            log.info("TLS report for %s queued to <%s>", domain, to)
            return
        # RFC 8460 5.4: an HTTPS POST of the gzipped JSON.
        body = gzip.compress(json.dumps(report).encode(), mtime=0)
        response = await request(uri, resolver=self.client.resolver,
                                 context=self.client.tls.verifying_context(), method="POST",
                                 body=body, headers={"Content-Type": MEDIA_TYPE}, timeout=60.0)
        if not 200 <= response.status < 300:
            raise HTTPError(f"{uri} answered HTTP {response.status}")
        log.info("TLS report for %s posted to %s", domain, uri)

    # -- leases ----------------------------------------------------------------------------------

    async def _claim(self, entry_id: int) -> QueueEntry | None:
        """Lease one entry for one attempt; the heartbeat renews it until the attempt ends."""
        started = time.monotonic()
        entry = await self.store.queue_claim_entry(entry_id, self.owner, self.settings.lease)
        if entry is not None:
            self._leases[entry_id] = started + self.settings.lease
            if self._heartbeat is None or self._heartbeat.done():
                self._heartbeat = asyncio.create_task(self._renew_leases(), name="queue-leases")
        return entry

    def _drop_lease(self, entry_id: int) -> None:
        """The attempt is over (its result recorded or dropped): stop renewing its lease."""
        self._leases.pop(entry_id, None)
        if not self._leases:
            self._idle.set()  # the heartbeat ends now rather than after its sleep

    def _lease_certain(self, entry_id: int) -> bool:
        """True while the lease surely has time left (a margin for the final reply's commit)."""
        until = self._leases.get(entry_id)
        margin = min(self.settings.lease / 5, 30.0)
        return until is not None and time.monotonic() < until - margin

    async def _renew_leases(self) -> None:
        """The heartbeat: renew every lease this node holds, every quarter lease, while any."""
        lease = self.settings.lease
        while self._leases:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, lease / 4)):
                    await self._idle.wait()
            ids = list(self._leases)
            if not ids:
                continue
            started = time.monotonic()
            try:
                renewed = set(await self.store.queue_renew(ids, self.owner, lease))
            except Exception as exc:  # noqa: BLE001 - the store may come back; leases run down
                log.warning("queue lease renewal failed: %s", exc)
                continue
            for entry_id in ids:
                if entry_id not in self._leases:
                    continue
                if entry_id in renewed:
                    self._leases[entry_id] = started + lease
                else:
                    self._leases[entry_id] = 0.0  # lost: never send the final dot for it
                    log.warning("queue entry %d: lease lost (deleted or taken over)", entry_id)

    async def _send(self, session: SMTPSession, envelope: Envelope,
                    message: bytes, entry_id: int) -> list[RecipientResult]:
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
            results += await session.send(
                part, message, may_finish=functools.partial(self._lease_certain, entry_id))
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
            requiretls=entry.extra.get(_REQUIRETLS) == "1",
        )

    async def _release(self, entry: QueueEntry, error: str) -> None:
        delay = self.settings.retry_schedule[0]
        with contextlib.suppress(StoreError):
            # the stored state, not the claim's: part of the attempt may be recorded already
            current = await self.store.queue_get(entry.id) or entry
            await self.store.queue_update(
                entry.id, self.owner, current.recipients,
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
        next_attempt: datetime | None = None
        if remaining:
            step = s.retry_schedule[min(entry.attempts, len(s.retry_schedule) - 1)]
            next_attempt = min(now + timedelta(seconds=step), max(retry_until, now))
        reports = [g for g in (failed, relayed, delayed if warn else []) if g]
        fates = " ".join(f"<{r.address}>={r.status}" for r in new)
        trace = _trace_events(entry, results, new, next_attempt)
        if not reports:
            await self.store.queue_update(entry.id, self.owner, new, next_attempt=next_attempt,
                                          last_error=last_error, trace=trace)
            self._log_outcome(entry, next_attempt, fates, last_error)
            return
        # The recipients' fate first, with the reports still to send, under our lease (a result
        # that does not count must not be reported); due at once, so that whoever claims the
        # entry next sends the reports if this node stops right here.
        pending = {
            **entry.extra,
            _DSN_PENDING: json.dumps([[_dsn_json(r) for r in group] for group in reports]),
            _DSN_THEN: "" if next_attempt is None else next_attempt.isoformat(),
        }
        await self.store.queue_update(entry.id, self.owner, new, next_attempt=now,
                                      last_error=last_error, warned=True if warn else None,
                                      extra=pending, trace=trace)
        self._log_outcome(entry, next_attempt, fates, last_error)
        again = await self._claim(entry.id)
        if again is None:
            return  # another node claimed it first; it sends the reports
        try:
            await self._send_pending_reports(again, message)
        finally:
            self._drop_lease(entry.id)

    def _log_outcome(self, entry: QueueEntry, next_attempt: datetime | None, fates: str,
                     last_error: str) -> None:
        if next_attempt is None:
            log.info("queue %s to %s done: %s", _qid(entry), entry.domain, fates)
        else:
            log.info("queue %s to %s deferred until %s: %s", _qid(entry), entry.domain,
                     next_attempt.isoformat(), last_error)

    async def _send_pending_reports(self, entry: QueueEntry, message: bytes | None) -> None:
        """Send the reports recorded with the entry, then finish the entry as recorded."""
        groups = [[_dsn_from_json(d) for d in group]
                  for group in json.loads(entry.extra.get(_DSN_PENDING, "[]"))]
        if message is None:
            message = await self.store.read_blob(entry.blob_id)
        for group in groups:
            if group:
                await self._send_dsn(entry, group, message)
        then = entry.extra.get(_DSN_THEN, "")
        rest = {k: v for k, v in entry.extra.items() if k not in (_DSN_PENDING, _DSN_THEN)}
        await self.store.queue_update(
            entry.id, self.owner, entry.recipients,
            next_attempt=datetime.fromisoformat(then) if then else None,
            last_error=entry.last_error, extra=rest, attempt=False)

    async def _send_dsn(self, entry: QueueEntry, recipients: list[DSNRecipient],
                        message: bytes) -> None:
        action = recipients[0].action.value
        if not entry.sender:
            # RFC 3464 2: never a report to the null reverse-path; a report that could not be
            # delivered itself goes to the postmaster instead (RFC 5321 6.1).
            if any(r.action is Action.FAILED for r in recipients):
                await self._to_postmaster(entry, recipients, message)
            return
        data = build_dsn(
            reporting_mta=self.hostname, sender=entry.sender, recipients=recipients,
            original=message, ret=_report_ret(entry, entry.ret), envid=entry.envid,
            arrival_date=entry.created,
        )
        if data is None:
            return
        try:
            undelivered = await self._deliver_report(data, entry.sender)
        except StoreError as exc:
            undelivered = f"{type(exc).__name__}: {exc}"
        if undelivered:
            log.warning("queue %s: %s report to <%s> not deliverable (%s); sent to the "
                        "postmaster", _qid(entry), action, entry.sender, undelivered)
            if action == Action.FAILED.value:
                await self._to_postmaster(entry, recipients, message)
            return
        log.info("queue %s: sent a %s report to <%s>", _qid(entry), action, entry.sender)
        await record_trace(self.store, [TraceEvent(
            "dsn", f"{_REPORT_KIND.get(action, action)} report (RFC 3464) sent to"
            f" <{entry.sender}>", entry.queue_id or "",
            recipient=", ".join(r.address for r in recipients))])

    async def _deliver_report(self, data: bytes, to: str) -> str:
        """Deliver a report from the null sender; "" when done, else why it could not be."""
        blob = await stage_bytes(self.store, data)
        domain = recipient_domain(to)
        if self.local is None or not await self.local.directory.is_local_domain(domain):
            await self.enqueue(blob, "", [to])
            return ""
        report = await self.local.deliver(blob, [to])
        if getattr(report, "remote", ()):
            # a local alias that forwards: the report follows it
            await self.enqueue(await stage_bytes(self.store, data), "", list(report.remote))
        if getattr(report, "unknown", ()):
            return "no such local recipient"
        return ""

    async def postmaster(self) -> str | None:
        """Where reports that cannot be delivered go (Postfix's 2bounce_notice_recipient)."""
        if self.settings.double_bounce_recipient:
            return self.settings.double_bounce_recipient
        domains = await self.store.list_domains()
        return f"postmaster@{domains[0].name}" if domains else None

    async def _to_postmaster(self, entry: QueueEntry, recipients: list[DSNRecipient],
                             message: bytes) -> None:
        postmaster = await self.postmaster()
        who = ", ".join(f"<{r.address}>" for r in recipients)
        if postmaster is None or all(r.address.lower() == postmaster.lower()
                                     for r in recipients):
            log.error("queue %s: undeliverable report to %s dropped: %s (no postmaster to "
                      "tell)", _qid(entry), who, recipients[0].diagnostic or recipients[0].status)
            return
        data = build_dsn(
            reporting_mta=self.hostname, sender=postmaster, recipients=recipients,
            original=message, ret=_report_ret(entry, "FULL"), envid=entry.envid,
            arrival_date=entry.created,
        )
        assert data is not None
        undelivered = await self._deliver_report(data, postmaster)
        if undelivered:
            log.error("queue %s: undeliverable report to %s not deliverable to the postmaster "
                      "<%s> either (%s)", _qid(entry), who, postmaster, undelivered)
            return
        log.warning("queue %s: undeliverable report to %s sent to the postmaster <%s>",
                    _qid(entry), who, postmaster)


def _report_ret(entry: QueueEntry, ret: str | None) -> str | None:
    """RFC 8689 5: a report about a REQUIRETLS message returns its header, never its body (the
    report itself travels without that guarantee)."""
    return "HDRS" if entry.extra.get(_REQUIRETLS) == "1" else ret


def _tls_optional(message: bytes) -> bool:
    """RFC 8689 5: ``TLS-Required: No`` asks to ignore DANE and MTA-STS for this message."""
    end = message.find(b"\r\n\r\n", 0, 65536)
    for line in message[: end if end >= 0 else 65536].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"tls-required":
            return value.strip().lower() == b"no"
    return False


_REPORT_KIND = {"failed": "failure", "delayed": "delay", "relayed": "relay",
                "delivered": "delivery", "expanded": "expansion"}


def _trace_events(entry: QueueEntry, results: dict[str, RecipientResult],
                  new: Sequence[QueueRecipient], next_attempt: datetime | None) -> list[TraceEvent]:
    """The message trace's events of one attempt: each attempted recipient's fate, the host
    that answered and its reply."""
    out: list[TraceEvent] = []
    for r in new:
        res = results.get(r.address)
        if res is None:
            continue
        host = f"{res.remote_mta}: " if res.remote_mta else ""
        if r.status == DELIVERED:
            stage, detail = "relayed", f"{host}{res.diagnostic}"
        elif r.status == PERMFAIL:
            expired = res.outcome is Outcome.TEMPORARY
            stage = "expired" if expired else "bounced"
            detail = f"{host}{r.last_reply or res.diagnostic}"
        else:
            when = next_attempt.strftime("%Y-%m-%d %H:%M:%S UTC") if next_attempt else "later"
            stage, detail = "deferred", f"{host}{res.diagnostic}; next attempt {when}"
        out.append(TraceEvent(stage, detail, entry.queue_id or "", recipient=r.address))
    return out


def _qid(entry: QueueEntry) -> str:
    return entry.queue_id or str(entry.id)


def _dsn_json(r: DSNRecipient) -> dict[str, Any]:
    return {
        "address": r.address, "action": r.action.value, "status": r.status,
        "diagnostic": r.diagnostic, "remote_mta": r.remote_mta,
        "original_recipient": list(r.original_recipient) if r.original_recipient else None,
        "last_attempt": r.last_attempt.isoformat() if r.last_attempt else None,
        "will_retry_until": r.will_retry_until.isoformat() if r.will_retry_until else None,
    }


def _dsn_from_json(d: dict[str, Any]) -> DSNRecipient:
    orcpt = d.get("original_recipient")
    return DSNRecipient(
        address=str(d["address"]), action=Action(d["action"]), status=str(d["status"]),
        diagnostic=d.get("diagnostic"), remote_mta=d.get("remote_mta"),
        original_recipient=(str(orcpt[0]), str(orcpt[1])) if orcpt else None,
        last_attempt=datetime.fromisoformat(d["last_attempt"]) if d.get("last_attempt") else None,
        will_retry_until=(datetime.fromisoformat(d["will_retry_until"])
                          if d.get("will_retry_until") else None),
    )


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
        ca_file=str(getattr(cfg, "ca_file", "") or "") or None,
    )
    data_dir = getattr(getattr(config, "server", None), "data_dir", None)
    sts = (MTASTS(resolver, tls.verifying_context,
                  cache_file=Path(data_dir) / "mta-sts-cache.json" if data_dir else None)
           if getattr(cfg, "mta_sts", True) else None)
    client = OutboundClient(resolver, ctx.hostname, port=int(cfg.port), tls=tls, sts=sts,
                            dane=bool(getattr(cfg, "dane", True)))
    return Outbound(ctx.store, client, hostname=ctx.hostname, owner=node_owner(config),
                    settings=QueueSettings.from_config(cfg), local=ctx.delivery)
