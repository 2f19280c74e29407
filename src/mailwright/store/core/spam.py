"""The spam filter's state: classifier counts per scope, the per-message training ledger,
sender reputation, and how far the trainer has read each mailbox.

The ledger keeps one label per (account, blob): learning a message again with the same label
changes nothing, and a new label first takes back what the old one taught, so a user's change
of mind never counts twice. Counts never go below zero, and token rows that fall to zero are
removed. Rows are written in sorted key order, so concurrent lessons on PostgreSQL lock them
in one order and never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwright.store.api import SpamLesson
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx


def _bump(col: str, table: str) -> str:
    # portable max(x, 0): SQLite spells GREATEST as a two-argument max()
    return f"{col} = CASE WHEN {table}.{col} + ? > 0 THEN {table}.{col} + ? ELSE 0 END"


async def _teach(tx: Tx, lesson: SpamLesson, label: str, delta: int) -> None:
    col = "spam" if label == "spam" else "ham"
    first = max(delta, 0)
    tokens = sorted(set(lesson.tokens))
    for scope in sorted(lesson.scopes):
        await tx.run(
            f"INSERT INTO spam_totals(scope, {col}) VALUES (?, ?)"
            f" ON CONFLICT (scope) DO UPDATE SET {_bump(col, 'spam_totals')}",
            (scope, first, delta, delta),
        )
        await tx.run_many(
            f"INSERT INTO spam_tokens(scope, token, {col}) VALUES (?, ?, ?)"
            f" ON CONFLICT (scope, token) DO UPDATE SET {_bump(col, 'spam_tokens')}",
            [(scope, tok, first, delta, delta) for tok in tokens],
        )
        if delta < 0 and tokens:
            toks, params = tx.values(tokens)
            await tx.run(
                f"DELETE FROM spam_tokens WHERE scope = ? AND token IN {toks}"
                " AND ham <= 0 AND spam <= 0",
                (scope, *params),
            )
    await tx.run_many(
        f"INSERT INTO spam_senders(account_id, kind, name, {col}) VALUES (?, ?, ?, ?)"
        f" ON CONFLICT (account_id, kind, name) DO UPDATE SET {_bump(col, 'spam_senders')}",
        [(lesson.account_id, k, n, first, delta, delta) for k, n in sorted(set(lesson.senders))],
    )


class SpamState(CoreBase):
    async def spam_counts(
        self, scopes: Sequence[int], tokens: Sequence[int]
    ) -> dict[tuple[int, int], tuple[int, int]]:
        """(scope, token) -> (ham, spam) for the tokens known in those scopes."""
        if not scopes or not tokens:
            return {}

        async def op(tx: Tx) -> dict[tuple[int, int], tuple[int, int]]:
            sc, p1 = tx.values(list(dict.fromkeys(scopes)))
            tk, p2 = tx.values(list(dict.fromkeys(tokens)))
            rows = await tx.rows(
                f"SELECT scope, token, ham, spam FROM spam_tokens"
                f" WHERE scope IN {sc} AND token IN {tk}",
                (*p1, *p2),
            )
            return {(int(r[0]), int(r[1])): (int(r[2]), int(r[3])) for r in rows}

        return await self._view(op)

    async def spam_totals(self, scopes: Sequence[int]) -> dict[int, tuple[int, int]]:
        """scope -> (ham, spam) messages taught; (0, 0) for a scope never taught."""
        out = {int(s): (0, 0) for s in scopes}
        if not scopes:
            return out

        async def op(tx: Tx) -> dict[int, tuple[int, int]]:
            sc, params = tx.values(list(out))
            for r in await tx.rows(
                f"SELECT scope, ham, spam FROM spam_totals WHERE scope IN {sc}", params
            ):
                out[int(r[0])] = (int(r[1]), int(r[2]))
            return out

        return await self._view(op)

    async def spam_learn(self, lesson: SpamLesson) -> bool:
        """Apply one lesson (see `SpamLesson`); False when it changes nothing. Atomic."""

        async def op(tx: Tx) -> bool:
            key = (lesson.account_id, lesson.blob_id)
            # a row to lock even for a message never taught: two lessons about one message
            # take turns
            await tx.run(
                "INSERT INTO spam_trained(account_id, blob_id, label, updated)"
                " VALUES (?, ?, '', mw_clock()) ON CONFLICT DO NOTHING",
                key,
            )
            r = await tx.row(
                "SELECT label FROM spam_trained WHERE account_id = ? AND blob_id = ? FOR UPDATE",
                key,
            )
            previous = (str(r[0]) if r else "") or None
            if previous == lesson.label or (lesson.label == "filed" and previous is not None):
                return False
            if previous in ("spam", "ham"):
                await _teach(tx, lesson, previous, -1)
            if lesson.label in ("spam", "ham"):
                await _teach(tx, lesson, lesson.label, 1)
            await tx.run(
                "UPDATE spam_trained SET label = ?, updated = mw_clock() WHERE account_id = ?"
                " AND blob_id = ?",
                (lesson.label, *key),
            )
            return True

        return await self._unit(op)

    async def spam_label(self, account_id: int, blob_id: str) -> str | None:
        """The label the ledger holds for a message of the account, or None."""

        async def op(tx: Tx) -> str | None:
            r = await tx.row(
                "SELECT label FROM spam_trained WHERE account_id = ? AND blob_id = ?",
                (account_id, blob_id),
            )
            return None if r is None or not r[0] else str(r[0])

        return await self._view(op)

    async def spam_senders(
        self, account_id: int, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(kind, name) -> (ham, spam) reputation of the account's known senders among `keys`."""
        if not keys:
            return {}

        async def op(tx: Tx) -> dict[tuple[str, str], tuple[int, int]]:
            names, params = tx.values(sorted({n for _, n in keys}))
            wanted = set(keys)
            rows = await tx.rows(
                f"SELECT kind, name, ham, spam FROM spam_senders WHERE account_id = ?"
                f" AND name IN {names}",
                (account_id, *params),
            )
            return {
                (str(r[0]), str(r[1])): (int(r[2]), int(r[3]))
                for r in rows
                if (str(r[0]), str(r[1])) in wanted
            }

        return await self._view(op)

    async def spam_positions(self, mailbox_ids: Sequence[int]) -> dict[int, int]:
        """mailbox id -> the MODSEQ up to which the trainer has read it (known ones only)."""
        if not mailbox_ids:
            return {}

        async def op(tx: Tx) -> dict[int, int]:
            ids, params = tx.values(list(dict.fromkeys(mailbox_ids)))
            rows = await tx.rows(
                f"SELECT mailbox_id, modseq FROM spam_positions WHERE mailbox_id IN {ids}",
                params,
            )
            return {int(r[0]): int(r[1]) for r in rows}

        return await self._view(op)

    async def spam_set_position(self, mailbox_id: int, modseq: int) -> None:
        """Remember how far the trainer has read a mailbox."""

        async def op(tx: Tx) -> None:
            await tx.run(
                "INSERT INTO spam_positions(mailbox_id, modseq) VALUES (?, ?)"
                " ON CONFLICT (mailbox_id) DO UPDATE SET modseq = excluded.modseq",
                (mailbox_id, modseq),
            )

        await self._unit(op)

    # -- envelope state shared by every process (times are Unix seconds)

    async def spam_greylist_seen(self, key: str, now: float) -> tuple[float, float]:
        """(first attempt, passed until) of triplet `key`; a new one is recorded with `now` as
        its first attempt (two processes seeing it at once agree on one row)."""

        async def op(tx: Tx) -> tuple[float, float]:
            r = await tx.row(
                "INSERT INTO spam_greylist(key, first) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET first = spam_greylist.first"
                " RETURNING first, passed_until",
                (key, now),
            )
            assert r is not None
            return float(r[0]), float(r[1])

        return await self._single(op)

    async def spam_greylist_set(self, key: str, first: float, passed_until: float) -> None:
        """Record a triplet's first attempt and how long it has passed."""

        async def op(tx: Tx) -> None:
            await tx.run(
                "INSERT INTO spam_greylist(key, first, passed_until) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET first = excluded.first,"
                " passed_until = excluded.passed_until",
                (key, first, passed_until),
            )

        await self._single(op)

    async def spam_rate_add(self, key: str, slot: int, since_slot: int, limit: int) -> bool:
        """Count one event for `key` in `slot` unless the slots from `since_slot` on already
        hold `limit`; True when counted. One transaction (two processes cannot both take the
        last place); the key's slots before `since_slot` are removed."""

        async def op(tx: Tx) -> bool:
            # the key's current row locked first, so concurrent adds for one key take turns
            await tx.run(
                "INSERT INTO spam_rates(key, slot, count) VALUES (?, ?, 0)"
                " ON CONFLICT (key, slot) DO UPDATE SET count = spam_rates.count",
                (key, slot),
            )
            await tx.run("DELETE FROM spam_rates WHERE key = ? AND slot < ?", (key, since_slot))
            r = await tx.row("SELECT COALESCE(SUM(count), 0) FROM spam_rates WHERE key = ?", (key,))
            if r is None or int(r[0]) >= limit:
                return False
            await tx.run(
                "UPDATE spam_rates SET count = count + 1 WHERE key = ? AND slot = ?", (key, slot)
            )
            return True

        return await self._unit(op)

    async def spam_envelope_purge(self, now: float, first_before: float, slot_before: int) -> int:
        """Remove triplets neither passed (until after `now`) nor first seen after
        `first_before`, and rate slots before `slot_before`; the number of rows removed."""

        async def op(tx: Tx) -> int:
            n = await tx.run(
                "DELETE FROM spam_greylist WHERE passed_until < ? AND first < ?",
                (now, first_before),
            )
            return n + await tx.run("DELETE FROM spam_rates WHERE slot < ?", (slot_before,))

        return await self._unit(op)
