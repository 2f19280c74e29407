"""The outbound queue's state machine, once for every backend.

An entry is one message for one destination domain, with its recipients' states. It is *due*
when ``next_attempt`` has come; a worker *claims* it by taking a lease (``lease_owner``,
``lease_until``) and keeps the lease alive with `renew` while it works. Only the holder of an
unexpired lease may record the attempt's outcome (`queue_update`, a compare-and-set): a worker
that stalled past its lease may find that another node took the entry over, and must then
record nothing (`LeaseLost`). Recording an outcome releases the lease; an outcome without a
next attempt removes the entry and its reference to the message blob.

Times come from the database clock (`Tx.now`), so several nodes need not agree on the time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from mailwright.store.api import (
    LeaseLost,
    NotFound,
    QueueAddition,
    QueueEntry,
    QueueRecipient,
    StagedBlob,
    TraceEvent,
    new_queue_id,
)
from mailwright.store.core.base import CoreBase
from mailwright.store.core.trace import insert_events
from mailwright.store.core.tx import Row, Tx, as_json, as_time

COLS = (
    "id, blob_id, sender, domain, recipients, created, next_attempt, attempts, last_error,"
    " ret, envid, lease_owner, lease_until, warned, extra, queue_id"
)
DUE = "next_attempt <= mw_clock() AND (lease_until IS NULL OR lease_until < mw_clock())"


def entry(r: Row) -> QueueEntry:
    return QueueEntry(
        id=int(r[0]),
        blob_id=str(r[1]),
        sender=str(r[2]),
        domain=str(r[3]),
        recipients=tuple(QueueRecipient(**d) for d in as_json(r[4])),
        created=as_time(r[5]),
        next_attempt=as_time(r[6]),
        attempts=int(r[7]),
        last_error=str(r[8]),
        ret=None if r[9] is None else str(r[9]),
        envid=None if r[10] is None else str(r[10]),
        lease_owner=None if r[11] is None else str(r[11]),
        lease_until=None if r[12] is None else as_time(r[12]),
        warned=bool(r[13]),
        extra=dict(as_json(r[14]) or {}),
        queue_id=str(r[15]),
    )


def _recipients(rcpts: Sequence[QueueRecipient]) -> str:
    return json.dumps([asdict(r) for r in rcpts])


async def insert_entries(tx: Tx, q: QueueAddition) -> list[int]:
    """The queue rows of one accepted message, one per destination domain, due now; the
    caller adds the blob references (one per row) in the same unit of work."""
    qid = q.queue_id or new_queue_id()
    ids = []
    for domain, rcpts in q.by_domain.items():
        row = await tx.row(
            "INSERT INTO queue(blob_id, sender, domain, recipients, created, next_attempt, ret,"
            " envid, queue_id, extra) VALUES (?, ?, ?, ?, mw_clock(), mw_clock(), ?, ?, ?, ?)"
            " RETURNING id",
            (q.blob.blob_id, q.sender, domain, _recipients(rcpts), q.ret, q.envid, qid,
             json.dumps(q.extra or {})),
        )  # fmt: skip
        assert row is not None
        ids.append(int(row[0]))
    return ids


class QueueRules(CoreBase):
    """The `Store` queue methods (see the module docstring for the state machine)."""

    async def queue_add(
        self,
        blob: StagedBlob,
        sender: str,
        by_domain: dict[str, list[QueueRecipient]],
        *,
        ret: str | None = None,
        envid: str | None = None,
        queue_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> list[int]:
        """Queue one message for its destination domains (one entry each, due now); the ids.

        Atomic: every entry and the blob's references, or nothing. Raises `StorageFull`."""
        q = QueueAddition(blob, sender, by_domain, ret, envid, queue_id, extra)
        if not by_domain:
            return []
        await self._stage(blob)

        async def op(tx: Tx) -> list[int]:
            ids = await insert_entries(tx, q)
            await tx.ref_blob(blob, len(ids))
            return ids

        return await self._unit(op)

    async def queue_list(self) -> list[QueueEntry]:
        """Every entry, by id."""

        async def op(tx: Tx) -> list[QueueEntry]:
            return [entry(r) for r in await tx.rows(f"SELECT {COLS} FROM queue ORDER BY id")]

        return await self._view(op)

    async def queue_get(self, entry_id: int) -> QueueEntry | None:
        """One entry as it is now, or None."""

        async def op(tx: Tx) -> QueueEntry | None:
            r = await tx.row(f"SELECT {COLS} FROM queue WHERE id = ?", (entry_id,))
            return None if r is None else entry(r)

        return await self._view(op)

    async def queue_due(self, limit: int) -> list[QueueEntry]:
        """Up to `limit` entries that are due and not leased (or whose lease ran out), oldest
        due first; nothing is claimed."""

        async def op(tx: Tx) -> list[QueueEntry]:
            rows = await tx.rows(
                f"SELECT {COLS} FROM queue WHERE {DUE} ORDER BY next_attempt, id LIMIT ?",
                (limit,),
            )
            return [entry(r) for r in rows]

        return await self._view(op)

    async def queue_claim(self, owner: str, lease: float, limit: int) -> list[QueueEntry]:
        """Lease up to `limit` due entries nobody holds to `owner` for `lease` seconds.

        Atomic. On PostgreSQL, rows another node is claiming are skipped, not waited for, and
        the due condition is evaluated on the locked row, so an entry is never claimed twice."""

        async def op(tx: Tx) -> list[QueueEntry]:
            # one statement: the rows are locked (and the due condition evaluated again on
            # them) by the subquery, rows other claimers hold are skipped, not waited for
            rows = await tx.rows(
                f"UPDATE queue SET lease_owner = ?, lease_until = mw_clock_after(?)"
                f" WHERE id IN (SELECT id FROM queue WHERE {DUE} ORDER BY next_attempt, id"
                f" LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING {COLS}",
                (owner, float(lease), limit),
            )
            return sorted(map(entry, rows), key=lambda e: (e.next_attempt, e.id))

        return await self._single(op)

    async def queue_claim_entry(self, entry_id: int, owner: str, lease: float) -> QueueEntry | None:
        """Lease one entry for one attempt if it is due and nobody holds it: its current
        state, or None (not due, held by another, or gone). Atomic."""

        async def op(tx: Tx) -> QueueEntry | None:
            # the due condition is evaluated on the row the UPDATE locks: one winner
            r = await tx.row(
                f"UPDATE queue SET lease_owner = ?, lease_until = mw_clock_after(?)"
                f" WHERE id = ? AND {DUE} RETURNING {COLS}",
                (owner, float(lease), entry_id),
            )
            return None if r is None else entry(r)

        return await self._single(op)

    async def queue_renew(self, entry_ids: Sequence[int], owner: str, lease: float) -> list[int]:
        """Extend to `lease` seconds from now the leases `owner` still holds (unexpired); the
        ids renewed. An entry missing from the answer is no longer the owner's to deliver."""
        if not entry_ids:
            return []

        async def op(tx: Tx) -> list[int]:
            ids, params = tx.values(sorted(set(entry_ids)))
            rows = await tx.rows(
                f"UPDATE queue SET lease_until = mw_clock_after(?) WHERE id IN {ids}"
                " AND lease_owner = ? AND lease_until >= mw_clock() RETURNING id",
                (float(lease), *params, owner),
            )
            renewed = {int(r[0]) for r in rows}
            return [i for i in entry_ids if i in renewed]

        return await self._single(op)

    async def queue_update(
        self,
        entry_id: int,
        owner: str,
        recipients: Sequence[QueueRecipient],
        *,
        next_attempt: datetime | None,
        last_error: str,
        warned: bool | None = None,
        extra: dict[str, str] | None = None,
        attempt: bool = True,
        trace: Sequence[TraceEvent] = (),
    ) -> None:
        """Record an attempt's outcome; only while `owner` holds an unexpired lease on the entry
        (compare-and-set), else LeaseLost (NotFound when the entry is gone). Releases the lease;
        `next_attempt=None` removes the entry; `extra=None` keeps the entry's extra data;
        `attempt=False` when no delivery attempt was made (the attempt count stays); `trace`
        is recorded with the outcome. Atomic."""

        async def op(tx: Tx) -> None:
            r = await tx.row(
                "SELECT blob_id, lease_owner, lease_until >= mw_clock() FROM queue WHERE id = ?"
                " FOR UPDATE",
                (entry_id,),
            )
            if r is None:
                raise NotFound(f"no such queue entry: {entry_id}")
            # compare-and-set: only the owner of a lease that has not run out may record an
            # attempt; an expired lease may already be another node's attempt
            if r[1] != owner or not r[2]:
                raise LeaseLost(f"queue entry {entry_id}: lease not held by {owner}")
            await insert_events(tx, trace)
            if next_attempt is None:
                await tx.run("DELETE FROM queue WHERE id = ?", (entry_id,))
                await tx.unref_blob(str(r[0]), 1)
                return
            await tx.run(
                "UPDATE queue SET recipients = ?, next_attempt = ?, attempts = attempts + ?,"
                " last_error = ?, lease_owner = NULL, lease_until = NULL,"
                " warned = COALESCE(?, warned), extra = COALESCE(?, extra) WHERE id = ?",
                (_recipients(recipients), next_attempt, int(attempt), last_error, warned,
                 None if extra is None else json.dumps(extra), entry_id),
            )  # fmt: skip

        await self._unit(op)

    async def queue_delete(self, entry_id: int) -> bool:
        """Remove an entry (the operator's command), leased or not; False if there was none.
        A worker holding its lease then gets LeaseLost or NotFound. Atomic."""

        async def op(tx: Tx) -> bool:
            r = await tx.row("DELETE FROM queue WHERE id = ? RETURNING blob_id", (entry_id,))
            if r is None:
                return False
            await tx.unref_blob(str(r[0]), 1)
            return True

        return await self._unit(op)

    async def queue_flush(self) -> int:
        """Make every entry due now; how many were waiting."""

        async def op(tx: Tx) -> int:
            return await tx.run(
                "UPDATE queue SET next_attempt = mw_clock() WHERE next_attempt > mw_clock()"
            )

        return await self._single(op)

    async def queue_retry(self, entry_id: int) -> bool:
        """Make one entry due now (an entry already due keeps its time); False if there is
        no such entry. A lease in force is left alone: its holder records the attempt."""
        n = await self._single(lambda tx: tx.run(
            "UPDATE queue SET next_attempt = CASE WHEN next_attempt > mw_clock()"
            " THEN mw_clock() ELSE next_attempt END WHERE id = ?",
            (entry_id,),
        ))
        return n > 0
