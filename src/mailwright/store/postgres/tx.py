"""The core's `Tx` on PostgreSQL: the portable SQL of `store.core` with psycopg placeholders.

Within a unit of work it runs on the unit's connection (possibly in pipeline mode: a row
count is read only after a sync); as a view, on a pooled autocommit connection. `now` is the
database's clock, read once per transaction, so the nodes' clocks need not agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection, errors
from psycopg.pq import TransactionStatus

from mailwright.store.api import AlreadyExists, MessageRecord, NotFound, StagedBlob
from mailwright.store.core.tx import Row

if TYPE_CHECKING:
    from mailwright.store.postgres.store import PostgresStore, _Tx


@functools.lru_cache(maxsize=512)
def _sql(sql: str) -> str:
    sql = sql.replace("mw_clock_after(?)", "(clock_timestamp() + make_interval(secs => ?))")
    return sql.replace("mw_clock()", "clock_timestamp()").replace("%", "%%").replace("?", "%s")


class PostgresTx:
    """One unit of work (`tx` and `store` set) or one read on `conn` (neither)."""

    def __init__(
        self, conn: AsyncConnection[Any], tx: _Tx | None = None, store: PostgresStore | None = None
    ) -> None:
        self.conn = conn
        self.tx = tx
        self.store = store

    def _write(self) -> tuple[_Tx, PostgresStore]:
        assert self.tx is not None and self.store is not None, "a view changes nothing"
        return self.tx, self.store

    async def _execute(self, sql: str, params: Sequence[Any], fetch: int) -> Any:
        """Run a statement and take its result (`fetch`: 0 none, 1 a row, 2 all rows);
        constraint errors become store errors. In pipeline mode a statement's error arrives
        with its result, so the fetch is inside the translation too."""
        try:
            cur = await self.conn.execute(_sql(sql), params)  # type: ignore[arg-type]
            if fetch == 2:
                return await cur.fetchall()
            if fetch == 1:
                return await cur.fetchone()
            if self.tx is not None and self.tx.pipe is not None:
                await self.tx.pipe.sync()  # a row count is known only after a sync
            return int(cur.rowcount)
        except errors.UniqueViolation as e:
            raise AlreadyExists(str(e).splitlines()[0]) from None
        except errors.ForeignKeyViolation as e:
            raise NotFound(str(e).splitlines()[0]) from None

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = await self._execute(sql, params, 2)
        return rows

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = await self._execute(sql, params, 1)
        return row

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        count: int = await self._execute(sql, params, 0)
        return count

    async def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        if not params:
            return
        try:
            async with self.conn.cursor() as cur:
                await cur.executemany(_sql(sql), params)  # type: ignore[arg-type]
        except errors.UniqueViolation as e:
            raise AlreadyExists(str(e).splitlines()[0]) from None
        except errors.ForeignKeyViolation as e:
            raise NotFound(str(e).splitlines()[0]) from None

    def values(self, items: Sequence[Any]) -> tuple[str, list[Any]]:
        # one array parameter however many values; typed, as psycopg sends str untyped
        kind = "text" if any(isinstance(i, str) for i in items) else "bigint"
        return f"(SELECT unnest(?::{kind}[]))", [list(items)]

    def text_list(self, items: Sequence[str]) -> Any:
        return list(items)

    def changed(self, mailbox_id: int, modseq: int) -> None:
        self._write()[0].changed(mailbox_id, modseq)

    async def new_uidvalidity(self) -> int:
        (value,) = await self._write()[1]._new_uidvalidities(self.conn)
        return value

    async def charge(self, account_id: int, octets: int, messages: int) -> None:
        tx, store = self._write()
        await store._charge(tx, account_id, octets, messages)

    async def ref_blob(self, blob: StagedBlob, n: int) -> None:
        tx, store = self._write()
        if tx.refs is None or tx.pipe is None or store.blob_kind != "database":
            # outside a batch, or content in files (a released blob's file must be checked
            # under the blob's guard: the row's count is needed)
            await store._ref_blob(tx, blob, n)
            return
        tx.after_commit.append(functools.partial(store._blob_storage().settle, blob))
        data = store._inline_bytes(blob)
        if data is not None:
            # A small blob was not uploaded before the unit (`PostgresStore._stage`): its
            # bytes travel with its reference, one statement whose answer nobody waits for,
            # instead of a look-up and an upload (two round trips) before the unit. The
            # row, new or released, is locked here, blobs last (the house lock order).
            await self.conn.execute(
                "INSERT INTO blobs(id, size, refs, meta, data) VALUES (%s, %s, %s, %s, %b)"
                " ON CONFLICT (id) DO UPDATE SET refs = blobs.refs + excluded.refs",
                (blob.blob_id, blob.size, n, blob.meta, data),
            )
            return
        # In a group-commit batch, content in the database, the reference costs no round
        # trip of its own: the row count is not waited for; a blob row that is missing (the
        # collector removed an upload never referenced) fails the statement instead (1 / 0),
        # the unit fails at its end, and the writer uploads the blob again and runs the unit
        # once more.
        await self.conn.execute(
            "WITH r AS (UPDATE blobs SET refs = refs + %s WHERE id = %s RETURNING 1)"
            " SELECT 1 / count(*) FROM r",
            (n, blob.blob_id),
        )
        tx.refs.append(blob)

    async def unref_blob(self, blob_id: str, n: int) -> None:
        tx, store = self._write()
        await store._unref_blobs(tx, {blob_id: n})

    async def insert_messages(self, records: Sequence[MessageRecord]) -> None:
        self._write()
        if not records:
            return
        # One statement for the whole batch, its columns as arrays: a fan-out to 50 accounts
        # is one INSERT, not 50. Flags travel space-separated (an IMAP flag is an atom, RFC
        # 9051 9: no spaces), since a text[] per row cannot be an array of unequal rows.
        await self.conn.execute(
            f"INSERT INTO messages({_MESSAGE_COLUMNS})"
            " SELECT m, u, s, coalesce(string_to_array(nullif(f, ''), ' '), '{}'),"
            " to_timestamp(t), z, b FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[],"
            " %s::text[], %s::float8[], %s::bigint[], %s::text[]) AS d(m, u, s, f, t, z, b)",
            ([r.mailbox_id for r in records], [r.uid for r in records],
             [r.modseq for r in records], [" ".join(sorted(r.flags)) for r in records],
             [r.timestamp for r in records], [r.size for r in records],
             [r.blob_id for r in records]),
        )

    async def guard_blob(self, blob_id: str) -> None:
        tx, store = self._write()
        await store._guard_blob(tx, blob_id)

    async def drop_blob(self, blob_id: str) -> None:
        store = self._write()[1]
        await asyncio.to_thread(store._blob_storage().remove, blob_id)

    async def rows_batch(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        conn = self.conn
        if self.tx is not None and self.tx.pipe is None:
            # a unit outside pipeline mode: one query after the other
            return [await self.rows(sql, params) for sql, params in queries]
        # pipeline mode: every query goes out before the first result is awaited. A view
        # (no transaction open) gets one snapshot: BEGIN and COMMIT travel in the pipeline
        own = self.tx is None and conn.info.transaction_status == TransactionStatus.IDLE
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.tx is None:
                    await stack.enter_async_context(conn.pipeline())
                if own:
                    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                curs = [await conn.execute(_sql(sql), params)  # type: ignore[arg-type]
                        for sql, params in queries]
                if own:
                    await conn.execute("COMMIT")
            return [await cur.fetchall() for cur in curs]
        except errors.UniqueViolation as e:
            raise AlreadyExists(str(e).splitlines()[0]) from None
        except errors.ForeignKeyViolation as e:
            raise NotFound(str(e).splitlines()[0]) from None

    # -- messages (store.core.messages, store.core.listing)

    # the internal date travels as a UNIX timestamp, as MessageRecord keeps it
    message_columns = (
        "mailbox_id, uid, modseq, flags, extract(epoch FROM internaldate)::float8, size, blob_id"
    )

    def records(self, rows: Sequence[Row]) -> list[MessageRecord]:
        interned = _FLAGS.get
        return [MessageRecord(m, u, ms, interned(f), ts, sz, b) for m, u, ms, f, ts, sz, b in rows]

    def has_flag(self, column: str, flag: str) -> tuple[str, list[Any]]:
        return f"({column} @> ARRAY[?]::text[])", [flag]

    async def set_flags(
        self, mailbox_id: int, modseq: int, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        self._write()
        if not changes:
            return
        # one statement for the batch; flags travel space-separated (an IMAP flag is an atom,
        # RFC 9051 9: no spaces), since a text[] per row cannot be an array of unequal rows
        await self.conn.execute(
            "UPDATE messages m SET flags = coalesce(string_to_array(nullif(d.f, ''), ' '), '{}'),"
            " modseq = %s FROM unnest(%s::bigint[], %s::text[]) AS d(u, f)"
            " WHERE m.mailbox_id = %s AND m.uid = d.u",
            (modseq, [u for u, _ in changes], [" ".join(sorted(f)) for _, f in changes],
             mailbox_id),
        )

    async def record_expunged(self, mailbox_id: int, modseq: int, uids: Sequence[int]) -> None:
        self._write()
        await self.conn.execute(
            "INSERT INTO expunged(mailbox_id, uid, modseq) SELECT %s, u, %s"
            " FROM unnest(%s::bigint[]) u"
            " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
            (mailbox_id, modseq, list(uids)),
        )

    async def change_refs(self, deltas: dict[str, int]) -> None:
        self._write()
        ids = sorted(b for b, n in deltas.items() if n)
        if not ids:
            return
        # blob rows are locked last, in id order (the house lock order); a blob left without
        # references is released: `created` becomes the release time and the collector
        # removes it after its grace period, so that a session on another node that still
        # shows the expunged message can fetch it until it synchronises (RFC 2180 4.1)
        await self.conn.execute(
            "SELECT 1 FROM blobs WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,))
        await self.conn.execute(
            "UPDATE blobs b SET refs = b.refs + d.n,"
            " created = CASE WHEN b.refs + d.n <= 0 THEN clock_timestamp() ELSE b.created END"
            " FROM unnest(%s::text[], %s::int[]) d(id, n) WHERE b.id = d.id",
            (ids, [deltas[i] for i in ids]),
        )


_MESSAGE_COLUMNS = "mailbox_id, uid, modseq, flags, internaldate, size, blob_id"


class _FlagCache:
    """Interns flag sets: a 100k-message mailbox has few distinct flag combinations."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], frozenset[str]] = {(): frozenset()}

    def get(self, flags: Sequence[str]) -> frozenset[str]:
        key = tuple(flags)
        fs = self._cache.get(key)
        if fs is None:
            fs = frozenset(key)
            if len(self._cache) < 10000:
                self._cache[key] = fs
        return fs


_FLAGS = _FlagCache()
