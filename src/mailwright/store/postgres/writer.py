"""Group commit on PostgreSQL: the units of work of many sessions in one transaction.

Theory of operation. A unit of work (`PostgresStore._unit`: a delivery, a queue change, an
account change...) is queued here instead of taking a connection and a transaction of its
own. A writer task takes every unit queued so far (up to `max_batch`) and runs them one after
the other on one connection, in libpq pipeline mode, inside one transaction:

    BEGIN; SAVEPOINT u; <unit 1>; RELEASE u; SET LOCAL lock_timeout; SAVEPOINT u; <unit 2>;
    RELEASE u; ...; NOTIFY; COMMIT

and only when COMMIT has returned are the units' callers answered. What this buys, as the
SQLite writer's group commit does: one COMMIT, so one WAL flush, for the whole batch, and rows
that many sessions write (the mailbox row a delivery takes for its UID) are locked for the
time of the statements, not for the time of a flush. Units queued while a batch runs form the
next one; with `writers` > 1 that many batches may be in flight at once.

House rules:

- **Each unit stands alone.** A unit that fails (a store error such as QuotaExceeded, or any
  database error) is rolled back to its SAVEPOINT and its caller gets the error at once (its
  changes can never commit); the other units of the batch go on. A unit's after-commit work
  and change notifications are kept only if it succeeded.
- **Nothing is answered before COMMIT returned**: a result is handed to its caller after the
  batch's COMMIT, never before. If the connection breaks before COMMIT was sent, nothing was
  committed and every unit of the batch runs again in a later batch; if it breaks while COMMIT
  may have reached the server, the outcome is unknown and every unit of the batch gets the
  error (a caller that never heard "done" must not say so). Units run again after a broken
  batch run one per batch, so that one unit cannot keep breaking the others' batches.
- **No deadlock through a batch.** Each unit takes its locks in the house order (mailboxes,
  accounts, blobs), but a batch holding unit 1's locks and then taking unit 2's would break it.
  So only the first unit of a batch may wait for a lock; every later unit runs under a short
  `lock_timeout`, and one that would wait is rolled back to its SAVEPOINT and put first in the
  queue, to run at the head of a later batch. Deadlocks and serialization failures of the
  first unit are retried as before.
- **Errors are attributed to their unit.** In pipeline mode a statement's error arrives at the
  next sync; a unit ends with its deferred checks (`_Tx.checks`: the answer of a quota charge,
  read only there) and a sync, so its errors are its own, and a unit over quota is rolled
  back to its SAVEPOINT like any other failed unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors

from mailwright.store.api import AlreadyExists, NotFound, StagedBlob, StorageFull, StoreError

if TYPE_CHECKING:
    from mailwright.store.postgres.store import PostgresStore, _Tx

log = logging.getLogger("mailwright.store")

#: How long a unit after the first of a batch may wait for a row lock before it is put back.
LOCK_TIMEOUT = "50ms"
#: Attempts of one unit (deadlock, serialization failure, lock wait in a batch, lost
#: connection before COMMIT), as `PostgresStore._write` retries a transaction.
RETRIES = 8


def translate(e: BaseException) -> BaseException:
    """A database error as the store error the rules and callers know, else itself."""
    if isinstance(e, errors.UniqueViolation):
        return AlreadyExists(str(e).splitlines()[0])
    if isinstance(e, errors.ForeignKeyViolation):
        return NotFound(str(e).splitlines()[0])
    if isinstance(e, psycopg.Error) and (e.sqlstate or "").startswith("53"):
        return StorageFull(" ".join(str(e).split()))
    return e


def _retryable(e: BaseException) -> bool:
    return isinstance(e, errors.DeadlockDetected | errors.SerializationFailure
                      | errors.LockNotAvailable)


@dataclass(eq=False)
class _Unit:
    fn: Callable[[_Tx], Awaitable[Any]]
    future: asyncio.Future[Any]
    attempts: int = 0
    result: Any = None
    tx: _Tx | None = None
    solo: bool = False  # runs in a batch of its own (its last batch broke as a whole)


class _BlobsMissing(Exception):
    """A unit referenced blobs of which at least one has no row (see `GroupCommit.run`)."""

    def __init__(self, blobs: list[StagedBlob]) -> None:
        super().__init__("staged blob row missing")
        self.blobs = blobs


@dataclass(eq=False)
class _Broken(Exception):
    """The batch failed as a whole; `committing`: COMMIT may have been applied (the
    connection broke while it was in flight), so the outcome is unknown."""

    error: BaseException
    committing: bool = False


@dataclass
class GroupCommit:
    """The group-commit writer of one `PostgresStore` (see the module's rules)."""

    store: PostgresStore
    writers: int = 2
    max_batch: int = 64
    _queue: deque[_Unit] = field(default_factory=deque)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    batches: int = 0  # batches committed (diagnostics and tests)
    units: int = 0  # units committed

    async def run(self, fn: Callable[[_Tx], Awaitable[Any]]) -> Any:
        """Run `fn` as one unit of a batch; its result once the batch has committed."""
        for _ in range(3):
            unit = _Unit(fn, asyncio.get_running_loop().create_future())
            self._queue.append(unit)
            self._kick()
            try:
                return await unit.future
            except _BlobsMissing as missing:
                # a staged blob's row is gone (PostgresTx.ref_blob): upload it again, outside
                # any batch, and run the unit once more
                for blob in missing.blobs:
                    await self.store._upload(blob)
        return await self.store._write(fn, pipelined=True)

    def _kick(self) -> None:
        if self._queue and len(self._tasks) < self.writers:
            task = asyncio.create_task(self._drain(), name="pg-group-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Wait for the batches in flight (and the units queued behind them)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _drain(self) -> None:
        while self._queue:
            batch: list[_Unit] = []
            while self._queue and len(batch) < self.max_batch:
                if batch and (batch[0].solo or self._queue[0].solo):
                    break
                unit = self._queue.popleft()
                if not unit.future.done():  # a caller that went away before it ran
                    batch.append(unit)
            if batch:
                try:
                    await self._batch(batch)
                except BaseException as e:  # noqa: BLE001 - every caller hears of it
                    for unit in batch:
                        if not unit.future.done():
                            unit.future.set_exception(e if isinstance(e, Exception)
                                                      else StoreError("store closing"))
                    if not isinstance(e, Exception):
                        raise

    def _again(self, unit: _Unit, error: BaseException, *, first: bool = False) -> None:
        """Queue a unit once more, or give up with `error` after `RETRIES` attempts."""
        unit.attempts += 1
        unit.tx = None
        if unit.future.done():  # its caller went away
            return
        if unit.attempts >= RETRIES:
            unit.future.set_exception(translate(error))
        elif first:
            self._queue.appendleft(unit)
        else:
            self._queue.append(unit)

    async def _batch(self, batch: list[_Unit]) -> None:
        try:
            done = await self._run_batch(batch)
        except _Broken as b:
            for unit in batch:
                if unit.future.done():
                    continue
                if b.committing:  # COMMIT may have been applied: the outcome is unknown
                    unit.future.set_exception(translate(b.error))
                else:
                    # nothing was committed: every unit runs again, each in a batch of its
                    # own, so that a unit that breaks its connection every time (a statement
                    # that crashes its server process) takes no other unit down with it
                    unit.solo = unit.solo or len(batch) > 1
                    self._again(unit, b.error)
            self._kick()
            return
        if not done:
            return
        self.batches += 1
        self.units += len(done)
        store = self.store
        for unit in done:
            assert unit.tx is not None
            for mb, ms in unit.tx.notify.items():
                store.publish(mb, ms)
            for cb in unit.tx.after_commit:
                try:
                    cb()
                except Exception:  # noqa: BLE001 - cache upkeep only
                    log.debug("after-commit work failed", exc_info=True)
            if not unit.future.done():
                unit.future.set_result(unit.result)

    async def _run_batch(self, batch: list[_Unit]) -> list[_Unit]:
        """Run the units in one transaction; the ones that succeeded once COMMIT returned."""
        from mailwright.store.postgres.store import CHANNEL, _Tx

        store = self.store
        done: list[_Unit] = []
        committing = False
        try:
            async with store.pool.connection() as conn, conn.pipeline() as pipe:
                await conn.execute("BEGIN")
                for unit in batch:
                    if done and len(done) == 1:
                        # from the second unit that holds locks on: never wait long (rules)
                        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                    await conn.execute("SAVEPOINT unit")
                    unit.tx = _Tx(conn, pipe, refs=[])
                    try:
                        unit.result = await unit.fn(unit.tx)
                        for check in unit.tx.checks:  # deferred checks (a quota charge)
                            await check()
                        await pipe.sync()  # this unit's errors arrive here, not later
                    except Exception as e:  # noqa: BLE001 - the unit's own failure
                        if conn.closed or conn.broken:
                            raise _Broken(e) from e
                        with contextlib.suppress(psycopg.Error):
                            await pipe.sync()
                        await conn.execute("ROLLBACK TO SAVEPOINT unit")
                        await conn.execute("RELEASE SAVEPOINT unit")
                        if _retryable(e):
                            self._again(unit, e, first=isinstance(e, errors.LockNotAvailable))
                        elif unit.future.done():
                            pass  # its caller went away: nobody to tell
                        elif isinstance(e, errors.DivisionByZero) and unit.tx.refs:
                            unit.future.set_exception(_BlobsMissing(list(unit.tx.refs)))
                        else:
                            unit.future.set_exception(translate(e))
                        continue
                    await conn.execute("RELEASE SAVEPOINT unit")
                    done.append(unit)
                notify: dict[int, int] = {}
                for unit in done:
                    assert unit.tx is not None
                    for mb, ms in unit.tx.notify.items():
                        notify[mb] = max(ms, notify.get(mb, 0))
                if notify:
                    await conn.execute(
                        "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) p",
                        (CHANNEL, [f"{mb}:{ms}" for mb, ms in notify.items()]),
                    )
                committing = True
                await conn.execute("COMMIT")
                await pipe.sync()
        except _Broken:
            raise
        except psycopg.Error as e:
            raise _Broken(e, committing and _lost(e)) from e
        return done


def _lost(e: BaseException) -> bool:
    from mailwright.store.postgres.store import _connection_lost

    return _connection_lost(e)
