"""The embedded store: SQLite (WAL) for metadata, content-addressed files for message blobs."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from mailwright.filemodes import close_to_others
from mailwright.store.api import (
    NotFound,
    StagedBlob,
)
from mailwright.store.blobs import BlobFiles, FileBlobWriter, MetaParser
from mailwright.store.blobstore import BlobStorage, FileBlobs
from mailwright.store.changes import ChangeHub
from mailwright.store.core import CoreStore
from mailwright.store.core.listing import ListingCache
from mailwright.store.core.tx import Tx, drive
from mailwright.store.sqlite.db import Database, WriteContext
from mailwright.store.sqlite.schema import migrate
from mailwright.store.sqlite.tx import SQLiteTx

T = TypeVar("T")


class SQLiteStore(CoreStore):
    def __init__(
        self,
        data_dir: Path,
        *,
        fsync: bool = True,
        meta_parser: MetaParser | None = None,
        max_message_size: int | None = None,
        min_free: int = 0,
    ) -> None:
        self.data_dir = data_dir
        self.files = BlobFiles(data_dir, fsync=fsync, min_free=min_free)
        self.blobs = FileBlobs(self.files)
        self.db = Database(data_dir / "mailwright.db", fsync=fsync)
        self.db.sync_dirs = self.files.sync_dirs
        self.changes = ChangeHub()
        self.meta_parser = meta_parser
        self.max_message_size = max_message_size
        self._listing = ListingCache()
        self._opened = False

    # -- lifecycle

    async def open(self) -> None:
        self.open_sync()
        try:
            import asyncio

            self.changes._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

    def open_sync(self) -> None:
        if self._opened:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        close_to_others(self.data_dir)  # messages and password hashes are not for other users
        self.db.start(migrate)
        self._opened = True

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        if self._opened:
            self.db.stop()
            self._opened = False

    # -- the core's hooks (store.core.tx.Backend)

    def _tx(self, ctx: WriteContext, notify: dict[int, int] | None = None) -> SQLiteTx:
        return SQLiteTx(ctx.conn, ctx, self, {} if notify is None else notify)

    async def _unit(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        notify: dict[int, int] = {}
        result = await self.db.write(lambda ctx: drive(fn(self._tx(ctx, notify))))
        for mailbox_id, modseq in notify.items():
            self.changes.publish(mailbox_id, modseq)
        return result

    async def _view(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        return await self.db.read(lambda c: drive(fn(SQLiteTx(c))))

    async def _check_backend(self, tx: Tx) -> list[str]:
        problems = []
        ic = await tx.row("PRAGMA quick_check")
        if ic is None or ic[0] != "ok":
            problems.append(f"sqlite integrity: {ic[0] if ic else 'no answer'}")
        ids = [str(r[0]) for r in await tx.rows("SELECT id FROM blobs")]
        problems.extend(f"blob {blob_id}: file missing" for blob_id in self.blobs.missing(ids))
        return problems

    def _blob_storage(self) -> BlobStorage:
        return self.blobs

    async def _stage(self, blob: StagedBlob) -> None:
        return None  # the blob's file is linked into place by the unit itself

    # -- mailboxes

    def _new_uidvalidity(self, c: sqlite3.Connection) -> int:
        row = c.execute("SELECT value FROM settings WHERE key = 'last_uidvalidity'").fetchone()
        last = int(row[0]) if row else 0
        value = max(int(time.time()), last + 1) & 0xFFFFFFFF or 1
        c.execute(
            "INSERT INTO settings(key, value) VALUES ('last_uidvalidity', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(value),),
        )
        return value

    # -- blobs

    def blob_writer(self, *, exact: bool = False) -> FileBlobWriter:
        return self.blobs.writer(self.meta_parser, self.max_message_size, exact=exact)

    def _ref_blob(self, ctx: WriteContext, blob: StagedBlob, n: int) -> None:
        c = ctx.conn
        row = c.execute("SELECT refs FROM blobs WHERE id = ?", (blob.blob_id,)).fetchone()
        if row is None:
            self.blobs.keep(blob, ctx.dirty_dirs)
            c.execute(
                "INSERT INTO blobs(id, size, refs, meta, created) VALUES (?, ?, ?, ?, ?)",
                (blob.blob_id, blob.size, n, blob.meta, time.time()),
            )
            return
        if row[0] <= 0:
            # A released blob waiting for the collector: make sure its file is (still) there.
            self.blobs.keep(blob, ctx.dirty_dirs)
        c.execute("UPDATE blobs SET refs = refs + ? WHERE id = ?", (n, blob.blob_id))
        ctx.after_commit.append(functools.partial(self.blobs.settle, blob))

    def _unref_blob(self, ctx: WriteContext, blob_id: str, n: int) -> None:
        """Drop references; a blob nobody references is released, not deleted.

        Its row and file stay until the collector's grace period has passed (`created` then
        holds the release time): another IMAP session that still shows the expunged message
        can fetch it until it synchronises (RFC 2180 4.1), and identical content arriving
        meanwhile simply takes the blob back.
        """
        c = ctx.conn
        c.execute(
            "UPDATE blobs SET refs = refs - ?,"
            " created = CASE WHEN refs - ? <= 0 THEN ? ELSE created END WHERE id = ?",
            (n, n, time.time(), blob_id),
        )

    async def get_meta(self, blob_id: str) -> bytes:
        row = await self.db.read(
            lambda c: c.execute("SELECT meta FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        )
        if row is None:
            raise NotFound(f"no such blob: {blob_id}")
        return bytes(row[0])

