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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncPipeline, errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mailwright.filemodes import close_to_others
from mailwright.store.api import (
    AppendItem,
    ChangeSet,
    DeliveryTarget,
    FlagOp,
    LocalCopies,
    Mailbox,
    MailboxStatus,
    MessageListing,
    MessageRecord,
    NotFound,
    QueueAddition,
    QuotaExceeded,
    StagedBlob,
    StorageFull,
    StoreError,
    StoreFlagsResult,
    TraceEvent,
    canonical_mailbox_name,
)
from mailwright.store.blobs import BlobFiles, FileBlobWriter, MetaParser
from mailwright.store.blobstore import BlobStorage, CachedBlobs, FileBlobs
from mailwright.store.changes import ChangeHub
from mailwright.store.core import CoreStore
from mailwright.store.core.acl import new_flags
from mailwright.store.core.tx import FlagFilter, Guard, Tx
from mailwright.store.postgres.blobs import DatabaseBlobs
from mailwright.store.postgres.changelog import ChangeLog
from mailwright.store.postgres.schema import (
    SCHEMA_VERSION,
    SchemaTooNew,
    current_version,
    migrate,
)
from mailwright.store.postgres.tx import PostgresTx
from mailwright.store.postgres.writer import GroupCommit, translate

log = logging.getLogger("mailwright.store")
T = TypeVar("T")
Conn = AsyncConnection[Any]

CHANNEL = "mailwright_changes"
_RETRIES = 8
_MB_COLS = (
    "m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, m.special_use,"
    " m.retention_days, (s.name IS NOT NULL)"
)
_MB_FROM = (
    "mailboxes m LEFT JOIN subscriptions s ON s.account_id = m.account_id AND s.name = m.name"
)
_MSG_COLS = "mailbox_id, uid, modseq, flags, internaldate, size, blob_id"
# the internal date travels as a UNIX timestamp, as MessageRecord keeps it
_MSG_SELECT = (
    "mailbox_id, uid, modseq, flags, extract(epoch FROM internaldate)::float8, size, blob_id"
)
_MSG_VALUES = "(%s, %s, %s, %s, to_timestamp(%s), %s, %s)"


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def _flag_list(flags: Iterable[str]) -> list[str]:
    return sorted(set(flags))


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
    pipe: AsyncPipeline | None = None  # set for the pipelined write path (append, deliver)
    notify: dict[int, int] = field(default_factory=dict)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    committing: bool = False  # COMMIT may have reached the server: never retry from here
    #: blobs referenced without waiting for the row count (group commit, PostgresTx.ref_blob)
    refs: list[StagedBlob] | None = None

    def changed(self, mailbox_id: int, modseq: int) -> None:
        self.notify[mailbox_id] = max(modseq, self.notify.get(mailbox_id, 0))


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


class PostgresStore(CoreStore):
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
        self._flags = _FlagCache()
        self._meta: OrderedDict[str, bytes] = OrderedDict()
        self._listings: OrderedDict[int, MessageListing] = OrderedDict()
        self._listed = 0
        self.listing_min_size = 1000  # small mailboxes are cheap to list: not worth memory
        self.listing_max_records = 1_000_000
        self.notifications_received = 0
        #: units of work (`_unit`) of many sessions share transactions (postgres/writer.py);
        #: False: each unit is a transaction of its own (as before; benchmarks compare both)
        self.group_commit: GroupCommit | None = GroupCommit(self) if group_commit else None
        #: `changes_since` answers shared by this node's sessions, invalidated by NOTIFY
        self.changelog = ChangeLog()

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

    @staticmethod
    async def _fetchall(conn: Conn, query: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = await conn.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchall()

    # -- row helpers -------------------------------------------------------------------------

    @staticmethod
    def _mailbox(r: Any) -> Mailbox:
        return Mailbox(
            int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]),
            None if r[6] is None else str(r[6]), bool(r[8]), int(r[7]),
        )

    def _message(self, r: Any) -> MessageRecord:
        return MessageRecord(
            int(r[0]), int(r[1]), int(r[2]), self._flags.get(r[3]), float(r[4]), int(r[5]),
            str(r[6]),
        )

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

    async def _get_mailbox(self, c: Conn, account_id: int, name: str) -> Mailbox | None:
        row = await self._fetchone(
            c,
            f"SELECT {_MB_COLS} FROM {_MB_FROM} WHERE m.account_id = %s AND m.name = %s",
            (account_id, canonical_mailbox_name(name)),
        )
        return None if row is None else self._mailbox(row)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        # one statement, so one snapshot: the counts agree with UIDNEXT and HIGHESTMODSEQ
        row = await self._one(
            "SELECT b.uidnext, b.uidvalidity, b.highestmodseq, s.n, s.size, s.unseen, s.deleted"
            " FROM mailboxes b, LATERAL (SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS size,"
            " COUNT(*) FILTER (WHERE NOT flags @> ARRAY['\\Seen']) AS unseen,"
            " COUNT(*) FILTER (WHERE flags @> ARRAY['\\Deleted']) AS deleted"
            " FROM messages WHERE mailbox_id = b.id) s WHERE b.id = %s",
            (mailbox_id,),
        )
        if row is None:
            raise NotFound("no such mailbox")
        return MailboxStatus(
            mailbox_id, int(row[3]), int(row[5]), int(row[6]), int(row[4]),
            int(row[0]), int(row[1]), int(row[2]),
        )

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

    async def _ref_blobs(self, tx: _Tx, counts: dict[str, int]) -> None:
        """References to blobs that rows already reference (copy): they exist, just count."""
        if not counts:
            return
        ids = sorted(counts)
        await tx.conn.execute(
            "SELECT 1 FROM blobs WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,)
        )
        await tx.conn.execute(
            "UPDATE blobs b SET refs = b.refs + d.n FROM unnest(%s::text[], %s::int[]) d(id, n)"
            " WHERE b.id = d.id",
            (ids, [counts[i] for i in ids]),
        )

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
        self._meta[blob_id] = meta  # immutable: content-addressed
        if len(self._meta) > 4096:
            self._meta.popitem(last=False)
        return meta

    # -- messages ----------------------------------------------------------------------------

    async def _charge(self, tx: _Tx, account_id: int, size: int, count: int) -> None:
        cur = await self._charge_send(tx, account_id, size, count)
        await self._charge_check(cur, account_id, size)

    @staticmethod
    async def _charge_send(tx: _Tx, account_id: int, size: int, count: int) -> Any:
        return await tx.conn.execute(
            "UPDATE accounts SET used_bytes = used_bytes + %s, used_messages = used_messages + %s"
            " WHERE id = %s RETURNING quota_bytes, used_bytes, quota_messages, used_messages",
            (size, count, account_id),
        )

    @staticmethod
    async def _charge_check(cur: Any, account_id: int, size: int) -> None:
        row = await cur.fetchone()
        if row is None:
            raise NotFound("no such account")
        quota, used = int(row[0]), int(row[1])
        if size > 0 and quota and used > quota:
            raise QuotaExceeded(f"quota of account {account_id} exceeded")
        quota_messages, used_messages = int(row[2]), int(row[3])
        if size > 0 and quota_messages and used_messages > quota_messages:
            # RFC 9208 5.2: the MESSAGE resource (every message added has octets)
            raise QuotaExceeded(f"message quota of account {account_id} exceeded")

    async def _allocate(self, c: Conn, mailbox_id: int, n: int) -> tuple[int, int, int]:
        """First UID of `n` new ones, the new MODSEQ, and the account (locks the mailbox)."""
        row = await self._fetchone(
            c,
            "UPDATE mailboxes SET uidnext = uidnext + %s, highestmodseq = highestmodseq + 1"
            " WHERE id = %s RETURNING uidnext - %s, highestmodseq, account_id",
            (n, mailbox_id, n),
        )
        if row is None:
            raise NotFound("no such mailbox")
        return int(row[0]), int(row[1]), int(row[2])

    async def _bump_modseq(self, c: Conn, mailbox_id: int) -> int:
        row = await self._fetchone(
            c,
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = %s"
            " RETURNING highestmodseq",
            (mailbox_id,),
        )
        if row is None:
            raise NotFound("no such mailbox")
        return int(row[0])

    async def append(
        self,
        mailbox_id: int,
        blob: StagedBlob,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> MessageRecord:
        flist = _flag_list(flags)
        when = (internaldate or datetime.now(UTC)).timestamp()
        await self._upload(blob)

        async def op(tx: _Tx) -> MessageRecord:
            # round trip 1: BEGIN + the mailbox lock and UID; 2: usage, message, blob
            # reference; 3: NOTIFY + COMMIT
            uid, modseq, account_id = await self._allocate(tx.conn, mailbox_id, 1)
            charged = await self._charge_send(tx, account_id, blob.size, 1)
            await tx.conn.execute(
                f"INSERT INTO messages({_MSG_COLS}) VALUES {_MSG_VALUES}",
                (mailbox_id, uid, modseq, flist, when, blob.size, blob.blob_id),
            )
            await self._ref_blob(tx, blob, 1)
            await self._charge_check(charged, account_id, blob.size)
            tx.changed(mailbox_id, modseq)
            return self._message((mailbox_id, uid, modseq, flist, when, blob.size, blob.blob_id))

        return await self._write(op, pipelined=True)

    async def deliver(
        self, blob: StagedBlob, targets: Sequence[DeliveryTarget]
    ) -> list[MessageRecord]:
        # the rule is the core's (store.core.fanout), all or nothing here
        return list((await self.deliver_each(LocalCopies(blob, tuple(targets)), None)).records)

    async def list_messages(self, mailbox_id: int) -> list[MessageRecord]:
        return list((await self.listing(mailbox_id)).records.values())

    async def _get_rows(self, c: Conn, mailbox_id: int, uids: Sequence[int]) -> list[Any]:
        return await self._fetchall(
            c,
            f"SELECT {_MSG_SELECT} FROM messages WHERE mailbox_id = %s AND uid = ANY(%s)"
            " ORDER BY uid",
            (mailbox_id, sorted({int(u) for u in uids})),
        )

    async def get_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]:
        rows = await self._run(lambda conn: self._get_rows(conn, mailbox_id, uids))
        return [self._message(r) for r in rows]

    def publish(self, mailbox_id: int, modseq: int) -> None:
        """After a COMMIT of this node: the shared answers learn of it before the change hub
        wakes anyone (so no session of this node is told less than was committed)."""
        self.changelog.hear(mailbox_id, modseq)
        self.changes.publish(mailbox_id, modseq)

    async def changes_since(self, mailbox_id: int, modseq: int) -> ChangeSet:
        # shared by the sessions of this node, one read per change (postgres/changelog.py)
        return await self.changelog.changes_since(mailbox_id, modseq, functools.partial(
            self._read_changes, mailbox_id))

    async def _read_changes(
        self, mailbox_id: int, modseq: int
    ) -> tuple[int, int, tuple[MessageRecord, ...], tuple[tuple[int, int], ...]]:
        # One snapshot (REPEATABLE READ) in one round trip (pipeline mode).
        async def run(conn: Conn) -> tuple[Any, list[Any], list[Any]]:
            async with conn.pipeline():
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                mb_cur = await conn.execute(
                    "SELECT highestmodseq, uidnext FROM mailboxes WHERE id = %s", (mailbox_id,)
                )
                msg_cur = await conn.execute(
                    f"SELECT {_MSG_SELECT} FROM messages WHERE mailbox_id = %s AND modseq > %s"
                    " ORDER BY uid",
                    (mailbox_id, modseq),
                )
                gone_cur = await conn.execute(
                    "SELECT uid, modseq FROM expunged WHERE mailbox_id = %s AND modseq > %s"
                    " ORDER BY uid",
                    (mailbox_id, modseq),
                )
                await conn.execute("COMMIT")
            return await mb_cur.fetchone(), await msg_cur.fetchall(), await gone_cur.fetchall()

        mb, rows, gone = await self._run(run)
        if mb is None:
            raise NotFound("no such mailbox")
        return (int(mb[0]), int(mb[1]), tuple(self._message(r) for r in rows),
                tuple((int(g[0]), int(g[1])) for g in gone))

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
        *,
        guard: Guard | None = None,
    ) -> StoreFlagsResult:
        given = set(flags)

        async def wop(tx: _Tx) -> StoreFlagsResult:
            c = tx.conn
            # RFC 4314 4: the rights, read in this transaction after the mailbox row is
            # locked, say which flags may change
            allowed = None if guard is None else await guard(self._tx(tx))
            # The mailbox lock makes read-compare-write atomic against other nodes.
            if await self._fetchone(
                c, "SELECT 1 FROM mailboxes WHERE id = %s FOR UPDATE", (mailbox_id,)
            ) is None:
                return StoreFlagsResult((), (), ())
            rows = await self._get_rows(c, mailbox_id, uids)
            changed: dict[tuple[str, ...], list[Any]] = {}
            unchanged: list[MessageRecord] = []
            failed: list[int] = []
            for r in rows:
                # RFC 7162 3.1.3: UNCHANGEDSINCE compares against the message's MODSEQ.
                if unchangedsince is not None and int(r[2]) > unchangedsince:
                    failed.append(int(r[1]))
                    continue
                cur = set(r[3])
                new = new_flags(cur, op, given, allowed)
                if new == cur:
                    unchanged.append(self._message(r))
                else:
                    changed.setdefault(tuple(sorted(new)), []).append(r)
            if not changed:
                return StoreFlagsResult((), tuple(unchanged), tuple(failed))
            modseq = await self._bump_modseq(c, mailbox_id)
            updated: list[MessageRecord] = []
            for flag_set, group in changed.items():
                await c.execute(
                    "UPDATE messages SET flags = %s, modseq = %s"
                    " WHERE mailbox_id = %s AND uid = ANY(%s)",
                    (list(flag_set), modseq, mailbox_id, [int(r[1]) for r in group]),
                )
                updated.extend(
                    self._message((r[0], r[1], modseq, flag_set, r[4], r[5], r[6]))
                    for r in group
                )
            tx.changed(mailbox_id, modseq)
            updated.sort(key=lambda m: m.uid)
            return StoreFlagsResult(tuple(updated), tuple(unchanged), tuple(failed))

        return await self._write(wop)

    async def _expunge(
        self, tx: _Tx, mailbox_id: int, uids: Sequence[int], *, charge: bool = True
    ) -> list[int]:
        c = tx.conn
        mb = await self._fetchone(
            c, "SELECT account_id FROM mailboxes WHERE id = %s FOR UPDATE", (mailbox_id,)
        )
        if mb is None:
            return []
        rows = await self._fetchall(
            c,
            "DELETE FROM messages WHERE mailbox_id = %s AND uid = ANY(%s)"
            " RETURNING uid, size, blob_id",
            (mailbox_id, sorted({int(u) for u in uids})),
        )
        if not rows:
            return []
        modseq = await self._bump_modseq(c, mailbox_id)
        gone = sorted(int(r[0]) for r in rows)
        # RFC 7162 3.2.10: expunged UIDs are remembered with their MODSEQ for VANISHED.
        await c.execute(
            "INSERT INTO expunged(mailbox_id, uid, modseq) SELECT %s, u, %s"
            " FROM unnest(%s::bigint[]) u"
            " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
            (mailbox_id, modseq, gone),
        )
        if charge:
            await self._charge(tx, int(mb[0]), -sum(int(r[1]) for r in rows), -len(rows))
        counts: dict[str, int] = {}
        for r in rows:
            counts[str(r[2])] = counts.get(str(r[2]), 0) + 1
        await self._unref_blobs(tx, counts)
        tx.changed(mailbox_id, modseq)
        return gone

    async def expunge(
        self, mailbox_id: int, uids: Sequence[int], *, guard: Guard | None = None
    ) -> list[int]:
        if not uids and guard is None:
            return []

        async def op(tx: _Tx) -> list[int]:
            if guard is not None:
                await guard(self._tx(tx))
            return await self._expunge(tx, mailbox_id, uids) if uids else []

        return await self._write(op)

    async def _copy(
        self, tx: _Tx, src: int, uids: Sequence[int], dst: int, *, move: bool,
        guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        c = tx.conn
        allowed: FlagFilter | None = None
        if guard is not None:
            # locks both mailbox rows in ascending id, as the statement below does again
            allowed = await guard(self._tx(tx))
        owners = {
            int(r[0]): int(r[1])
            for r in await self._fetchall(
                c,
                "SELECT id, account_id FROM mailboxes WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                (sorted({src, dst}),),
            )
        }
        if src not in owners or dst not in owners:
            raise NotFound("no such mailbox")
        rows = await self._get_rows(c, src, uids)
        if not rows:
            return []
        same_account = owners[src] == owners[dst]
        await c.execute(
            "SELECT 1 FROM accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (sorted({owners[src], owners[dst]}),),
        )
        if not (move and same_account):
            await self._charge(tx, owners[dst], sum(int(r[5]) for r in rows), len(rows))
        first, modseq, _ = await self._allocate(c, dst, len(rows))
        mapping = [(int(r[1]), first + i) for i, r in enumerate(rows)]
        async with c.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO messages({_MSG_COLS}) VALUES {_MSG_VALUES}",
                [
                    # RFC 4314 4: a copy keeps only the flags the actor may set in the target
                    (dst, new_uid, modseq,
                     r[3] if allowed is None else [f for f in r[3] if allowed(f)],
                     r[4], r[5], r[6])
                    for (_old, new_uid), r in zip(mapping, rows, strict=True)
                ],
            )
        counts: dict[str, int] = {}
        for r in rows:
            counts[str(r[6])] = counts.get(str(r[6]), 0) + 1
        await self._ref_blobs(tx, counts)
        tx.changed(dst, modseq)
        if move:
            await self._expunge(tx, src, [m[0] for m in mapping], charge=not same_account)
        return mapping

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        return await self._write(
            lambda tx: self._copy(
                tx, src_mailbox_id, uids, dst_mailbox_id, move=False, guard=guard)
        )

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        return await self._write(
            lambda tx: self._copy(
                tx, src_mailbox_id, uids, dst_mailbox_id, move=True, guard=guard)
        )

    async def expunge_older_than(self, mailbox_id: int, cutoff: datetime) -> list[int]:
        rows = await self._all(
            "SELECT uid FROM messages WHERE mailbox_id = %s AND internaldate < %s",
            (mailbox_id, cutoff),
        )
        uids = [int(r[0]) for r in rows]
        return await self.expunge(mailbox_id, uids) if uids else []

    # -- one message accepted: local copies and queue entries in one transaction

    async def deliver_and_queue(
        self, local: LocalCopies | None, queued: QueueAddition | None,
        trace: Sequence[TraceEvent] = (),
    ) -> tuple[list[MessageRecord], list[int]]:
        done = await self.deliver_each(local, queued, trace=trace)  # store.core.fanout
        return list(done.records), list(done.queue_ids)

    # -- MULTIAPPEND (RFC 3502): all or nothing ----------------------------------------------

    async def append_many(
        self, mailbox_id: int, items: Sequence[AppendItem], *, guard: Guard | None = None
    ) -> list[MessageRecord]:
        """Every message of one APPEND in one transaction: a failure of any (quota, mailbox
        gone) rolls all of them back.  The bytes are uploaded first, as for `append`."""
        if not items:
            return []
        first: dict[str, StagedBlob] = {}
        counts: dict[str, int] = {}
        for it in items:
            first.setdefault(it.blob.blob_id, it.blob)
            counts[it.blob.blob_id] = counts.get(it.blob.blob_id, 0) + 1
        for blob_id in sorted(first):
            await self._upload(first[blob_id])
        total = sum(it.blob.size for it in items)
        rows = [
            (_flag_list(it.flags), (it.internaldate or datetime.now(UTC)).timestamp(), it.blob)
            for it in items
        ]

        async def op(tx: _Tx) -> list[MessageRecord]:
            # RFC 4314 4: the rights, read in this transaction after the mailbox row is
            # locked, say whether the actor may append and which flags they may set
            allowed = None if guard is None else await guard(self._tx(tx))
            # locks in the house order: the mailbox, the account, then blobs by id
            uid0, modseq, account_id = await self._allocate(tx.conn, mailbox_id, len(rows))
            charged = await self._charge_send(tx, account_id, total, len(rows))
            out: list[MessageRecord] = []
            for i, (given, when, blob) in enumerate(rows):
                flist = given if allowed is None else [f for f in given if allowed(f)]
                await tx.conn.execute(
                    f"INSERT INTO messages({_MSG_COLS}) VALUES {_MSG_VALUES}",
                    (mailbox_id, uid0 + i, modseq, flist, when, blob.size, blob.blob_id),
                )
                out.append(self._message(
                    (mailbox_id, uid0 + i, modseq, flist, when, blob.size, blob.blob_id)
                ))
            for blob_id in sorted(first):
                await self._ref_blob(tx, first[blob_id], counts[blob_id])
            for it in items:
                if it.blob is not first[it.blob.blob_id]:
                    extra = functools.partial(self._blob_storage().discard_staged, it.blob)
                    tx.after_commit.append(extra)
            await self._charge_check(charged, account_id, total)
            tx.changed(mailbox_id, modseq)
            return out

        return await self._write(op, pipelined=True)

    # -- IMAP REPLACE (RFC 8508) and SAVEDATE (RFC 8514) ----------------------------------------

    async def replace_message(
        self, mailbox_id: int, uid: int, dst_mailbox_id: int, item: AppendItem
    ) -> tuple[MessageRecord, list[int]]:
        blob = item.blob
        await self._upload(blob)
        flist = _flag_list(item.flags)
        when = (item.internaldate or datetime.now(UTC)).timestamp()

        async def op(tx: _Tx) -> tuple[MessageRecord, list[int]]:
            # the expunge first, so the quota counts the message being replaced as gone
            gone = await self._expunge(tx, mailbox_id, [uid])
            if not gone:
                raise NotFound("the message to replace was expunged")
            uid0, modseq, account_id = await self._allocate(tx.conn, dst_mailbox_id, 1)
            charged = await self._charge_send(tx, account_id, blob.size, 1)
            values = (dst_mailbox_id, uid0, modseq, flist, when, blob.size, blob.blob_id)
            await tx.conn.execute(f"INSERT INTO messages({_MSG_COLS}) VALUES {_MSG_VALUES}", values)
            await self._ref_blob(tx, blob, 1)
            await self._charge_check(charged, account_id, blob.size)
            tx.changed(dst_mailbox_id, modseq)
            return self._message(values), gone

        return await self._write(op)

    async def save_dates(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, float | None]:
        rows = await self._all(
            "SELECT uid, savedate FROM messages WHERE mailbox_id = %s AND uid = ANY(%s)",
            (mailbox_id, sorted({int(u) for u in uids})),
        )
        return {int(r[0]): None if r[1] is None else float(r[1]) for r in rows}

    async def listing(self, mailbox_id: int) -> MessageListing:
        """Every message by UID; large mailboxes are kept in memory and refreshed by MODSEQ.

        As in the embedded store (and Dovecot's index), a warm listing costs only the delta:
        rows whose MODSEQ is above the cached HIGHESTMODSEQ plus the `expunged` rows. This is
        safe with several nodes because every change, from any node, bumps HIGHESTMODSEQ and
        stamps its rows in the same transaction, and the three reads share one snapshot.
        """
        cached = self._listings.get(mailbox_id)
        base = cached.modseq if cached is not None else None

        async def run(conn: Conn) -> tuple[Any, list[Any], list[Any]]:
            async with conn.pipeline():  # one round trip, one snapshot
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                mb_cur = await conn.execute(
                    "SELECT highestmodseq FROM mailboxes WHERE id = %s", (mailbox_id,)
                )
                if base is None:
                    rows_cur = await conn.execute(
                        f"SELECT {_MSG_SELECT} FROM messages WHERE mailbox_id = %s ORDER BY uid",
                        (mailbox_id,),
                    )
                    gone_cur = None
                else:
                    rows_cur = await conn.execute(
                        f"SELECT {_MSG_SELECT} FROM messages WHERE mailbox_id = %s"
                        " AND modseq > %s ORDER BY uid",
                        (mailbox_id, base),
                    )
                    gone_cur = await conn.execute(
                        "SELECT uid FROM expunged WHERE mailbox_id = %s AND modseq > %s",
                        (mailbox_id, base),
                    )
                await conn.execute("COMMIT")
            gone = await gone_cur.fetchall() if gone_cur is not None else []
            return await mb_cur.fetchone(), await rows_cur.fetchall(), gone

        mb, rows, gone = await self._run(run)
        if mb is None:
            self._forget_listing(mailbox_id)
            return MessageListing(mailbox_id, 0, {})
        modseq = int(mb[0])
        if cached is None:
            records = {int(r[1]): self._message(r) for r in rows}
        elif modseq == cached.modseq:
            self._listings.move_to_end(mailbox_id)
            return cached
        else:
            records = dict(cached.records)  # a listing, once handed out, never changes
            for (uid,) in gone:
                records.pop(int(uid), None)
            for r in rows:
                uid = int(r[1])
                if uid in records:
                    records[uid] = self._message(r)
            # new UIDs are above every cached one: appending keeps UID order
            for r in rows:
                if int(r[1]) not in records:
                    records[int(r[1])] = self._message(r)
        listing = MessageListing(mailbox_id, modseq, records)
        self._forget_listing(mailbox_id)
        if len(listing) >= self.listing_min_size:
            self._listings[mailbox_id] = listing
            self._listed += len(listing)
            while self._listed > self.listing_max_records and self._listings:
                _mb, dropped = self._listings.popitem(last=False)
                self._listed -= len(dropped)
        return listing

    def _forget_listing(self, mailbox_id: int) -> None:
        old = self._listings.pop(mailbox_id, None)
        if old is not None:
            self._listed -= len(old)


# -- file helpers (run in threads) -----------------------------------------------------------


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
