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
  inserts the bytes itself. With group commit and content in the database, a blob of at
  most `INLINE_MAX` octets is not uploaded first: its bytes travel in the unit, with its
  reference (`PostgresTx.ref_blob`), which saves the upload's two round trips per message
  for most mail and holds the batch's locks for the time a few kilobytes take to travel.
- Message content lives where `[storage] blobs` says (`store.blobstore`): in the database
  (`bytea`, the default; the local `blobs/` directory is then only a cache of immutable,
  content-addressed blobs, and deleting a cache file never loses anything), or in files
  fsync'ed before the COMMIT that references them (one node, or a shared data directory).
  With files, storing a blob's content and the collector's removal of it take an advisory
  lock on its id (`_guard_blob`), after the row locks above.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
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
    ChangeSet,
    NotFound,
    QuotaExceeded,
    StagedBlob,
    StorageFull,
    StoreError,
)
from mailwright.store.blobs import BlobFiles, FileBlobWriter, MetaParser
from mailwright.store.blobstore import BlobStorage, CachedBlobs, FileBlobs
from mailwright.store.changes import DIRECTORY, ChangeHub
from mailwright.store.core import CoreStore
from mailwright.store.core.listing import ListingCache
from mailwright.store.core.messages import read_changes
from mailwright.store.core.tx import Tx
from mailwright.store.postgres.blobs import DatabaseBlobs
from mailwright.store.postgres.changelog import ChangeLog
from mailwright.store.postgres.lookups import CachedLookups, LookupCache
from mailwright.store.postgres.schema import (
    SCHEMA_VERSION,
    SchemaTooNew,
    current_version,
    migrate,
)
from mailwright.store.postgres.tx import PostgresTx
from mailwright.store.postgres.writer import GroupCommit, translate

log = logging.getLogger("mailwright.store")

#: The node's cache of blob metas (`get_meta`): bounded in bytes as well as in entries, since
#: a meta can be a megabyte (a message of 10,000 MIME parts, which any sender can deliver).
_META_BYTES = 16 * 1024 * 1024
_META_ITEM = 256 * 1024
T = TypeVar("T")
Conn = AsyncConnection[Any]

CHANNEL = "mailwright_changes"
_RETRIES = 8
#: Blobs up to this size travel inside their unit instead of being uploaded before it (most
#: mail; see the house rules)
INLINE_MAX = 64 * 1024


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
    #: blobs referenced without waiting for the row count (group commit, PostgresTx.ref_blob)
    refs: list[StagedBlob] | None = None

    def changed(self, mailbox_id: int, modseq: int) -> None:
        self.notify[mailbox_id] = max(modseq, self.notify.get(mailbox_id, 0))


class PostgresStore(CachedLookups, CoreStore):
    """The `Store` interface on PostgreSQL (psycopg 3, async, with a connection pool).

    `data_dir` holds node-local files: staging (`tmp/`) and the blob cache (`blobs/`), or
    with `blobs="files"` the stored content itself.
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
        blobs: str = "database",
        fsync: bool = True,
        group_commit: bool = True,
    ) -> None:
        if blobs not in ("database", "files"):
            raise ValueError(f"unknown blob storage {blobs!r}")
        self.blob_kind = blobs
        self.fsync = fsync
        self.dsn = dsn
        self.data_dir = Path(data_dir)
        self.meta_parser = meta_parser
        self.max_message_size = max_message_size
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.cache_max_bytes = cache_max_bytes
        self.changes = ChangeHub()
        self.files: BlobFiles | None = None
        self.blobs: BlobStorage | None = None
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._listen_conn: Conn | None = None
        self._last_used: weakref.WeakKeyDictionary[Conn, float] = weakref.WeakKeyDictionary()
        self._meta: OrderedDict[str, bytes] = OrderedDict()
        self._meta_bytes = 0  # what `_meta` holds (bounded: _META_BYTES)
        self._listing = ListingCache()
        self.notifications_received = 0
        #: units of work (`_unit`) of many sessions share transactions (postgres/writer.py);
        #: False: each unit is a transaction of its own (as before; benchmarks compare both)
        self.group_commit: GroupCommit | None = GroupCommit(self) if group_commit else None
        #: `changes_since` answers shared by this node's sessions, invalidated by NOTIFY
        self.changelog = ChangeLog()
        #: domains, accounts and aliases, forgotten on a DIRECTORY change (postgres/lookups.py)
        self.lookups = LookupCache(lambda: (self.changelog.reliable, self.changelog.epoch))

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        close_to_others(self.data_dir)  # messages and password hashes are not for other users
        if self.blob_kind == "files":
            self.files = BlobFiles(self.data_dir, fsync=self.fsync)
            self.blobs = FileBlobs(self.files)
        else:
            # The database makes data durable at COMMIT; staging files need no fsync.
            self.files = BlobFiles(self.data_dir, fsync=False)
            self.blobs = CachedBlobs(DatabaseBlobs(self._run), self.files, self.cache_max_bytes)
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
        if self.group_commit is not None and self._pool is not None:
            await self.group_commit.close()
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
                self.changelog.reliable = True
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
                self.changelog.lost()
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
        if mailbox_id == DIRECTORY:
            self.lookups.invalidate()
        self.changelog.hear(mailbox_id, ms)
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
                self.publish(mb, ms)
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
        if self.group_commit is not None:
            result: T = await self.group_commit.run(lambda tx: fn(self._tx(tx)))
            return result
        try:
            return await self._write(lambda tx: fn(self._tx(tx)), pipelined=True)
        except psycopg.Error as e:  # a constraint error that arrived at a later sync
            raise translate(e) from e

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
        if self.blob_kind != "files":
            return []  # the bytes are in the rows: nothing can be missing apart from them
        ids = [str(r[0]) for r in await tx.rows("SELECT id FROM blobs")]
        missing = await asyncio.to_thread(self._blob_storage().missing, ids)
        return [f"blob {blob_id}: file missing" for blob_id in missing]

    def _blob_storage(self) -> BlobStorage:
        if self.blobs is None:
            raise StoreError("store is not open")
        return self.blobs

    async def _stage(self, blob: StagedBlob) -> None:
        if self._inlined(blob):
            return  # its bytes travel with its reference (`PostgresTx.ref_blob`)
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

    def blob_writer(self, *, exact: bool = False) -> FileBlobWriter:
        return self._blob_storage().writer(self.meta_parser, self.max_message_size, exact=exact)

    async def _upload(self, blob: StagedBlob) -> None:
        """Send the bytes before the locking transaction (see the house rules)."""
        try:
            await self._blob_storage().upload(blob)
        except psycopg.Error as e:
            if _is_full(e):
                raise StorageFull(_one_line(e)) from e
            raise

    def _inlined(self, blob: StagedBlob) -> bool:
        """Does this blob skip the upload before its unit (see the house rules)?"""
        return (blob.size <= INLINE_MAX and self.blob_kind == "database"
                and self.group_commit is not None)

    def _inline_bytes(self, blob: StagedBlob) -> bytes | None:
        """The bytes of an inlined blob for its reference in a batch, or None (not inlined,
        or its staging file gone: the reference then needs the row, as for an upload).
        A blocking read: a few kilobytes just written are in the page cache, and a read
        costs less than a hop to a worker thread (as `BlobFiles.read_if_small`)."""
        if not self._inlined(blob):
            return None
        try:
            data = self._blob_storage().files.read_staged(blob)
        except (NotFound, OSError):
            return None
        return data if len(data) == blob.size else None

    async def _guard_blob(self, tx: _Tx, blob_id: str) -> None:
        """With files, storing a blob and collecting it take turns (`Tx.guard_blob`)."""
        if self.blob_kind == "files":
            await tx.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (blob_id,)
            )

    def _keep(self, blob: StagedBlob) -> None:
        """Store the content durably before COMMIT (files: link, then fsync the directories)."""
        storage = self._blob_storage()
        dirty: set[Path] = set()
        storage.keep(blob, dirty)
        storage.files.sync_dirs(dirty)

    async def _ref_blob(self, tx: _Tx, blob: StagedBlob, n: int) -> None:
        storage = self._blob_storage()
        await self._guard_blob(tx, blob.blob_id)
        cur = await tx.conn.execute(
            "UPDATE blobs SET refs = refs + %s WHERE id = %s RETURNING refs", (n, blob.blob_id)
        )
        if tx.pipe is not None:
            await tx.pipe.sync()
        row = await cur.fetchone()
        if row is None:
            data = await storage.row_data(blob)
            if self.blob_kind == "files":
                await asyncio.to_thread(self._keep, blob)
            await tx.conn.execute(
                "INSERT INTO blobs(id, size, refs, meta, data) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET refs = blobs.refs + excluded.refs",
                (blob.blob_id, blob.size, n, blob.meta, data),
            )
        elif int(row[0]) <= n and self.blob_kind == "files":
            # a released blob waiting for the collector: make sure its file is (still) there
            await asyncio.to_thread(self._keep, blob)
        tx.after_commit.append(functools.partial(storage.settle, blob))

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

    async def get_meta(self, blob_id: str) -> bytes:
        meta = self._meta.get(blob_id)
        if meta is not None:
            self._meta.move_to_end(blob_id)
            return meta
        row = await self._one("SELECT meta FROM blobs WHERE id = %s", (blob_id,))
        if row is None:
            raise NotFound(f"no such blob: {blob_id}")
        meta = bytes(row[0])
        if len(meta) > _META_ITEM:
            return meta  # read again when asked: one meta may not push out hundreds
        self._meta[blob_id] = meta  # immutable: content-addressed
        self._meta_bytes += len(meta)
        while len(self._meta) > 4096 or self._meta_bytes > _META_BYTES:
            self._meta_bytes -= len(self._meta.popitem(last=False)[1])
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

    # -- changes_since shared by the node's sessions (postgres/changelog.py) ------------------

    def publish(self, mailbox_id: int, modseq: int) -> None:
        """After a COMMIT of this node: the shared answers learn of it before the change hub
        wakes anyone (so no session of this node is told less than was committed)."""
        if mailbox_id == DIRECTORY:
            self.lookups.invalidate()
        self.changelog.hear(mailbox_id, modseq)
        self.changes.publish(mailbox_id, modseq)

    async def changes_since(self, mailbox_id: int, modseq: int) -> ChangeSet:
        """The core's rule (`store.core.messages.read_changes`), read once per change and
        node and shared by the sessions that ask (postgres/changelog.py)."""
        return await self.changelog.changes_since(
            mailbox_id, modseq,
            lambda since: self._view(lambda tx: read_changes(tx, mailbox_id, since)))


# -- file helpers (run in threads) -----------------------------------------------------------


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
