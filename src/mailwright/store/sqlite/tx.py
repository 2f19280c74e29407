"""The core's `Tx` on SQLite: the portable SQL of `store.core` as SQLite spells it.

Runs on the writer thread (a unit of work, inside the operation's SAVEPOINT of a group-commit
batch) or on a reader thread (a view); no method suspends, so `drive` runs a rule to its end.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from mailwright.store.api import AlreadyExists, NotFound, StagedBlob
from mailwright.store.core.tx import Row
from mailwright.store.sqlite.db import WriteContext


@functools.lru_cache(maxsize=512)
def _sql(sql: str) -> str:
    # one writer at a time: row locks have nothing to add
    return sql.replace(" FOR UPDATE SKIP LOCKED", "").replace(" FOR UPDATE", "")


def _params(params: Sequence[Any]) -> Sequence[Any]:
    # times are kept as UNIX seconds
    if any(isinstance(p, datetime) for p in params):
        return [p.timestamp() if isinstance(p, datetime) else p for p in params]
    return params


def _store_error(e: sqlite3.IntegrityError) -> Exception:
    text = str(e)
    if text.startswith("UNIQUE") or "PRIMARY KEY" in text:
        return AlreadyExists(text)
    if text.startswith("FOREIGN KEY"):
        return NotFound(text)
    return e


class SQLiteTx:
    """One operation's transaction (`ctx` set) or one read (`ctx` None)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        ctx: WriteContext | None = None,
        ref: Callable[[WriteContext, StagedBlob, int], None] | None = None,
        unref: Callable[[WriteContext, str, int], None] | None = None,
    ) -> None:
        self.conn = conn
        self.ctx = ctx
        self._ref = ref
        self._unref = unref
        self._now: datetime | None = None

    def _execute(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self.conn.execute(_sql(sql), _params(params))
        except sqlite3.IntegrityError as e:
            raise _store_error(e) from None

    async def now(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._execute(sql, params).fetchall()

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._execute(sql, params).fetchone()
        return row

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._execute(sql, params).rowcount)

    async def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(_sql(sql), [_params(p) for p in params])
        except sqlite3.IntegrityError as e:
            raise _store_error(e) from None

    def values(self, items: Sequence[Any]) -> tuple[str, list[Any]]:
        # one parameter however many values: a JSON array
        return "(SELECT value FROM json_each(?))", [json.dumps(list(items))]

    async def ref_blob(self, blob: StagedBlob, n: int) -> None:
        assert self.ctx is not None and self._ref is not None, "a view changes no blob"
        self._ref(self.ctx, blob, n)

    async def unref_blob(self, blob_id: str, n: int) -> None:
        assert self.ctx is not None and self._unref is not None, "a view changes no blob"
        self._unref(self.ctx, blob_id, n)
