"""One message to many local recipients: one blob, one unit of work, a result per account.

House rules of this module:

- A message accepted for N local accounts is one blob (content-addressed, N references) and
  one transaction: every message row, every account's usage, every mailbox's UIDNEXT and
  HIGHESTMODSEQ, the blob references and the outbound queue entries commit together. The
  statements are per *set* of recipients, not per recipient: one read of the target
  mailboxes and one of the accounts, both locking, sent together, one UID allocation per mailbox, the message rows
  and the usage changes as batched statements (`Tx.insert_messages`, `Tx.run_many`).
- The UIDs and MODSEQs come from the locking read (the mailbox row's UIDNEXT and
  HIGHESTMODSEQ, which nobody else can change until COMMIT), so that every statement after
  that read is a write whose answer nobody waits for: on a backend that pipelines, the unit
  is two round trips (the locking read, then everything else with the unit's end).
- An account that cannot take its copy (over quota, disabled or deleted since RCPT, no INBOX)
  is refused on its own: the others still get theirs, and the caller learns who was refused
  and why (`Delivered.refused`), as LMTP gives a reply per recipient (RFC 2033 4.2). Whether
  that ends in a 4xx for the whole SMTP transaction or in a 250 with a DSN is the caller's
  policy; the store only never drops a copy silently.
- Locks are taken in the order every other write path takes them (PostgreSQL): mailboxes by
  id, then accounts by id, then blobs; SQLite has one writer and ignores FOR UPDATE.
- The batched reads (`sieve_active_many`, `spam_senders_many`, `spam_labels_many`) exist for
  the same reason: the work around the transaction (Sieve, the spam filter, its trainer
  reading what was delivered) must not cost a store round trip per recipient either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailwright.store.api import (
    Delivered,
    DeliveryTarget,
    LocalCopies,
    MessageRecord,
    NotFound,
    QueueAddition,
    QuotaExceeded,
    RefusalReport,
    StagedBlob,
    StoreError,
    TraceEvent,
    canonical_mailbox_name,
)
from mailwright.store.core.base import CoreBase
from mailwright.store.core.queue import insert_entries
from mailwright.store.core.trace import insert_events
from mailwright.store.core.tx import Row, Tx

# Why an account got no copy (Delivered.refused); the caller turns them into replies or DSNs.
QUOTA = "quota"  # RFC 3463 5.2.2, mailbox full
DISABLED = "disabled"  # 5.2.1, mailbox disabled
GONE = "gone"  # 5.1.1, the account or its INBOX no longer exists


@dataclass(slots=True)
class _Copy:
    """One row to insert: where, which bytes, which flags."""

    account_id: int
    mailbox_id: int
    blob: StagedBlob
    flags: frozenset[str]


async def _lock_targets(
    tx: Tx, copies: Sequence[LocalCopies]
) -> tuple[dict[tuple[int, str], int], dict[int, tuple[int, int]], dict[int, Row]]:
    """The target mailboxes, locked: (account id, canonical name) -> mailbox id, for every
    target name and INBOX, and mailbox id -> (UIDNEXT, HIGHESTMODSEQ) as locked; and the
    target accounts, locked: id -> (id, disabled, quotas and usage). One round trip where the backend pipelines: the two statements do not depend on
    each other, and they lock in the house order (mailboxes by id, then accounts by id).
    A mailbox or account deleted meanwhile is simply not found."""
    accounts = sorted({t.account_id for c in copies for t in c.targets})
    names = sorted({canonical_mailbox_name(t.mailbox) for c in copies for t in c.targets}
                   | {"INBOX"})  # fmt: skip
    acc_sql, acc_params = tx.values(accounts)
    name_sql, name_params = tx.values(names)
    boxes, accs = await tx.rows_batch([
        (f"SELECT id, account_id, name, uidnext, highestmodseq FROM mailboxes"
         f" WHERE account_id IN {acc_sql}"
         f" AND name IN {name_sql} ORDER BY id FOR UPDATE", (*acc_params, *name_params)),
        ("SELECT id, disabled, quota_bytes, used_bytes, quota_messages, used_messages"
         f" FROM accounts WHERE id IN {acc_sql} ORDER BY id FOR UPDATE", acc_params),
    ])
    return ({(int(r[1]), str(r[2])): int(r[0]) for r in boxes},
            {int(r[0]): (int(r[3]), int(r[4])) for r in boxes},
            {int(r[0]): r for r in accs})


def _refusal(row: Row | None, octets: int, count: int) -> str | None:
    """Why an account (its locked row: id, disabled, quotas and usage) cannot take `count`
    copies of `octets` in all, or None when it can."""
    if row is None:
        return GONE
    if bool(row[1]):
        return DISABLED
    quota_bytes, used_bytes, quota_messages, used_messages = (int(v) for v in row[2:6])
    if octets > 0 and quota_bytes and used_bytes + octets > quota_bytes:
        return QUOTA
    if count > 0 and quota_messages and used_messages + count > quota_messages:
        return QUOTA  # RFC 9208 5.2: the MESSAGE resource
    return None


async def deliver_copies(
    tx: Tx,
    copies: Sequence[LocalCopies],
    queued: QueueAddition | None,
    internaldate: float,
    report: RefusalReport | None = None,
) -> Delivered:
    """The unit of work of one accepted message (see the module's rules)."""
    boxes, counters, accounts = await _lock_targets(tx, copies) if copies else ({}, {}, {})
    wanted: list[_Copy] = []
    refused: dict[int, str] = {}
    octets: dict[int, int] = {}
    count: dict[int, int] = {}
    for c in copies:
        for t in c.targets:
            box = boxes.get((t.account_id, canonical_mailbox_name(t.mailbox)))
            if box is None:  # a mailbox that does not exist (any more) means INBOX
                box = boxes.get((t.account_id, "INBOX"))
            if box is None:
                refused[t.account_id] = GONE
                continue
            wanted.append(_Copy(t.account_id, box, c.blob, t.flags))
    if wanted:
        for w in wanted:
            octets[w.account_id] = octets.get(w.account_id, 0) + w.blob.size
            count[w.account_id] = count.get(w.account_id, 0) + 1
        for account_id in octets:
            why = _refusal(accounts.get(account_id), octets[account_id], count[account_id])
            if why is not None:
                refused.setdefault(account_id, why)
        wanted = [w for w in wanted if w.account_id not in refused]
    if refused and (report is None or (not wanted and queued is None)):
        # all or nothing when the caller cannot report a refusal, and nothing to commit when
        # every copy was refused: the caller answers for the whole message (a 4xx/5xx)
        raise _refusal_error(refused)
    records = await _insert(tx, wanted, counters, internaldate)
    if records:
        await tx.run_many(
            "UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ?"
            " WHERE id = ?",
            [(octets[a], count[a], a) for a in sorted({w.account_id for w in wanted})],
        )
    refs: dict[str, tuple[StagedBlob, int]] = {}
    for w in wanted:
        blob, n = refs.get(w.blob.blob_id, (w.blob, 0))
        refs[w.blob.blob_id] = (blob, n + 1)
    ids = await insert_entries(tx, queued) if queued is not None and queued.by_domain else []
    if ids and queued is not None:
        blob, n = refs.get(queued.blob.blob_id, (queued.blob, 0))
        refs[queued.blob.blob_id] = (blob, n + len(ids))
    notice = report(sorted(refused.items())) if refused and report is not None else None
    if notice is not None and notice.by_domain:
        # the refused accounts' failure report, as a queue entry of the same unit of work
        n_notice = len(await insert_entries(tx, notice))
        blob, n = refs.get(notice.blob.blob_id, (notice.blob, 0))
        refs[notice.blob.blob_id] = (blob, n + n_notice)
    for blob_id in sorted(refs):  # blobs last, in id order (the lock order)
        await tx.ref_blob(*refs[blob_id])
    return Delivered(tuple(records), tuple(ids), tuple(sorted(refused.items())))


def _refusal_error(refused: dict[int, str]) -> StoreError:
    if all(why == QUOTA for why in refused.values()):
        return QuotaExceeded(f"quota of account(s) {sorted(refused)} exceeded")
    return NotFound(f"account(s) {sorted(refused)} cannot take mail: "
                    + ", ".join(sorted(set(refused.values()))))


async def _insert(
    tx: Tx, wanted: list[_Copy], counters: dict[int, tuple[int, int]], internaldate: float
) -> list[MessageRecord]:
    """UIDs and MODSEQs from the locked mailbox rows (`counters`: UIDNEXT, HIGHESTMODSEQ),
    their advance (one statement per number of copies a mailbox gets, usually one for all),
    then every row in one batch; each mailbox gets one new MODSEQ. Nothing here waits for
    an answer (`Tx.run_many`, `Tx.insert_messages`)."""
    per_box: dict[int, list[_Copy]] = {}
    for w in wanted:
        per_box.setdefault(w.mailbox_id, []).append(w)
    by_count: dict[int, list[int]] = {}
    for box, ws in per_box.items():
        by_count.setdefault(len(ws), []).append(box)
    for n, box_ids in sorted(by_count.items()):
        ids_sql, ids_params = tx.values(sorted(box_ids))
        await tx.run_many(
            "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1"
            f" WHERE id IN {ids_sql}", [(n, *ids_params)],
        )
    records: list[MessageRecord] = []
    for box, ws in sorted(per_box.items()):
        uid, highest = counters[box]
        modseq = highest + 1
        for i, w in enumerate(ws):
            records.append(MessageRecord(box, uid + i, modseq, w.flags, internaldate,
                                         w.blob.size, w.blob.blob_id))  # fmt: skip
        tx.changed(box, modseq)
    await tx.insert_messages(records)
    return records


class FanOut(CoreBase):
    async def deliver(
        self, blob: StagedBlob, targets: Sequence[DeliveryTarget]
    ) -> list[MessageRecord]:
        """One message into several mailboxes, all or none (`deliver_each` without a
        report)."""
        done = await self.deliver_each(LocalCopies(blob, tuple(targets)), None)
        return list(done.records)

    async def deliver_and_queue(
        self, local: LocalCopies | None, queued: QueueAddition | None,
        trace: Sequence[TraceEvent] = (),
    ) -> tuple[list[MessageRecord], list[int]]:
        """Local copies and queue entries of one accepted message in one unit."""
        done = await self.deliver_each(local, queued, trace=trace)
        return list(done.records), list(done.queue_ids)

    async def deliver_each(
        self,
        local: LocalCopies | None,
        queued: QueueAddition | None,
        report: RefusalReport | None = None,
        *,
        trace: Sequence[TraceEvent] | Callable[[Delivered], Sequence[TraceEvent]] = (),
    ) -> Delivered:
        """Store one accepted message for its local accounts and queue its remote part, in one
        unit of work. With `report`, an account that cannot take its copy is refused alone
        (`refused`) and the queue entries `report` makes of the refusals commit with the rest;
        without it, or when nothing else would be stored, a refusal fails the whole unit
        (QuotaExceeded when every refusal is the quota's, NotFound otherwise). `trace`: the
        message trace's events, recorded in the same unit (a function of what was stored when
        they depend on it)."""
        copies = [c for c in ((local, *local.variants) if local else ()) if c.targets]
        if queued is not None and not queued.by_domain:
            queued = None
        if not copies and queued is None:
            events = trace(Delivered((), (), ())) if callable(trace) else trace
            if events:
                async def record(tx: Tx) -> None:
                    await insert_events(tx, events)

                await self._unit(record)
            return Delivered((), (), ())
        staged = [c.blob for c in copies] + ([queued.blob] if queued is not None else [])
        for blob in {b.blob_id: b for b in staged}.values():
            await self._stage(blob)
        now = time.time()

        async def op(tx: Tx) -> Delivered:
            done = await deliver_copies(tx, copies, queued, now, report)
            await insert_events(tx, trace(done) if callable(trace) else trace)
            return done

        return await self._unit(op)

    async def sieve_active_many(self, account_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """account id -> its active script's (name, text), for those that have one."""
        if not account_ids:
            return {}

        async def op(tx: Tx) -> dict[int, tuple[str, str]]:
            ids, params = tx.values(sorted(set(account_ids)))
            rows = await tx.rows(
                f"SELECT account_id, name, content FROM sieve_scripts WHERE account_id IN {ids}"
                " AND active = ?",
                (*params, True),
            )
            return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}

        return await self._view(op)

    async def spam_senders_many(
        self, account_ids: Sequence[int], keys: Sequence[tuple[str, str]]
    ) -> dict[int, dict[tuple[str, str], tuple[int, int]]]:
        """`spam_senders` for several accounts in one read: account id -> (kind, name) ->
        (ham, spam); accounts that know none of `keys` are left out."""
        if not account_ids or not keys:
            return {}

        async def op(tx: Tx) -> dict[int, dict[tuple[str, str], tuple[int, int]]]:
            ids, id_params = tx.values(sorted(set(account_ids)))
            names, name_params = tx.values(sorted({n for _, n in keys}))
            wanted = set(keys)
            rows = await tx.rows(
                f"SELECT account_id, kind, name, ham, spam FROM spam_senders"
                f" WHERE account_id IN {ids} AND name IN {names}",
                (*id_params, *name_params),
            )
            out: dict[int, dict[tuple[str, str], tuple[int, int]]] = {}
            for r in rows:
                key = (str(r[1]), str(r[2]))
                if key in wanted:
                    out.setdefault(int(r[0]), {})[key] = (int(r[3]), int(r[4]))
            return out

        return await self._view(op)

    async def spam_labels_many(self, account_id: int, blob_ids: Sequence[str]) -> dict[str, str]:
        """`spam_label` of many messages of one account in one read: blob id -> label, for
        those the ledger holds (the trainer reads a whole pass of new messages at once)."""
        if not blob_ids:
            return {}

        async def op(tx: Tx) -> dict[str, str]:
            ids, params = tx.values(sorted(set(blob_ids)))
            rows = await tx.rows(
                f"SELECT blob_id, label FROM spam_trained WHERE account_id = ? AND blob_id IN {ids}",
                (account_id, *params),
            )
            return {str(r[0]): str(r[1]) for r in rows if r[1]}

        return await self._view(op)
