"""The shared backend: PostgreSQL for everything, so that several nodes can serve one domain.

House rules of this module (they are what makes it correct with several nodes):

- Every mutating method is one transaction (`_write`); after COMMIT the local change hub is
  told directly, and every other node hears of it through `NOTIFY mailwright_changes`, which
  PostgreSQL delivers only when the transaction commits.
- Row locks are always taken in one order: mailbox rows (ascending id), then account rows
  (ascending id), then blob rows (ascending id). Transactions therefore never deadlock on each
  other; a deadlock or serialization failure (SQLSTATE 40P01/40001) is retried anyway.
- A new UID and a new MODSEQ come from `UPDATE mailboxes ... RETURNING`, whose row lock lasts
  until COMMIT: two nodes appending to one mailbox take turns, so UIDs become visible in the
  order they were allocated (RFC 9051 2.3.1.1: a client that saw UID n never later sees a new
  message below n) and MODSEQ strictly increases per mailbox (RFC 7162 3.1.1).
- Message bytes are uploaded in their own short transaction before the locking transaction
  starts (a row with refs = 0), so that a 50 MB upload never holds a mailbox lock. If the
  garbage collector removes such a row before it is referenced, the locking transaction
  inserts the bytes itself.
- The local `blobs/` directory is only a cache of immutable, content-addressed blobs; the
  database is the truth. Deleting a cache file never loses anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import secrets
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncPipeline, errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mailwright.filemodes import close_to_others
from mailwright.store.api import (
    AppPassword,
    NotFound,
    QuotaExceeded,
    StagedBlob,
    StorageFull,
    StoreError,
    WebSession,
)
from mailwright.store.blobs import BlobFiles, FileBlobWriter, MetaParser, StagingFiles
from mailwright.store.changes import ChangeHub
from mailwright.store.core import CoreStore
from mailwright.store.core.listing import ListingCache
from mailwright.store.core.tx import Tx
from mailwright.store.postgres.schema import (
    SCHEMA_VERSION,
    SchemaTooNew,
    current_version,
    migrate,
)
from mailwright.store.postgres.tx import PostgresTx

log = logging.getLogger("mailwright.store")
T = TypeVar("T")
Conn = AsyncConnection[Any]

CHANNEL = "mailwright_changes"
_RETRIES = 8


def _connection_lost(e: BaseException) -> bool:
    """The connection broke (server restart, failover, killed backend): a fresh one may work."""
    if not isinstance(e, psycopg.OperationalError) or isinstance(e, PoolTimeout):
        return False
    state = e.sqlstate or ""
    # no SQLSTATE: libpq-level failure; 57P: operator intervention; 08: connection exception
    return state == "" or state.startswith(("57P", "08"))


def _is_full(e: BaseException) -> bool:
    # SQLSTATE class 53: insufficient resources (disk full, out of memory, too many connections)
    return isinstance(e, psycopg.Error) and (e.sqlstate or "").startswith("53")



@dataclass
class _Tx:
    """One transaction: its connection, the mailboxes it changed, work to do after COMMIT."""

    conn: Conn
    pipe: AsyncPipeline | None = None  # set for the pipelined units (store.core.messages)
    notify: dict[int, int] = field(default_factory=dict)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    checks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # before COMMIT
    committing: bool = False  # COMMIT may have reached the server: never retry from here

    def changed(self, mailbox_id: int, modseq: int) -> None:
        self.notify[mailbox_id] = max(modseq, self.notify.get(mailbox_id, 0))


class PostgresStore(CoreStore, StagingFiles):
    """The `Store` interface on PostgreSQL (psycopg 3, async, with a connection pool).

    `data_dir` holds only node-local files: staging (`tmp/`) and the blob cache (`blobs/`).
    """

    def __init__(
        self,
        dsn: str,
        data_dir: Path,
        *,
        meta_parser: MetaParser | None = None,
        max_message_size: int | None = None,
        pool_min: int = 1,
        pool_max: int = 10,
        cache_max_bytes: int = 2 * 1024**3,
    ) -> None:
        self.dsn = dsn
        self.data_dir = Path(data_dir)
        self.meta_parser = meta_parser
        self.max_message_size = max_message_size
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.cache_max_bytes = cache_max_bytes
        self.changes = ChangeHub()
        self.files: BlobFiles | None = None
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._listen_conn: Conn | None = None
        self._last_used: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()
        self._meta: OrderedDict[str, bytes] = OrderedDict()
        self._listing = ListingCache()
        self.notifications_received = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        close_to_others(self.data_dir)  # messages and password hashes are not for other users
        # The database makes data durable at COMMIT; staging files need no fsync of their own.
        self.files = BlobFiles(self.data_dir, fsync=False)
        self.changes._loop = asyncio.get_running_loop()
        try:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot connect to PostgreSQL: {_one_line(e)}") from None
        try:
            applied = await migrate(conn)
        except (SchemaTooNew, psycopg.Error) as e:
            raise StoreError(f"cannot migrate the PostgreSQL schema: {_one_line(e)}") from None
        finally:
            await conn.close()
        if applied:
            log.info("postgres schema migrated to version %d (%d applied)", SCHEMA_VERSION, applied)
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.dsn,
            min_size=self.pool_min,
            max_size=self.pool_max,
            kwargs={"autocommit": True},
            open=False,
            check=self._check_connection,
            reset=self._returned,
            name="mailwright",
        )
        try:
            await pool.open(wait=True, timeout=30)
        except Exception as e:  # noqa: BLE001 - reported as one line by the caller
            await pool.close()
            raise StoreError(f"cannot open PostgreSQL pool: {_one_line(e)}") from None
        self._pool = pool
        self._listening = asyncio.Event()
        self._listener = asyncio.create_task(self._listen_loop(), name="pg-listen")
        # Sessions rely on hearing other nodes' changes from the moment the store is open.
        waiter = asyncio.ensure_future(self._listening.wait())
        done, _ = await asyncio.wait(
            {waiter, self._listener}, timeout=30, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            await self.close()
            raise StoreError("cannot LISTEN for changes on PostgreSQL")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _listen_loop(self) -> None:
        """Feed the change hub from NOTIFY; reconnects, and wakes everyone after a gap."""
        delay = 0.1
        gap = False
        while True:
            conn: Conn | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
                await conn.execute("LISTEN " + CHANNEL)
                self._listen_conn = conn
                if gap:
                    # Notifications may have been lost while disconnected; the hub carries no
                    # data, so waking every watcher is always safe.
                    for mailbox_id in self.changes.watched():
                        self.changes.publish(mailbox_id, 0)
                self._listening.set()
                delay = 0.1
                async for n in conn.notifies():
                    self._on_notify(n.payload)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep listening whatever happened
                log.warning("postgres LISTEN connection lost: %s", _one_line(e))
            finally:
                self._listen_conn = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            gap = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    @property
    def listen_backend_pid(self) -> int | None:
        """The server process of the LISTEN connection (diagnostics and tests)."""
        conn = self._listen_conn
        return None if conn is None or conn.closed else int(conn.info.backend_pid)

    def _on_notify(self, payload: str) -> None:
        mailbox, _, modseq = payload.partition(":")
        try:
            mailbox_id, ms = int(mailbox), int(modseq or 0)
        except ValueError:
            return
        self.notifications_received += 1
        self.changes.publish(mailbox_id, ms)

    # -- transactions ------------------------------------------------------------------------

    # A pooled connection is checked (one round trip) only when it has been idle for a while,
    # which is when a database restart or failover may have broken it unnoticed; a busy
    # connection was just used successfully and needs no check.
    _CHECK_AFTER = 2.0

    async def _returned(self, conn: Conn) -> None:
        self._last_used[conn] = time.monotonic()

    async def _check_connection(self, conn: Conn) -> None:
        last = self._last_used.get(conn)
        if last is not None and time.monotonic() - last < self._CHECK_AFTER:
            return
        await AsyncConnectionPool.check_connection(conn)

    @property
    def pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def _write(self, fn: Callable[[_Tx], Awaitable[T]], *, pipelined: bool = False) -> T:
        """Run `fn` in one transaction, retrying on deadlock/serialization failure.

        With `pipelined`, statements are sent in libpq pipeline mode: BEGIN travels with the
        first query, NOTIFY with COMMIT, and `fn` must sync (`tx.pipe.sync()`) before it reads
        a row count or a result it did not fetch, since errors and results arrive at syncs.
        """
        for attempt in range(_RETRIES):
            tx = _Tx(None)  # type: ignore[arg-type]  # replaced once a connection is had
            try:
                async with contextlib.AsyncExitStack() as stack:
                    conn = await stack.enter_async_context(self.pool.connection())
                    pipe = await stack.enter_async_context(conn.pipeline()) if pipelined else None
                    await stack.enter_async_context(conn.transaction())
                    tx = _Tx(conn, pipe)
                    result = await fn(tx)
                    for check in tx.checks:
                        await check()
                    if tx.notify:
                        await conn.execute(
                            "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) p",
                            (CHANNEL, [f"{mb}:{ms}" for mb, ms in tx.notify.items()]),
                        )
                    tx.committing = True
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1) + secrets.randbelow(10) / 1000)
                continue
            except psycopg.Error as e:
                # A connection that broke before COMMIT was sent committed nothing: the
                # transaction can run again on a fresh connection.
                if _connection_lost(e) and not tx.committing and attempt < 2:
                    continue
                if _is_full(e):
                    raise StorageFull(_one_line(e)) from e
                raise
            for mb, ms in tx.notify.items():
                self.changes.publish(mb, ms)
            for cb in tx.after_commit:
                try:
                    cb()
                except Exception:  # noqa: BLE001 - cache upkeep only
                    log.debug("after-commit cleanup failed", exc_info=True)
            return result
        raise AssertionError("unreachable")

    # -- the core's hooks (store.core.tx.Backend)

    def _tx(self, tx: _Tx) -> PostgresTx:
        return PostgresTx(tx.conn, tx, self)

    async def _unit(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._write(lambda tx: fn(self._tx(tx)))

    async def _pipelined(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._write(lambda tx: fn(self._tx(tx)), pipelined=True)

    async def _single(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._run(lambda conn: fn(PostgresTx(conn)))

    async def _view(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._run(lambda conn: fn(PostgresTx(conn)))

    async def _consistent_view(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._snapshot(lambda conn: fn(PostgresTx(conn)))

    async def _check_backend(self, tx: Tx) -> list[str]:
        assert isinstance(tx, PostgresTx)
        version = await current_version(tx.conn)
        if version != SCHEMA_VERSION:
            return [f"postgres schema version {version}, this Mailwright expects {SCHEMA_VERSION}"]
        return []

    def _blob_files(self) -> BlobFiles:
        return self._files()

    async def _stage(self, blob: StagedBlob) -> None:
        await self._upload(blob)

    async def _run(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run reads (or one idempotent statement) on a pooled connection.

        Tried once more on a fresh connection when the first one turns out to be broken (a
        database restart or failover since it was last used).
        """
        for attempt in range(3):
            try:
                async with self.pool.connection() as conn:
                    return await fn(conn)
            except psycopg.Error as e:
                if not _connection_lost(e) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _snapshot(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run reads that must agree with each other in one REPEATABLE READ snapshot."""

        async def run(conn: Conn) -> T:
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                result = await fn(conn)
            except BaseException:
                if not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            return result

        return await self._run(run)

    async def _one(self, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        async def run(conn: Conn) -> tuple[Any, ...] | None:
            cur = await conn.execute(query, params)  # type: ignore[arg-type]
            row: tuple[Any, ...] | None = await cur.fetchone()
            return row

        return await self._run(run)

    async def _all(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async def run(conn: Conn) -> list[tuple[Any, ...]]:
            cur = await conn.execute(query, params)  # type: ignore[arg-type]
            rows: list[tuple[Any, ...]] = await cur.fetchall()
            return rows

        return await self._run(run)

    @staticmethod
    async def _fetchone(conn: Conn, query: str, params: Sequence[Any] = ()) -> Any:
        cur = await conn.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchone()

    # -- mailboxes ---------------------------------------------------------------------------

    async def _new_uidvalidities(self, c: Conn, n: int = 1) -> list[int]:
        # Unique for the database's life even when a name is re-created (RFC 9051 2.3.1.1);
        # the counter row serialises creations across nodes.
        row = await self._fetchone(
            c,
            "INSERT INTO counters(name, value)"
            " VALUES ('uidvalidity', extract(epoch FROM clock_timestamp())::bigint + %s - 1)"
            " ON CONFLICT (name) DO UPDATE"
            " SET value = GREATEST(excluded.value, counters.value + %s) RETURNING value",
            (n, n),
        )
        last = int(row[0])
        return [(v & 0xFFFFFFFF) or 1 for v in range(last - n + 1, last + 1)]

    # -- blobs -------------------------------------------------------------------------------

    def _files(self) -> BlobFiles:
        if self.files is None:
            raise StoreError("store is not open")
        return self.files

    def blob_writer(self, *, exact: bool = False) -> FileBlobWriter:
        return FileBlobWriter(self._files(), self.meta_parser, self.max_message_size, exact=exact)

    def _staged_bytes(self, blob: StagedBlob) -> bytes | None:
        """The content of a staged blob: its staging file, or the cache once it was linked."""
        for path in (blob._path, self._files().path_for(blob.blob_id)):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if len(data) == blob.size:
                return data
        return None

    async def _upload(self, blob: StagedBlob) -> None:
        """Send the bytes before the locking transaction (see the house rules).

        The upload commits without waiting for its WAL flush: it is referenced only by a later
        transaction that commits synchronously, and that flush covers every earlier WAL record,
        so a crash can lose the upload only together with the reference that needed it.
        """

        async def run(conn: Conn) -> None:
            cur = await conn.execute("SELECT 1 FROM blobs WHERE id = %s", (blob.blob_id,))
            if await cur.fetchone() is not None:
                return
            data = await asyncio.to_thread(self._staged_bytes, blob)
            if data is None:
                return  # the locking transaction reports it if the blob is really unknown
            async with conn.pipeline(), conn.transaction():  # one round trip
                await conn.execute("SET LOCAL synchronous_commit TO OFF")
                await conn.execute(
                    "INSERT INTO blobs(id, size, refs, meta, data)"
                    " VALUES (%s, %s, 0, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (blob.blob_id, blob.size, blob.meta, data),
                )

        try:
            await self._run(run)  # idempotent: ON CONFLICT DO NOTHING
        except psycopg.Error as e:
            if _is_full(e):
                raise StorageFull(_one_line(e)) from e
            raise

    async def _ref_blob(self, tx: _Tx, blob: StagedBlob, n: int) -> None:
        cur = await tx.conn.execute(
            "UPDATE blobs SET refs = refs + %s WHERE id = %s", (n, blob.blob_id)
        )
        if tx.pipe is not None:
            await tx.pipe.sync()
        if cur.rowcount == 0:
            data = await asyncio.to_thread(self._staged_bytes, blob)
            if data is None:
                raise NotFound(f"no such blob: {blob.blob_id}")
            await tx.conn.execute(
                "INSERT INTO blobs(id, size, refs, meta, data) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET refs = blobs.refs + excluded.refs",
                (blob.blob_id, blob.size, n, blob.meta, data),
            )
        tx.after_commit.append(lambda: self._settle_staged(blob))

    def _settle_staged(self, blob: StagedBlob) -> None:
        """After COMMIT: the staging file becomes this node's cached copy (or goes away)."""
        files = self._files()
        if blob._path == files.path_for(blob.blob_id) or not blob._path.exists():
            return
        try:
            files.link(blob, set())
        except OSError:
            blob._path.unlink(missing_ok=True)

    async def _unref_blobs(self, tx: _Tx, counts: dict[str, int]) -> None:
        if not counts:
            return
        ids = sorted(counts)
        c = tx.conn
        await c.execute("SELECT 1 FROM blobs WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,))
        # A blob nobody references is released, not deleted: `created` becomes the release
        # time and collect_garbage removes it after the grace period, so that a session on
        # another node that still shows the expunged message can fetch it until it
        # synchronises (RFC 2180 4.1).
        await c.execute(
            "UPDATE blobs b SET refs = b.refs - d.n,"
            " created = CASE WHEN b.refs - d.n <= 0 THEN clock_timestamp() ELSE b.created END"
            " FROM unnest(%s::text[], %s::int[]) d(id, n) WHERE b.id = d.id",
            (ids, [counts[i] for i in ids]),
        )

    async def read_blob(self, blob_id: str) -> bytes:
        files = self._files()
        try:
            path = files.path_for(blob_id)
        except ValueError:
            raise NotFound(f"no such blob: {blob_id}") from None
        data = await asyncio.to_thread(_read_touch, path, blob_id)
        if data is not None:
            return data

        async def fetch(conn: Conn) -> Any:
            cur = conn.cursor(binary=True)
            await cur.execute("SELECT data FROM blobs WHERE id = %s", (blob_id,))
            return await cur.fetchone()

        row = await self._run(fetch)
        if row is None:
            raise NotFound(f"no such blob: {blob_id}")
        data = bytes(row[0])
        await asyncio.to_thread(_cache_put, files, blob_id, data)
        return data

    async def get_meta(self, blob_id: str) -> bytes:
        meta = self._meta.get(blob_id)
        if meta is not None:
            self._meta.move_to_end(blob_id)
            return meta
        row = await self._one("SELECT meta FROM blobs WHERE id = %s", (blob_id,))
        if row is None:
            raise NotFound(f"no such blob: {blob_id}")
        meta = bytes(row[0])
        self._meta[blob_id] = meta  # immutable: content-addressed
        if len(self._meta) > 4096:
            self._meta.popitem(last=False)
        return meta

    # -- messages ----------------------------------------------------------------------------

    async def _charge(self, tx: _Tx, account_id: int, size: int, count: int) -> None:
        cur = await tx.conn.execute(
            "UPDATE accounts SET used_bytes = used_bytes + %s, used_messages = used_messages + %s"
            " WHERE id = %s RETURNING quota_bytes, used_bytes, quota_messages, used_messages",
            (size, count, account_id),
        )
        check = functools.partial(self._charge_check, cur, account_id, size, count)
        if tx.pipe is not None:
            # pipelined: the answer is read before COMMIT, with no round trip of its own
            tx.checks.append(check)
        else:
            await check()

    @staticmethod
    async def _charge_check(cur: Any, account_id: int, size: int, count: int) -> None:
        row = await cur.fetchone()
        if row is None:
            raise NotFound("no such account")
        quota, used = int(row[0]), int(row[1])
        if size > 0 and quota and used > quota:
            raise QuotaExceeded(f"quota of account {account_id} exceeded")
        quota_messages, used_messages = int(row[2]), int(row[3])
        if count > 0 and quota_messages and used_messages > quota_messages:
            # RFC 9208 5.2: the MESSAGE resource
            raise QuotaExceeded(f"message quota of account {account_id} exceeded")

    # -- maintenance -------------------------------------------------------------------------

    async def collect_garbage(
        self, min_age: float = 3600.0, *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Remove unreferenced blob rows, stale cache files and staging files; the count.

        A blob row with no reference is an upload whose transaction never came (a crash, or a
        refused delivery), or a released blob past its grace period. Rows go in small batches
        (each its own short transaction, re-checked on the locked row); the cache walk runs
        outside any transaction (`progress(files walked)` every 1000 files, from its thread).
        The cache is trimmed to `cache_max_bytes`, least recently read first.
        """
        files = self._files()
        removed = 0
        while True:
            batch = await self._all(
                "DELETE FROM blobs WHERE id IN (SELECT id FROM blobs WHERE refs <= 0"
                " AND created <= clock_timestamp() - make_interval(secs => %s)"
                " LIMIT 200 FOR UPDATE SKIP LOCKED)"
                " AND refs <= 0 RETURNING id",
                (float(min_age),),
            )
            removed += len(batch)
            if len(batch) < 200:
                break

        def walk() -> list[tuple[str, Path]]:
            found = []
            for n, item in enumerate(files.all_ids(), 1):
                if progress is not None and n % 1000 == 0:
                    progress(n)
                found.append(item)
            return found

        cached = await asyncio.to_thread(walk)
        for i in range(0, len(cached), 500):
            chunk = cached[i : i + 500]
            known = {
                str(r[0])
                for r in await self._all(
                    "SELECT id FROM blobs WHERE id = ANY(%s)", ([b for b, _ in chunk],)
                )
            }
            stale = [p for b, p in chunk if b not in known]
            removed += await asyncio.to_thread(_unlink_older, stale, min_age)
        removed += await asyncio.to_thread(_unlink_older, list(files.stale_tmp(min_age)), -1)
        await asyncio.to_thread(_trim_cache, files, self.cache_max_bytes)
        return removed


    async def web_session_put(self, session: WebSession) -> None:
        async def op(tx: _Tx) -> None:
            try:
                await tx.conn.execute(
                    "INSERT INTO web_sessions(id, account_id, csrf, stage, created, expires)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                    " account_id = EXCLUDED.account_id, csrf = EXCLUDED.csrf,"
                    " stage = EXCLUDED.stage, created = EXCLUDED.created,"
                    " expires = EXCLUDED.expires",
                    (session.id, session.account_id, session.csrf, session.stage,
                     session.created, session.expires),
                )
            except errors.ForeignKeyViolation:
                raise NotFound("no such account") from None

        await self._write(op)

    async def web_session_get(self, session_id: str) -> WebSession | None:
        row = await self._one(
            "SELECT id, account_id, csrf, stage, created, expires FROM web_sessions"
            " WHERE id = %s", (session_id,))
        if row is None:
            return None
        return WebSession(str(row[0]), int(row[1]), str(row[2]), str(row[3]), float(row[4]),
                          float(row[5]))

    async def web_session_delete(self, session_id: str) -> None:
        async def op(tx: _Tx) -> None:
            await tx.conn.execute("DELETE FROM web_sessions WHERE id = %s", (session_id,))

        await self._write(op)

    async def web_sessions_delete(self, account_id: int, keep: str | None = None) -> int:
        async def op(tx: _Tx) -> int:
            cur = await tx.conn.execute(
                "DELETE FROM web_sessions WHERE account_id = %s AND id IS DISTINCT FROM %s",
                (account_id, keep))
            return int(cur.rowcount)

        return await self._write(op)

    async def web_sessions_purge(self, now: float) -> int:
        async def op(tx: _Tx) -> int:
            cur = await tx.conn.execute("DELETE FROM web_sessions WHERE expires <= %s", (now,))
            return int(cur.rowcount)

        return await self._write(op)

    async def account_setting(self, account_id: int, key: str) -> str | None:
        row = await self._one(
            "SELECT value FROM account_settings WHERE account_id = %s AND key = %s",
            (account_id, key))
        return None if row is None else str(row[0])

    async def set_account_setting(self, account_id: int, key: str, value: str | None) -> None:
        async def op(tx: _Tx) -> None:
            if value is None:
                cur = await tx.conn.execute("SELECT 1 FROM accounts WHERE id = %s",
                                            (account_id,))
                if await cur.fetchone() is None:
                    raise NotFound("no such account")
                await tx.conn.execute(
                    "DELETE FROM account_settings WHERE account_id = %s AND key = %s",
                    (account_id, key))
                return
            try:
                await tx.conn.execute(
                    "INSERT INTO account_settings(account_id, key, value) VALUES (%s, %s, %s)"
                    " ON CONFLICT (account_id, key) DO UPDATE SET value = EXCLUDED.value",
                    (account_id, key, value))
            except errors.ForeignKeyViolation:
                raise NotFound("no such account") from None

        await self._write(op)

    async def account_settings(self, key: str) -> dict[int, str]:
        rows = await self._all(
            "SELECT account_id, value FROM account_settings WHERE key = %s", (key,))
        return {int(r[0]): str(r[1]) for r in rows}

    async def app_password_add(self, account_id: int, label: str, digest: str) -> AppPassword:
        created = time.time()

        async def op(tx: _Tx) -> int:
            try:
                cur = await tx.conn.execute(
                    "INSERT INTO app_passwords(account_id, label, digest, created)"
                    " VALUES (%s, %s, %s, %s) RETURNING id",
                    (account_id, label, digest, created))
            except errors.ForeignKeyViolation:
                raise NotFound("no such account") from None
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

        new_id = await self._write(op)
        return AppPassword(new_id, account_id, label, digest, created)

    async def app_passwords(self, account_id: int) -> list[AppPassword]:
        rows = await self._all(
            "SELECT id, account_id, label, digest, created FROM app_passwords"
            " WHERE account_id = %s ORDER BY id", (account_id,))
        return [AppPassword(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4]))
                for r in rows]

    async def app_password_delete(self, account_id: int, password_id: int) -> bool:
        async def op(tx: _Tx) -> bool:
            cur = await tx.conn.execute(
                "DELETE FROM app_passwords WHERE account_id = %s AND id = %s",
                (account_id, password_id))
            return cur.rowcount > 0

        return await self._write(op)

    async def queue_retry(self, entry_id: int) -> bool:
        rows = await self._all(
            "UPDATE queue SET next_attempt = LEAST(next_attempt, clock_timestamp())"
            " WHERE id = %s RETURNING id", (entry_id,))
        return bool(rows)

# -- file helpers (run in threads) -----------------------------------------------------------


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _read_touch(path: Path, blob_id: str) -> bytes | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    # Cache files are written without fsync (the database holds the durable copy), so after a
    # power loss one may be short or empty: the content must match its name to be served.
    if hashlib.sha256(data).hexdigest() != blob_id:
        path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # least-recently-read trimming
    return data


def _cache_put(files: BlobFiles, blob_id: str, data: bytes) -> None:
    if hashlib.sha256(data).hexdigest() != blob_id:
        return  # never cache what does not match its name
    final = files.path_for(blob_id)
    tmp = files.new_tmp()
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.link(tmp, final)
    except OSError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _unlink_older(paths: list[Path], min_age: float) -> int:
    import time

    cutoff = time.time() - min_age
    n = 0
    for p in paths:
        try:
            if min_age >= 0 and p.stat().st_mtime > cutoff:
                continue
            p.unlink()
            n += 1
        except FileNotFoundError:
            continue
    return n


def _trim_cache(files: BlobFiles, max_bytes: int) -> None:
    entries = []
    total = 0
    for _blob_id, p in files.all_ids():
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
        total += st.st_size
    if total <= max_bytes:
        return
    entries.sort()
    for _mtime, size, p in entries:
        if total <= max_bytes:
            break
        p.unlink(missing_ok=True)
        total -= size




