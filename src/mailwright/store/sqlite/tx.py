"""The core's `Tx` on SQLite: the portable SQL of `store.core` as SQLite spells it.

Runs on the writer thread (a unit of work, inside the operation's SAVEPOINT of a group-commit
batch) or on a reader thread (a view); no method suspends, so `drive` runs a rule to its end.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailwright.store.api import (
    AlreadyExists,
    MessageRecord,
    NotFound,
    QuotaExceeded,
    StagedBlob,
)
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
        self._write()
        row = self.conn.execute(
            "SELECT quota_bytes, used_bytes, quota_messages, used_messages FROM accounts"
            " WHERE id = ?", (account_id,)
        ).fetchone()
        if row is None:
            raise NotFound("no such account")
        quota, used, quota_messages, used_messages = row
        if octets > 0 and quota and used + octets > quota:
            raise QuotaExceeded(f"quota of account {account_id} exceeded")
        if messages > 0 and quota_messages and used_messages + messages > quota_messages:
            # RFC 9208 5.2: the MESSAGE resource
            raise QuotaExceeded(f"message quota of account {account_id} exceeded")
        self.conn.execute(
            "UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ?"
            " WHERE id = ?",
            (octets, messages, account_id),
        )

    async def ref_blob(self, blob: StagedBlob, n: int) -> None:
        ctx, store = self._write()
        store._ref_blob(ctx, blob, n)

    async def unref_blob(self, blob_id: str, n: int) -> None:
        ctx, store = self._write()
        store._unref_blob(ctx, blob_id, n)

    async def insert_messages(self, records: Sequence[MessageRecord]) -> None:
        self._write()
        self.conn.executemany(
            f"INSERT INTO messages({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r.mailbox_id, r.uid, r.modseq, flags_text(r.flags), r.timestamp, r.size,
              r.blob_id) for r in records],
        )

    async def guard_blob(self, blob_id: str) -> None:
        self._write()  # the single writer: no other unit runs meanwhile

    async def drop_blob(self, blob_id: str) -> None:
        self._write()[1].blobs.remove(blob_id)

    async def rows_batch(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        # a read runs in one transaction already (Database.read), a unit in its savepoint:
        # the queries see one snapshot
        return [self._execute(sql, params).fetchall() for sql, params in queries]

    # -- messages (store.core.messages, store.core.listing)

    message_columns = "mailbox_id, uid, modseq, flags, internaldate, size, blob_id"

    def records(self, rows: Sequence[Row]) -> list[MessageRecord]:
        parse = _FLAGS.parse
        # tuple unpacking in one comprehension: the cheapest way CPython builds 100k records
        return [MessageRecord(m, u, ms, parse(f), ts, sz, b) for m, u, ms, f, ts, sz, b in rows]

    def has_flag(self, column: str, flag: str) -> tuple[str, list[Any]]:
        # flags are kept as one space-separated text (an IMAP flag is an atom: no spaces)
        return f"(instr(' ' || {column} || ' ', ?) > 0)", [f" {flag} "]

    async def set_flags(
        self, mailbox_id: int, modseq: int, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        self._write()
        self.conn.executemany(
            "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
            [(flags_text(f), modseq, mailbox_id, uid) for uid, f in changes],
        )

    async def record_expunged(self, mailbox_id: int, modseq: int, uids: Sequence[int]) -> None:
        self._write()
        self.conn.executemany(
            "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            [(mailbox_id, uid, modseq) for uid in uids],
        )

    async def change_refs(self, deltas: dict[str, int]) -> None:
        self._write()
        # a blob left without references is released: `created` becomes the release time
        # and the collector removes it after its grace period (RFC 2180 4.1)
        now = time.time()
        self.conn.executemany(
            "UPDATE blobs SET refs = refs + ?,"
            " created = CASE WHEN refs + ? <= 0 THEN ? ELSE created END WHERE id = ?",
            [(n, n, now, blob_id) for blob_id, n in sorted(deltas.items()) if n],
        )


_MESSAGE_COLUMNS = "mailbox_id, uid, modseq, flags, internaldate, size, blob_id"


class _FlagCache:
    """Interns flag sets: a 100k-message mailbox has few distinct flag combinations."""

    def __init__(self) -> None:
        self._cache: dict[str, frozenset[str]] = {"": frozenset()}

    def parse(self, text: str) -> frozenset[str]:
        fs = self._cache.get(text)
        if fs is None:
            fs = frozenset(text.split())
            if len(self._cache) < 10000:
                self._cache[text] = fs
        return fs


_FLAGS = _FlagCache()


def flags_text(flags: frozenset[str] | set[str]) -> str:
    """Flags as the messages table keeps them: sorted, space-separated."""
    return " ".join(sorted(flags))
