"""SQLite access: one writer thread with group commit, a small pool of reader threads.

Group commit: write operations queue up while the previous batch is committing; the writer takes
every queued operation, runs each inside its own SAVEPOINT (so one failure rolls back only that
operation), fsyncs the blob directories they touched once, then commits the whole batch with one
WAL fsync (synchronous=FULL). Only then are the callers' futures resolved, so nobody sees success
before the data is durable. Under load, many deliveries share one fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mailwright.store.api import StorageFull
from mailwright.store.sqlite.writelock import WriteLock

T = TypeVar("T")


@dataclass
class WriteContext:
    """Handed to each write operation: the connection, plus after-commit work."""

    conn: sqlite3.Connection
    dirty_dirs: set[Path] = field(default_factory=set)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def connect(path: Path, *, fsync: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    # the clock of the store's rules (store.core.tx): UNIX seconds, as times are kept here
    conn.create_function("mw_clock", 0, time.time)
    conn.create_function("mw_clock_after", 1, lambda seconds: time.time() + float(seconds))
    return conn


def _is_full(e: BaseException) -> bool:
    return isinstance(e, sqlite3.OperationalError) and "full" in str(e).lower()


class Database:
    def __init__(
        self, path: Path, *, fsync: bool = True, readers: int = 4, process_lock: bool = True
    ) -> None:
        self.path = path
        self.fsync = fsync
        # several processes may write this database: take turns in the kernel (writelock.py)
        self.process_lock = process_lock
        self._write_lock: WriteLock | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.sync_dirs: Callable[[set[Path]], None] = lambda dirs: None
        # short reads on the caller's thread (see ReadCosts); off: every read in the pool
        self.inline_reads = True
        self.costs = ReadCosts()
        self.batches = 0
        self.operations = 0

    # -- lifecycle

    def start(self, init: Callable[[sqlite3.Connection], object]) -> None:
        conn = connect(self.path, fsync=self.fsync)
        if self.process_lock:
            self._write_lock = WriteLock(self.path.with_name(self.path.name + ".writelock"))
        init(conn)
        self._writer = threading.Thread(
            target=self._run_writer, args=(conn,), name="sqlite-writer", daemon=True
        )
        self._writer.start()

    def stop(self) -> None:
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
            self._writer = None
        if self._write_lock is not None:
            self._write_lock.close()
            self._write_lock = None
        self._readers.shutdown(wait=True)
        with self._lock:
            for c in self._reader_conns:
                c.close()
            self._reader_conns.clear()

    # -- writes

    async def write(self, op: Callable[[WriteContext], T]) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((op, fut, loop))
        return await fut

    def write_sync(self, op: Callable[[WriteContext], T]) -> T:
        """For CLI use outside an event loop."""
        done = threading.Event()
        box: list[Any] = []

        def settle(ok: bool, value: Any) -> None:
            box.append((ok, value))
            done.set()

        self._queue.put((op, settle, None))
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _run_writer(self, conn: sqlite3.Connection) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            if self._write_lock is not None:
                # Waiting for another process's writer: what queues meanwhile joins this batch
                # (taken before draining the queue); `_run_batch` releases it after COMMIT.
                self._write_lock.acquire()
            batch = [item]
            while len(batch) < 512:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._run_batch(conn, batch)
        conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        results: list[tuple[bool, Any]] = []
        ctx = WriteContext(conn)
        lock = self._write_lock  # held since `_run_writer` took it
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, _fut, _loop in batch:
                conn.execute("SAVEPOINT op")
                mark = len(ctx.after_commit)
                try:
                    value = op(ctx)
                except BaseException as e:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    del ctx.after_commit[mark:]
                    results.append((False, StorageFull(str(e)) if _is_full(e) else e))
                else:
                    conn.execute("RELEASE op")
                    results.append((True, value))
            self.sync_dirs(ctx.dirty_dirs)
            conn.execute("COMMIT")
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            err = StorageFull(str(e)) if _is_full(e) else e
            results = [(False, err)] * len(batch)
            ctx.after_commit.clear()
        finally:
            if lock is not None:
                lock.release()
        self.batches += 1
        self.operations += len(batch)
        for fn in ctx.after_commit:
            with contextlib.suppress(Exception):
                fn()
        for (ok, value), (_op, fut, loop) in zip(results, batch, strict=True):
            if loop is None:
                fut(ok, value)
            else:
                loop.call_soon_threadsafe(_settle, fut, ok, value)

    # -- reads

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, fsync=self.fsync)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read in a snapshot of its own; a read known to be short runs on the caller's
        thread (the event loop) rather than in the pool (`ReadCosts`)."""
        site = read_site(op)
        if self.inline_reads and self.costs.inline(site):
            start = time.thread_time()
            try:
                return self._read_sync(op)
            finally:
                self.costs.ran_inline(site, time.thread_time() - start)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: self._timed_read(op, site))

    def _timed_read(self, op: Callable[[sqlite3.Connection], T], site: object) -> T:
        start = time.thread_time()
        try:
            return self._read_sync(op)
        finally:
            self.costs.ran_in_pool(site, time.thread_time() - start)

    def _read_sync(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            return op(conn)
        finally:
            conn.execute("COMMIT")

    def read_sync(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return self._readers.submit(self._read_sync, op).result()


def read_site(op: Callable[..., Any]) -> object:
    """What identifies a read for `ReadCosts`: the code of the rule it runs (the store's
    generic view wraps each rule in the same lambda, so the rule in its closure is the one
    that tells reads apart), else the code of `op` itself."""
    for cell in getattr(op, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        code = getattr(inner, "__code__", None)
        if code is not None:
            return code
    return getattr(op, "__code__", op)


class ReadCosts:
    """Which reads are short enough to run on the event loop instead of a reader thread.

    A hand-off to a reader thread and back costs more CPU than most point lookups themselves
    (measured on SMTP fan-out: 50 recipient lookups per message, submit, wake-up and future
    callbacks about 40 % of the busy time). So each kind of read (`read_site`) runs in the
    pool until `WARM` runs in a row took under `SHORT` seconds of the thread's CPU time (not
    of the clock: a thread waiting for the GIL or for a core on a busy machine is not doing
    the read's work); then it runs on the caller's thread, still timed:
    one inline run over `LONG` sends it back to the pool to be measured again, and after
    `STRIKES` of those it stays there. The loop is blocked at worst for one such run per
    strike. WAL readers never wait for the writer, so an inline read does not wait on a lock.
    """

    SHORT = 0.0003
    LONG = 0.002
    WARM = 16
    STRIKES = 3

    def __init__(self) -> None:
        self._fast: dict[object, int] = {}  # site -> pool runs in a row under SHORT
        self._strikes: dict[object, int] = {}
        self.inline_runs = 0

    def inline(self, site: object) -> bool:
        return self._fast.get(site, 0) >= self.WARM

    def ran_in_pool(self, site: object, seconds: float) -> None:
        if self._strikes.get(site, 0) >= self.STRIKES:
            return
        if seconds < self.SHORT:
            if len(self._fast) < 10_000:  # sites are code objects: a few hundred at most
                self._fast[site] = self._fast.get(site, 0) + 1
        else:
            self._fast.pop(site, None)

    def ran_inline(self, site: object, seconds: float) -> None:
        self.inline_runs += 1
        if seconds > self.LONG:
            self._fast.pop(site, None)
            self._strikes[site] = self._strikes.get(site, 0) + 1


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
