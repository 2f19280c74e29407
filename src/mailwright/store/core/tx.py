"""The transaction interface the store's rules are written against, and what each backend
implements in its own SQL.

Theory of operation: every rule of the store (who may touch a queue entry, what a lease is,
which Sieve script is active, how a spam lesson is taken back...) is an ``async`` function of a
`Tx`. A backend runs such a function as one unit of work (`Backend._unit`: one transaction,
durable before it returns, retried by the backend when its database asks for it) or as a read
(`Backend._view`). The rules speak a small portable SQL: PostgreSQL's, with ``?`` placeholders,
``ON CONFLICT``, ``RETURNING`` and row-value ``IN``; a backend translates only what its engine
spells otherwise (placeholders, ``FOR UPDATE``, lists of values) and converts values:

- times are aware `datetime` objects going in; coming out they are whatever the engine keeps
  (a float on SQLite), so rules read them with `as_time`;
- JSON columns take text going in and are read with `as_json`;
- booleans are Python bools going in and read with ``bool()``.

A rule never takes a clock of its own: it writes ``mw_clock()`` (now) and ``mw_clock_after(?)``
(that many seconds from now) in its SQL, and the database's clock answers, so that the nodes
sharing one PostgreSQL need not agree on the time (leases, vacation memory). SQLite defines
the two as functions of the connection; PostgreSQL's translation spells them with
``clock_timestamp()``.

The SQLite backend runs its units on its single writer thread, synchronously: its `Tx` methods
never suspend, and `drive` runs a rule's coroutine to its end without an event loop.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

from mailwright.store.api import MessageRecord, StagedBlob
from mailwright.store.blobstore import BlobStorage

T = TypeVar("T")
Row = tuple[Any, ...]


class Tx(Protocol):
    """One transaction (or one read snapshot) of a backend.

    Constraint violations come out as store errors: a unique key as `AlreadyExists`, a missing
    referenced row as `NotFound`; any other database error propagates and the unit rolls back.
    """

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of a query."""
        ...

    async def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, or None."""
        ...

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """A statement without result rows; the number of rows it changed."""
        ...

    async def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """One statement for each parameter row, in order (batched by the backend)."""
        ...

    def values(self, items: Sequence[Any]) -> tuple[str, list[Any]]:
        """A list of values for ``x IN (...)``: the parenthesised SQL and its parameters.

        However long the list, the backend binds it as a constant number of parameters where
        it can (a JSON array on SQLite, an array on PostgreSQL)."""
        ...

    def text_list(self, items: Sequence[str]) -> Any:
        """A list of strings as a column value (a JSON array on SQLite, text[] on PostgreSQL);
        read back with `as_list`."""
        ...

    def changed(self, mailbox_id: int, modseq: int) -> None:
        """After COMMIT, wake the sessions watching the mailbox (on every node)."""
        ...

    async def new_uidvalidity(self) -> int:
        """A UIDVALIDITY never given before in this database (RFC 9051 2.3.1.1)."""
        ...

    async def charge(self, account_id: int, octets: int, messages: int) -> None:
        """Change the account's usage; QuotaExceeded when an increase would exceed the quota,
        NotFound when there is no such account."""
        ...

    async def ref_blob(self, blob: StagedBlob, n: int) -> None:
        """Add `n` references to a staged blob, storing it if it is new (or was released)."""
        ...

    async def unref_blob(self, blob_id: str, n: int) -> None:
        """Drop `n` references; a blob nobody references is released, and kept until the
        collector's grace period has passed (RFC 2180 4.1)."""
        ...

    async def insert_messages(self, records: Sequence[MessageRecord]) -> None:
        """Insert message rows (UIDs and MODSEQs already allocated, blob references added
        by the caller) as one batch; the backend spells the flags and the date its way."""
        ...

    async def guard_blob(self, blob_id: str) -> None:
        """Until the end of this unit, no other unit may store or revive this blob's content
        (`ref_blob` takes the same guard): the collector's check that no row names a blob
        and its removal are then one step. SQLite's single writer is such a guard already;
        PostgreSQL with files takes an advisory lock on the id."""
        ...

    async def drop_blob(self, blob_id: str) -> None:
        """Remove a blob's content from the blob storage, before this unit's COMMIT (the
        collector, once it deleted the row or found none, under `guard_blob`)."""
        ...

    async def rows_batch(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """Several queries, run in order, and every row of each: one round trip to the
        database where the backend can send them together (PostgreSQL in pipeline mode).
        A query must not depend on an earlier one's result. Outside a unit of work (a
        view) the queries see one snapshot: the core reads a mailbox row and its changes
        with one call (`changes_since`)."""
        ...


    # -- messages (store.core.messages, store.core.listing)

    @property
    def message_columns(self) -> str:
        """The select list of a message row (mailbox id, UID, MODSEQ, flags, internal date,
        size, blob id) in the backend's spelling, for `records` to read."""
        ...

    def records(self, rows: Sequence[Row]) -> list[MessageRecord]:
        """Rows selected with `message_columns` as records; equal flag sets are one object
        (a 100,000-message mailbox has few distinct combinations)."""
        ...

    def has_flag(self, column: str, flag: str) -> tuple[str, list[Any]]:
        """A condition that the flags `column` holds `flag`: its SQL and parameters."""
        ...

    async def set_flags(
        self, mailbox_id: int, modseq: int, changes: Sequence[tuple[int, frozenset[str]]]
    ) -> None:
        """New flags of messages (UID, flags), each stamped with `modseq`, as one batch."""
        ...

    async def record_expunged(self, mailbox_id: int, modseq: int, uids: Sequence[int]) -> None:
        """Remember expunged UIDs with the MODSEQ of their expunge (RFC 7162 3.2.10), as one
        batch."""
        ...

    async def change_refs(self, deltas: dict[str, int]) -> None:
        """Add (positive) or drop (negative) references to blobs that message rows reference
        already, as one batch, in id order; a blob left with none is released as by
        `unref_blob`."""
        ...


class Backend(Protocol):
    """What a backend gives the core: units of work, reads, staging of blobs, and its blob
    storage."""

    async def _unit(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `fn` as one transaction: all of its changes, durable, or none of them.

        A backend may send its statements without waiting for each answer (PostgreSQL's
        pipeline mode, and its group commit: several units in one transaction, each in a
        savepoint): an error may then surface at a later statement of the unit, or at its
        end (a quota check, `Tx.charge`), so `fn` must not catch a store error to carry on."""
        ...

    async def _view(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run reads; `fn` must not change anything."""
        ...

    async def _stage(self, blob: StagedBlob) -> None:
        """Make a staged blob available to a later unit's `Tx.ref_blob` (PostgreSQL uploads
        the bytes in a transaction of their own, so a large message holds no lock)."""
        ...

    def _blob_storage(self) -> BlobStorage:
        """Where the backend keeps message content (`store.blobstore`): what the core reads
        stored and staged blobs from, and what its garbage collector walks."""
        ...


#: May the acting account set or clear this flag (RFC 4314 4)?
FlagFilter = Callable[[str], bool]
#: A rights check (store.core.acl) a backend runs first in the unit of work of a message
#: operation, so that the check and the change are one transaction: it raises AccessDenied
#: (or NotFound), else answers which flags the operation may set (None: every one).
Guard = Callable[[Tx], Awaitable[FlagFilter | None]]


def drive(aw: Awaitable[T]) -> T:
    """Run a rule whose every await completes at once (a synchronous backend's `Tx`)."""
    coro = cast("Coroutine[Any, Any, T]", aw)
    try:
        coro.send(None)
    except StopIteration as done:
        return cast("T", done.value)
    coro.close()
    raise RuntimeError("a store rule waited on I/O inside a synchronous transaction")


def as_time(value: Any) -> datetime:
    """A time column as an aware UTC datetime (SQLite keeps UNIX seconds)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


def as_json(value: Any) -> Any:
    """A JSON column as Python values (SQLite keeps the text; PostgreSQL's jsonb is decoded)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def as_list(value: Any) -> list[str]:
    """A `Tx.text_list` column as a list of strings."""
    return [str(v) for v in as_json(value)]
