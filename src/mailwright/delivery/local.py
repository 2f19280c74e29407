"""Deliver one staged message to the local recipients of a transaction.

Recipients resolve through the directory (accounts, aliases, catch-alls, plus-addressing);
several recipients that reach one account deliver once. All local targets, copies edited by
Sieve's editheader included, are committed in one store transaction (`FanOut.deliver_each`): one
blob per distinct content, referenced once per copy, however many recipients. An account that
cannot take its copy (over quota, disabled or deleted since RCPT) is refused on its own and
named in `DeliveryReport.failed`; the others keep theirs, and nobody's copy is ever dropped
without the caller hearing of it. With Sieve (`filter`), each account's script decides its
mailboxes before that transaction and its other actions run after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailwright.accounts.directory import Directory, Resolution
from mailwright.delivery.roles import DeliveryStore
from mailwright.delivery.tlsreports import RUA_LOCAL_PART, read_tls_report, store_tls_report
from mailwright.store.api import (
    Account,
    Delivered,
    DeliveryTarget,
    LocalCopies,
    MessageRecord,
    NotFound,
    QueueAddition,
    QuotaExceeded,
    RefusalReport,
    StagedBlob,
    TraceEvent,
)

if TYPE_CHECKING:
    from mailwright.sieve.delivery import FilterPlan, SieveFilter

log = logging.getLogger("mailwright.delivery")

# (recipient as given, account address, why: "quota", "disabled", "gone") of each account that
# could not take its copy -> the queue entries that report them (a DSN), or None. Runs inside
# the store's unit of work: quick, no I/O.
FailureReport = Callable[[Sequence[tuple[str, str, str]]], QueueAddition | None]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    records: tuple[MessageRecord, ...]
    remote: tuple[str, ...]  # alias expansions that point outside our domains
    unknown: tuple[str, ...]  # recipients that resolved to nothing
    refused: tuple[tuple[str, str], ...] = ()  # (recipient, reason): a Sieve reject for SMTP
    # (recipient, account address, why: "quota", "disabled", "gone") for each account that
    # got no copy while the others did (store.core.fanout): the caller reports them
    failed: tuple[tuple[str, str, str], ...] = ()


class LocalDelivery:
    def __init__(self, store: DeliveryStore, directory: Directory) -> None:
        self.store = store
        self.directory = directory
        # Sieve (mailwright.sieve.delivery.SieveFilter), set by app: plan() says where each
        # account's copy goes before the transaction, commit() acts on the rest after it.
        self.filter: SieveFilter | None = None

    async def deliver(
        self,
        blob: StagedBlob,
        recipients: Sequence[str],
        *,
        mailbox: str = "INBOX",
        flags: frozenset[str] = frozenset(),
        sender: str = "",
        refuse_in_smtp: bool = False,
    ) -> DeliveryReport:
        report, _ = await self.deliver_and_queue(
            blob, recipients, None, mailbox=mailbox, flags=flags, sender=sender,
            refuse_in_smtp=refuse_in_smtp,
        )
        return report

    async def deliver_and_queue(
        self,
        blob: StagedBlob | None,
        recipients: Sequence[str],
        queued: QueueAddition | None,
        *,
        mailbox: str = "INBOX",
        flags: frozenset[str] = frozenset(),
        sender: str = "",
        refuse_in_smtp: bool = False,
        variants: Mapping[int, tuple[StagedBlob, str]] | None = None,
        resolved: Mapping[str, Resolution] | None = None,
        report_failures: FailureReport | None = None,
        trace: Sequence[TraceEvent] = (),
    ) -> tuple[DeliveryReport, list[int]]:
        """Deliver to the local recipients and add the queue entries in one store transaction:
        either every local copy and every queue entry is committed, or none is, so a client
        that retries after a 4xx cannot get a second local copy.

        `variants` gives some accounts their own bytes and mailbox (account id -> (blob,
        mailbox)): the spam filter judges each account with its own model, so one message can
        be junk for one user and ham for another, each copy saying why. `resolved` holds what
        the recipients resolved to moments ago (at RCPT time): they are not looked up again,
        and the store transaction still refuses an account disabled since then.

        `report_failures` turns the accounts that could not take their copy ((recipient,
        account address, why), see `DeliveryReport.failed`) into queue entries that report
        them, committed with the copies of the others; without it, such a refusal fails the
        whole delivery (QuotaExceeded or NotFound), as it does when nobody got a copy.

        `trace`: the message trace's events so far (the first names the queue id and
        Message-ID); where each copy went, what Sieve decided and what was queued are added,
        and all of them commit in the same transaction."""
        variants = variants or {}
        targets: dict[int, DeliveryTarget] = {}
        accounts: dict[int, tuple[str, Account]] = {}  # account id -> (recipient, account)
        remote: list[str] = []
        unknown: list[str] = []
        to_rua = False  # addressed to the rua of our _smtp._tls record (RFC 8460 3)
        for rcpt in recipients if blob is not None else ():
            res = resolved.get(rcpt) if resolved else None
            if res is None:
                res = await self.directory.resolve(rcpt)
            if not res.local_domain or not res.deliverable:
                unknown.append(rcpt)
                continue
            to_rua = to_rua or rcpt.rpartition("@")[0].lower() == RUA_LOCAL_PART
            for acc in res.accounts:
                own = variants.get(acc.id)
                targets.setdefault(acc.id, DeliveryTarget(acc.id, own[1] if own else mailbox, flags))
                accounts.setdefault(acc.id, (rcpt, acc))
            remote.extend(res.remote)
        records: list[MessageRecord] = []
        plan: FilterPlan | None = None
        if self.filter is not None and blob is not None and targets:
            # Sieve decides where each account's copy goes before the transaction; a reject is
            # answered in SMTP only when no copy leaves for elsewhere (RFC 5429 2.1).
            plan = await self.filter.plan(
                blob, sender, [(*accounts[i], t) for i, t in targets.items()],
                refuse_in_smtp=refuse_in_smtp and not remote and queued is None,
                blobs={i: b for i, (b, _) in variants.items()},
            )
            if plan.refused and queued is None:
                return DeliveryReport((), (), tuple(unknown), tuple(plan.refused)), []
            targets = {i: t for i, t in enumerate(plan.targets)}
        local = _copies(blob, list(targets.values()), variants) if blob and targets else None
        if plan is not None and plan.separate:
            # copies edited by editheader join the same unit of work, each with its own blob
            extra = tuple(LocalCopies(b, tuple(ts)) for b, ts in plan.separate if ts)
            if local is None:
                local = LocalCopies(extra[0].blob, extra[0].targets, extra[1:]) if extra else None
            else:
                local = LocalCopies(local.blob, local.targets, (*local.variants, *extra))
        # A TLS report to us is parsed from the staged file now and kept once the message is.
        tls_report = (await read_tls_report(self.store, local.blob)
                      if to_rua and local is not None else None)
        ids: list[int] = []
        failed: list[tuple[str, str, str]] = []
        refused_ids: set[int] = set()
        if local is not None or queued is not None:
            # One unit of work for every local copy and queue entry: one blob (N references),
            # one transaction; an account that cannot take its copy is refused on its own.
            on_refused: RefusalReport | None = None
            if report_failures is not None:
                def on_refused(refused: Sequence[tuple[int, str]]) -> QueueAddition | None:
                    for i, why in refused:
                        if i not in accounts:
                            # a copy Sieve filed into another account's shared mailbox
                            # (RFC 4314 p right): no recipient of ours to report it for, so
                            # the whole delivery fails, as it did before refusals were
                            # reported one by one
                            raise (QuotaExceeded if why == "quota" else NotFound)(
                                f"shared mailbox of account {i} refused the copy ({why})")
                    rows = [(accounts[i][0], accounts[i][1].address, why) for i, why in refused]
                    return report_failures(rows) if rows else None
            done = await self.store.deliver_each(
                local, queued, on_refused,
                trace=_trace_after(trace, plan, local, queued, accounts) if trace else ())
            records, ids = list(done.records), list(done.queue_ids)
            for account_id, why in done.refused:
                refused_ids.add(account_id)
                found = accounts.get(account_id)
                if found is not None:
                    failed.append((found[0], found[1].address, why))
            if failed:
                log.warning("not delivered: %s", ", ".join(f"{a} ({why})" for _, a, why in failed))
        elif trace:
            await self.store.trace_add(trace)
        if plan is not None and self.filter is not None:
            plan.followups = [f for f in plan.followups if f.account.id not in refused_ids]
            await self.filter.commit(plan)
        if tls_report is not None and records:
            await store_tls_report(self.store, tls_report)
        if blob is not None:
            log.info(
                "delivered blob=%s size=%d mailboxes=%d remote=%d unknown=%d",
                blob.blob_id[:12], blob.size, len(records), len(remote), len(unknown),
            )
        if ids and queued is not None:
            log.info("queued ids=%s sender=<%s> domains=%s size=%d", ids, queued.sender,
                     ",".join(queued.by_domain), queued.blob.size)  # fmt: skip
        report = DeliveryReport(tuple(records), tuple(dict.fromkeys(remote)), tuple(unknown),
                                failed=tuple(failed))
        return report, ids


def _trace_after(trace: Sequence[TraceEvent], plan: FilterPlan | None, local: LocalCopies | None,
                 queued: QueueAddition | None, accounts: Mapping[int, tuple[str, Account]],
                 ) -> Callable[[Delivered], list[TraceEvent]]:
    """The trace's events of a delivery, made once the unit of work knows which accounts it
    refused (their copies are reported to the sender, not delivered)."""
    names = {i: a for i, (_r, a) in accounts.items()}
    first = trace[0]
    planned = [*trace, *_trace_events(first, plan, local, queued, names)]

    def events(done: Delivered) -> list[TraceEvent]:
        refused = {names[i].address if i in names else f"account {i}": why
                   for i, why in done.refused}
        out = [e for e in planned if not (e.stage == "delivered" and e.recipient in refused)]
        out += [TraceEvent("bounced", f"not delivered ({why}); the sender gets a report",
                           first.queue_id, first.message_id, who)
                for who, why in refused.items()]
        return out

    return events


def _trace_events(first: TraceEvent, plan: FilterPlan | None, local: LocalCopies | None,
                  queued: QueueAddition | None,
                  accounts: Mapping[int, Account]) -> list[TraceEvent]:  # fmt: skip
    """Sieve's decisions, each local copy's mailbox and each queued recipient, as trace events
    of the message `first` names."""
    qid, mid = first.queue_id, first.message_id
    out: list[TraceEvent] = []
    if plan is not None:
        from mailwright.sieve.delivery import plan_decisions

        out += [TraceEvent("filtered", text, qid, mid, rcpt) for rcpt, text in plan_decisions(plan)]
    for copies in (local, *local.variants) if local is not None else ():
        for t in copies.targets:
            acc = accounts.get(t.account_id)
            who = acc.address if acc is not None else f"account {t.account_id}"
            out.append(TraceEvent("delivered", f"into {t.mailbox} of {who}", qid, mid, who))
    if queued is not None:
        for domain, rcpts in queued.by_domain.items():
            out += [TraceEvent("queued", f"for remote delivery to {domain}",
                               queued.queue_id or qid, mid, r.address) for r in rcpts]
    return out


def _copies(blob: StagedBlob, targets: list[DeliveryTarget],
            variants: Mapping[int, tuple[StagedBlob, str]]) -> LocalCopies:  # fmt: skip
    """The targets grouped by the bytes each account gets (its variant, else `blob`)."""
    groups: dict[str, tuple[StagedBlob, list[DeliveryTarget]]] = {}
    for t in targets:
        own = variants.get(t.account_id)
        b = own[0] if own is not None else blob
        groups.setdefault(b.blob_id, (b, []))[1].append(t)
    first, *rest = [LocalCopies(b, tuple(ts)) for b, ts in groups.values()]
    return LocalCopies(first.blob, first.targets, tuple(rest))
