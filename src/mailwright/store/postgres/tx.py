"""The core's `Tx` on PostgreSQL: the portable SQL of `store.core` with psycopg placeholders.

Within a unit of work it runs on the unit's connection (possibly in pipeline mode: a row
count is read only after a sync); as a view, on a pooled autocommit connection. `now` is the
database's clock, read once per transaction, so the nodes' clocks need not agree.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, AsyncPipeline, errors

from mailwright.store.api import AlreadyExists, NotFound, StagedBlob
from mailwright.store.core.tx import Row


@functools.lru_cache(maxsize=512)
def _sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresTx:
    def __init__(
        self,
        conn: AsyncConnection[Any],
        pipe: AsyncPipeline | None = None,
        ref: Callable[[StagedBlob, int], Awaitable[None]] | None = None,
        unref: Callable[[str, int], Awaitable[None]] | None = None,
    ) -> None:
        self.conn = conn
        self.pipe = pipe
        self._ref = ref
        self._unref = unref
        self._now: datetime | None = None

    async def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        try:
            return await self.conn.execute(_sql(sql), params)  # type: ignore[arg-type]
        except errors.UniqueViolation as e:
            raise AlreadyExists(str(e).splitlines()[0]) from None
        except errors.ForeignKeyViolation as e:
            raise NotFound(str(e).splitlines()[0]) from None

    async def now(self) -> datetime:
        if self._now is None:
            cur = await self.conn.execute("SELECT clock_timestamp()")
            row = await cur.fetchone()
            assert row is not None
            self._now = row[0]
        return self._now

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = await self._execute(sql, params)
        rows: list[Row] = await cur.fetchall()
        return rows

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        cur = await self._execute(sql, params)
        row: Row | None = await cur.fetchone()
        return row

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self._execute(sql, params)
        if self.pipe is not None:
            await self.pipe.sync()
        return int(cur.rowcount)

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

    async def ref_blob(self, blob: StagedBlob, n: int) -> None:
        assert self._ref is not None, "a view changes no blob"
        await self._ref(blob, n)

    async def unref_blob(self, blob_id: str, n: int) -> None:
        assert self._unref is not None, "a view changes no blob"
        await self._unref(blob_id, n)
