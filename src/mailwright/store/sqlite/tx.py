"""The core's `Tx` on SQLite: the portable SQL of `store.core` as SQLite spells it.

Runs on the writer thread (a unit of work, inside the operation's SAVEPOINT of a group-commit
batch) or on a reader thread (a view); no method suspends, so `drive` runs a rule to its end.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailwright.store.api import AlreadyExists, MessageRecord, NotFound, StagedBlob
from mailwright.store.core.tx import Row
from mailwright.store.sqlite.db import WriteContext

if TYPE_CHECKING:
    from mailwright.store.sqlite.store import SQLiteStore


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
    """One operation's transaction (`ctx` and `store` set) or one read (neither)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        ctx: WriteContext | None = None,
        store: SQLiteStore | None = None,
        notify: dict[int, int] | None = None,
    ) -> None:
        self.conn = conn
        self.ctx = ctx
        self.store = store
        self.notify = notify

    def _write(self) -> tuple[WriteContext, SQLiteStore]:
        assert self.ctx is not None and self.store is not None, "a view changes nothing"
        return self.ctx, self.store

    def _execute(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self.conn.execute(_sql(sql), _params(params))
        except sqlite3.IntegrityError as e:
            raise _store_error(e) from None

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

    def text_list(self, items: Sequence[str]) -> Any:
        return json.dumps(list(items))

    def changed(self, mailbox_id: int, modseq: int) -> None:
        assert self.notify is not None, "a view changes nothing"
        self.notify[mailbox_id] = max(modseq, self.notify.get(mailbox_id, 0))

    async def new_uidvalidity(self) -> int:
        return self._write()[1]._new_uidvalidity(self.conn)

    async def charge(self, account_id: int, octets: int, messages: int) -> None:
        self._write()[1]._charge(self.conn, account_id, octets, messages)

    async def move_all(self, src_mailbox_id: int, dst_mailbox_id: int) -> None:
        ctx, store = self._write()
        uids = [int(r[0]) for r in self.conn.execute(
            "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (src_mailbox_id,))]
        touched: list[tuple[int, int]] = []
        store._copy(ctx, src_mailbox_id, uids, dst_mailbox_id, move=True, touched=touched)
        for mailbox_id, modseq in touched:
            self.changed(mailbox_id, modseq)

    async def ref_blob(self, blob: StagedBlob, n: int) -> None:
        ctx, store = self._write()
        store._ref_blob(ctx, blob, n)

    async def unref_blob(self, blob_id: str, n: int) -> None:
        ctx, store = self._write()
        store._unref_blob(ctx, blob_id, n)

    async def insert_messages(self, records: Sequence[MessageRecord]) -> None:
        from mailwright.store.sqlite.store import _MSG_COLS, _flags_text

        self._write()
        self.conn.executemany(
            f"INSERT INTO messages({_MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r.mailbox_id, r.uid, r.modseq, _flags_text(r.flags), r.timestamp, r.size,
              r.blob_id) for r in records],
        )

    async def guard_blob(self, blob_id: str) -> None:
        self._write()  # the single writer: no other unit runs meanwhile

    async def drop_blob(self, blob_id: str) -> None:
        self._write()[1].blobs.remove(blob_id)

    async def rows_batch(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        return [await self.rows(sql, params) for sql, params in queries]
