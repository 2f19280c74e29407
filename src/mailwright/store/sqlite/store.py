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
    AppPassword,
    NotFound,
    StagedBlob,
    WebSession,
)
from mailwright.store.blobs import BlobFiles, FileBlobWriter, MetaParser, StagingFiles
from mailwright.store.changes import ChangeHub
from mailwright.store.core import CoreStore
from mailwright.store.core.listing import ListingCache
from mailwright.store.core.tx import Tx, drive
from mailwright.store.sqlite.db import Database, WriteContext
from mailwright.store.sqlite.schema import migrate
from mailwright.store.sqlite.tx import SQLiteTx

T = TypeVar("T")



def _known_blobs(c: sqlite3.Connection, ids: list[str]) -> set[str]:
    rows = c.execute(f"SELECT id FROM blobs WHERE id IN ({','.join('?' * len(ids))})", ids)
    return {str(r[0]) for r in rows}



class SQLiteStore(CoreStore, StagingFiles):
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
        for (blob_id,) in await tx.rows("SELECT id FROM blobs"):
            if not self.files.path_for(blob_id).exists():
                problems.append(f"blob {blob_id}: file missing")
        return problems

    def _blob_files(self) -> BlobFiles:
        return self.files

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
        return FileBlobWriter(self.files, self.meta_parser, self.max_message_size, exact=exact)

    def _ref_blob(self, ctx: WriteContext, blob: StagedBlob, n: int) -> None:
        c = ctx.conn
        row = c.execute("SELECT refs FROM blobs WHERE id = ?", (blob.blob_id,)).fetchone()
        if row is None:
            self.files.link(blob, ctx.dirty_dirs)
            c.execute(
                "INSERT INTO blobs(id, size, refs, meta, created) VALUES (?, ?, ?, ?, ?)",
                (blob.blob_id, blob.size, n, blob.meta, time.time()),
            )
            return
        if row[0] <= 0:
            # A released blob waiting for the collector: make sure its file is (still) there.
            self.files.link(blob, ctx.dirty_dirs)
        c.execute("UPDATE blobs SET refs = refs + ? WHERE id = ?", (n, blob.blob_id))
        if blob._path.exists() and blob._path != self.files.path_for(blob.blob_id):
            path = blob._path
            ctx.after_commit.append(lambda: path.unlink(missing_ok=True))

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

    async def read_blob(self, blob_id: str) -> bytes:
        import asyncio

        try:
            data = self.files.read_if_small(blob_id)
            if data is None:
                data = await asyncio.to_thread(self.files.read, blob_id)
            return data
        except (FileNotFoundError, ValueError):
            raise NotFound(f"no such blob: {blob_id}") from None

    async def get_meta(self, blob_id: str) -> bytes:
        row = await self.db.read(
            lambda c: c.execute("SELECT meta FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        )
        if row is None:
            raise NotFound(f"no such blob: {blob_id}")
        return bytes(row[0])

    # -- maintenance

    _GC_BATCH = 50  # rows or files per write operation: a delivery waits for one batch at most

    async def collect_garbage(
        self, min_age: float = 3600.0, *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Remove released blobs, files no row knows and stale staging files; the count.

        Never holds the writer for long: candidates are found by reads and a directory walk
        outside any write transaction (the walk runs in a thread; `progress(files walked)` is
        called from it every 1000 files), and each removal batch is one short write operation
        that checks its candidates again under the writer, because a delivery may have taken a
        blob back (or linked a file of the same content) since the look.
        """
        import asyncio

        removed = 0
        cutoff = time.time() - min_age
        # 1. released blobs past the grace period: row and file go together, inside the writer,
        #    so that no delivery can link the file between our unlink and our COMMIT.
        released = [str(r[0]) for r in await self.db.read(lambda c: c.execute(
            "SELECT id FROM blobs WHERE refs <= 0 AND created <= ?", (cutoff,)).fetchall())]
        for start in range(0, len(released), self._GC_BATCH):
            batch = released[start : start + self._GC_BATCH]

            def drop_released(ctx: WriteContext, batch: list[str] = batch) -> int:
                n = 0
                for blob_id in batch:
                    cur = ctx.conn.execute(
                        "DELETE FROM blobs WHERE id = ? AND refs <= 0 AND created <= ?",
                        (blob_id, cutoff))
                    if cur.rowcount == 1:
                        self.files.remove(blob_id)
                        n += 1
                return n

            removed += await self.db.write(drop_released)
        # 2. files no row knows (a crash between link and COMMIT): walk outside the writer
        def walk() -> list[tuple[str, Path]]:
            found: list[tuple[str, Path]] = []
            for n, (blob_id, path) in enumerate(self.files.all_ids(), 1):
                if progress is not None and n % 1000 == 0:
                    progress(n)
                try:
                    if path.stat().st_mtime <= cutoff:
                        found.append((blob_id, path))
                except FileNotFoundError:
                    continue
            return found

        old_files = await asyncio.to_thread(walk)
        for start in range(0, len(old_files), 500):
            chunk = old_files[start : start + 500]
            ids = [b for b, _ in chunk]
            known = await self.db.read(functools.partial(_known_blobs, ids=ids))
            orphans = [(b, p) for b, p in chunk if b not in known]
            for k in range(0, len(orphans), self._GC_BATCH):
                batch2 = orphans[k : k + self._GC_BATCH]

                def drop_orphans(ctx: WriteContext, batch: list[tuple[str, Path]] = batch2) -> int:
                    n = 0
                    for blob_id, path in batch:
                        if ctx.conn.execute(
                            "SELECT 1 FROM blobs WHERE id = ?", (blob_id,)
                        ).fetchone() is not None:
                            continue  # a delivery took the file over since the walk
                        path.unlink(missing_ok=True)
                        n += 1
                    return n

                removed += await self.db.write(drop_orphans)
        # 3. staging files nobody finished (no row can name them)
        def stale() -> int:
            n = 0
            for p in self.files.stale_tmp(min_age):
                p.unlink(missing_ok=True)
                n += 1
            return n

        removed += await asyncio.to_thread(stale)
        return removed


    async def web_session_put(self, session: WebSession) -> None:
        def op(ctx: WriteContext) -> None:
            try:
                ctx.conn.execute(
                    "INSERT OR REPLACE INTO web_sessions(id, account_id, csrf, stage, created,"
                    " expires) VALUES (?, ?, ?, ?, ?, ?)",
                    (session.id, session.account_id, session.csrf, session.stage,
                     session.created, session.expires),
                )
            except sqlite3.IntegrityError:
                raise NotFound("no such account") from None

        await self.db.write(op)

    async def web_session_get(self, session_id: str) -> WebSession | None:
        row = await self.db.read(lambda c: c.execute(
            "SELECT id, account_id, csrf, stage, created, expires FROM web_sessions WHERE id = ?",
            (session_id,)).fetchone())
        if row is None:
            return None
        return WebSession(str(row[0]), int(row[1]), str(row[2]), str(row[3]), float(row[4]),
                          float(row[5]))

    async def web_session_delete(self, session_id: str) -> None:
        def op(ctx: WriteContext) -> None:
            ctx.conn.execute("DELETE FROM web_sessions WHERE id = ?", (session_id,))

        await self.db.write(op)

    async def web_sessions_delete(self, account_id: int, keep: str | None = None) -> int:
        def op(ctx: WriteContext) -> int:
            cur = ctx.conn.execute(
                "DELETE FROM web_sessions WHERE account_id = ? AND id IS NOT ?",
                (account_id, keep),
            )
            return int(cur.rowcount)

        return await self.db.write(op)

    async def web_sessions_purge(self, now: float) -> int:
        def op(ctx: WriteContext) -> int:
            return int(ctx.conn.execute("DELETE FROM web_sessions WHERE expires <= ?",
                                        (now,)).rowcount)

        return await self.db.write(op)

    async def account_setting(self, account_id: int, key: str) -> str | None:
        row = await self.db.read(lambda c: c.execute(
            "SELECT value FROM account_settings WHERE account_id = ? AND key = ?",
            (account_id, key)).fetchone())
        return None if row is None else str(row[0])

    async def set_account_setting(self, account_id: int, key: str, value: str | None) -> None:
        def op(ctx: WriteContext) -> None:
            c = ctx.conn
            if c.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
                raise NotFound("no such account")
            if value is None:
                c.execute("DELETE FROM account_settings WHERE account_id = ? AND key = ?",
                          (account_id, key))
            else:
                c.execute("INSERT OR REPLACE INTO account_settings(account_id, key, value)"
                          " VALUES (?, ?, ?)", (account_id, key, value))

        await self.db.write(op)

    async def account_settings(self, key: str) -> dict[int, str]:
        rows = await self.db.read(lambda c: c.execute(
            "SELECT account_id, value FROM account_settings WHERE key = ?", (key,)).fetchall())
        return {int(r[0]): str(r[1]) for r in rows}

    async def app_password_add(self, account_id: int, label: str, digest: str) -> AppPassword:
        created = time.time()

        def op(ctx: WriteContext) -> int:
            c = ctx.conn
            if c.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
                raise NotFound("no such account")
            cur = c.execute("INSERT INTO app_passwords(account_id, label, digest, created)"
                            " VALUES (?, ?, ?, ?)", (account_id, label, digest, created))
            return int(cur.lastrowid or 0)

        new_id = await self.db.write(op)
        return AppPassword(new_id, account_id, label, digest, created)

    async def app_passwords(self, account_id: int) -> list[AppPassword]:
        rows = await self.db.read(lambda c: c.execute(
            "SELECT id, account_id, label, digest, created FROM app_passwords"
            " WHERE account_id = ? ORDER BY id", (account_id,)).fetchall())
        return [AppPassword(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]))
                for r in rows]

    async def app_password_delete(self, account_id: int, password_id: int) -> bool:
        def op(ctx: WriteContext) -> bool:
            cur = ctx.conn.execute("DELETE FROM app_passwords WHERE account_id = ? AND id = ?",
                                   (account_id, password_id))
            return cur.rowcount > 0

        return await self.db.write(op)

    async def queue_retry(self, entry_id: int) -> bool:
        now = time.time()

        def op(ctx: WriteContext) -> bool:
            cur = ctx.conn.execute(
                "UPDATE queue SET next_attempt = MIN(next_attempt, ?) WHERE id = ?",
                (now, entry_id))
            return cur.rowcount > 0

        return await self.db.write(op)
