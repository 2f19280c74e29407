"""The message trace and the administrator's spam settings: small rows beside the mail.

Trace events are written inside the transaction that makes the decision durable wherever
there is one (an accepted message's `deliver_and_queue`, a queue attempt's `queue_update`), so
the trace never claims what did not happen and the hot path pays one multi-row insert. They
are found by queue id or Message-ID: the queue knows only the queue id, so a search by
Message-ID takes in every queue id that Message-ID was accepted with. The retention loop
deletes events past `[retention] trace` days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mailwright.store.api import TraceEvent
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx, as_time

MAX_DETAIL = 2000  # a remote reply can be long; the trace keeps its start
MAX_FIELD = 998  # RFC 5322 2.1.1: no header field (Message-ID) is longer than a line


def message_id_key(text: str) -> str:
    """A Message-ID as the trace keeps it: without angle brackets and surrounding space."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text[:MAX_FIELD]


async def insert_events(tx: Tx, events: Sequence[TraceEvent]) -> None:
    """Record events in the caller's transaction (their time is the database's clock)."""
    if not events:
        return
    # one multi-row INSERT per `_ROWS` events (a delivery records two or three): on a backend
    # that pipelines, each statement costs the node CPU whether or not it waits
    rows = [(e.queue_id[:64], message_id_key(e.message_id), e.stage[:32],
             e.recipient[:MAX_FIELD], e.detail[:MAX_DETAIL]) for e in events]
    for start in range(0, len(rows), _ROWS):
        chunk = rows[start : start + _ROWS]
        await tx.run_many(
            "INSERT INTO trace_events(at, queue_id, message_id, stage, recipient, detail)"
            " VALUES " + ", ".join(["(mw_clock(), ?, ?, ?, ?, ?)"] * len(chunk)),
            [[v for r in chunk for v in r]],
        )


_ROWS = 100  # events per INSERT: 500 parameters, far under SQLite's limit


class TraceLog(CoreBase):
    async def trace_add(self, events: Sequence[TraceEvent]) -> None:
        if not events:
            return

        async def op(tx: Tx) -> None:
            await insert_events(tx, events)

        await self._unit(op)

    async def trace_find(self, key: str, limit: int = 500) -> list[TraceEvent]:
        mid = message_id_key(key)
        qid = key.strip().upper()[:64]
        if not mid:
            return []

        async def op(tx: Tx) -> list[TraceEvent]:
            rows = await tx.rows(
                "SELECT at, queue_id, message_id, stage, recipient, detail FROM trace_events"
                " WHERE queue_id = ? OR message_id = ? OR queue_id IN (SELECT queue_id FROM"
                " trace_events WHERE message_id = ? AND queue_id <> '')"
                " ORDER BY at, id LIMIT ?",
                (qid, mid, mid, limit),
            )
            return [TraceEvent(stage=str(r[3]), detail=str(r[5]), queue_id=str(r[1]),
                               message_id=str(r[2]), recipient=str(r[4]), at=as_time(r[0]))
                    for r in rows]

        return await self._view(op)

    async def trace_purge(self, older_than: float) -> int:
        async def op(tx: Tx) -> int:
            return await tx.run("DELETE FROM trace_events WHERE at < mw_clock_after(?)",
                                (-float(older_than),))

        return await self._unit(op)


class SpamSettingsStore(CoreBase):
    async def spam_overrides(self) -> dict[tuple[str, str], str]:
        async def op(tx: Tx) -> dict[tuple[str, str], str]:
            rows = await tx.rows("SELECT scope, key, value FROM spam_overrides")
            return {(str(r[0]), str(r[1])): str(r[2]) for r in rows}

        return await self._view(op)

    async def spam_overrides_set(self, changes: Mapping[tuple[str, str], str | None]) -> None:
        if not changes:
            return

        async def op(tx: Tx) -> None:
            for (scope, key), value in sorted(changes.items()):  # one lock order on PostgreSQL
                if value is None:
                    await tx.run("DELETE FROM spam_overrides WHERE scope = ? AND key = ?",
                                 (scope, key))
                else:
                    await tx.run(
                        "INSERT INTO spam_overrides(scope, key, value) VALUES (?, ?, ?)"
                        " ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                        (scope, key, value))

        await self._unit(op)
