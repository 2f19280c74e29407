"""Group commit on PostgreSQL (store/postgres/writer.py): several sessions' units of work in
one transaction, each unit in a SAVEPOINT of its own.

What must hold: a unit that fails leaves the others of its batch committed; a caller hears
"done" only once the batch's COMMIT returned (another connection sees the rows by then); a
connection that breaks before COMMIT loses nothing that was answered, and the units that were
not answered run again, each alone, so a unit that keeps breaking its connection fails by
itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from mailwright.store.api import AlreadyExists, AppendItem, QuotaExceeded, StagedBlob, Usage
from mailwright.store.core.messages import add_messages
from mailwright.store.core.tx import Tx
from mailwright.store.postgres import PostgresStore
from mailwright.store.postgres.store import INLINE_MAX
from tests.support.pg import fresh_dsn, make_postgres_store

pytestmark = pytest.mark.postgres


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[PostgresStore]:
    s = await make_postgres_store(tmp_path)
    await s.open()
    assert s.group_commit is not None
    s.group_commit.writers = 1  # one batch at a time: the tests decide what shares a batch
    async with s.pool.connection() as conn:
        await conn.execute("CREATE TABLE gc_probe(id int PRIMARY KEY, txid bigint)")
    try:
        yield s
    finally:
        await s.close()


def _insert(n: int) -> object:
    async def op(tx: Tx) -> int:
        row = await tx.row("INSERT INTO gc_probe(id, txid) VALUES (?, txid_current())"
                           " RETURNING txid", (n,))
        assert row is not None
        return int(row[0])

    return op


async def _ids(store: PostgresStore) -> list[int]:
    # a connection of its own, outside the writer: what is committed
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT id FROM gc_probe ORDER BY id")
        return [int(r[0]) for r in await cur.fetchall()]


async def _behind_a_held_batch(store: PostgresStore, units: list[object]) -> list[object]:
    """Run `units` as one batch: they are queued while a first unit holds the only writer."""
    release = asyncio.Event()
    started = asyncio.Event()

    async def hold(tx: Tx) -> None:
        started.set()
        await release.wait()

    first = asyncio.create_task(store._unit(hold))
    await started.wait()
    tasks = [asyncio.create_task(store._unit(u)) for u in units]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    release.set()
    await first
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_postgres_group_commit_shares_one_transaction(store: PostgresStore) -> None:
    gc = store.group_commit
    assert gc is not None
    before = gc.batches
    results = await _behind_a_held_batch(store, [_insert(1), _insert(2), _insert(3)])
    assert len(set(results)) == 1  # one transaction id: one COMMIT for the three
    assert gc.batches == before + 2  # the held unit's batch, then theirs
    assert await _ids(store) == [1, 2, 3]


async def test_postgres_group_commit_failing_unit_leaves_others(store: PostgresStore) -> None:
    async def duplicate(tx: Tx) -> None:
        await tx.run("INSERT INTO gc_probe(id) VALUES (?)", (20,))
        await tx.run("INSERT INTO gc_probe(id) VALUES (?)", (20,))  # a unique violation

    async def refuses(tx: Tx) -> None:
        await tx.run("INSERT INTO gc_probe(id) VALUES (?)", (30,))
        raise QuotaExceeded("a rule refused after writing")

    results = await _behind_a_held_batch(
        store, [_insert(10), duplicate, _insert(11), refuses, _insert(12)])
    assert isinstance(results[1], AlreadyExists)
    assert isinstance(results[3], QuotaExceeded)
    assert results[0] == results[2] == results[4]  # the three others: one transaction
    assert await _ids(store) == [10, 11, 12]  # neither failed unit left a row


async def test_postgres_group_commit_answers_after_commit(store: PostgresStore) -> None:
    results = await _behind_a_held_batch(store, [_insert(40), _insert(41)])
    assert all(isinstance(r, int) for r in results)
    # each caller was answered: its row is visible to anyone else, so it was committed
    assert await _ids(store) == [40, 41]


async def _kill(conn_pid: int, dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (conn_pid,))


async def test_postgres_group_commit_crash_before_commit(store: PostgresStore) -> None:
    """The batch's server process dies before COMMIT: what was answered before stays; the
    batch's units were not answered and run again, each alone; a unit that kills its
    connection every time fails, alone."""
    await store._unit(_insert(1))  # type: ignore[arg-type]  # answered: must survive
    kills = {"once": 0}

    def killer(n: int, always: bool) -> object:
        async def op(tx: Tx) -> None:
            await tx.run("INSERT INTO gc_probe(id) VALUES (?)", (n,))
            if always or kills["once"] == 0:
                kills["once"] += 1
                row = await tx.row("SELECT pg_backend_pid()")
                assert row is not None
                await _kill(int(row[0]), store.dsn)
                await tx.row("SELECT 1")  # the connection is gone: this fails

        return op

    results = await _behind_a_held_batch(store, [_insert(2), killer(3, False), _insert(4)])
    assert [isinstance(r, int) or r is None for r in results] == [True, True, True]
    assert await _ids(store) == [1, 2, 3, 4]  # each exactly once

    results = await _behind_a_held_batch(store, [_insert(5), killer(6, True), _insert(7)])
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], Exception)
    assert await _ids(store) == [1, 2, 3, 4, 5, 7]


async def test_postgres_group_commit_blob_row_gone_is_uploaded_again(
    store: PostgresStore,
) -> None:
    """A reference in a batch does not wait for its row count: when the uploaded row is gone
    (the collector removed it before any reference), the unit is run again after a new
    upload, and the reference is not lost."""
    w = store.blob_writer()
    # larger than INLINE_MAX: uploaded before its unit (a small blob travels in its unit)
    w.write(b"Subject: gone\r\n\r\n" + b"body\r\n" * (INLINE_MAX // 6 + 1))
    blob = await w.finish()
    assert blob.size > INLINE_MAX
    await store._stage(blob)
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as conn:
        await conn.execute("DELETE FROM blobs WHERE id = %s", (blob.blob_id,))

    async def reference(tx: Tx) -> None:
        await tx.run("INSERT INTO gc_probe(id) VALUES (?)", (50,))
        await tx.ref_blob(blob, 2)

    await store._unit(reference)
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT refs FROM blobs WHERE id = %s", (blob.blob_id,))
        assert await cur.fetchall() == [(2,)]
    assert await _ids(store) == [50]  # the unit's other change, once


# -- the quota check of a message unit (its answer is read at the unit's end) ------------------


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "own-transaction"])
async def test_postgres_quota_is_enforced_on_both_write_paths(
    tmp_path: Path, group_commit: bool
) -> None:
    # A charge's answer is read when the unit ends (`_Tx.checks`), not when it is sent: the
    # group-commit writer ran no such checks, so an APPEND, COPY or MULTIAPPEND over quota
    # was committed there. Both paths must refuse it and leave the usage as it was.
    s = PostgresStore(fresh_dsn(), tmp_path / "data", group_commit=group_commit)
    await s.open()
    try:
        w = s.blob_writer()
        w.write(b"Subject: q\r\n\r\n" + b"x" * 100 + b"\r\n")
        blob = await w.finish()
        await s.add_domain("example.test")
        acc = (await s.add_account("carol@example.test", "x", quota_bytes=blob.size * 2)).id
        inbox = await s.get_mailbox(acc, "INBOX")
        assert inbox is not None
        await s.append(inbox.id, blob)
        with pytest.raises(QuotaExceeded):  # 2 copies fit, 3 do not
            await s.append_many(inbox.id, [AppendItem(blob, (), None)] * 2)
        await s.append(inbox.id, blob)
        with pytest.raises(QuotaExceeded):
            await s.append(inbox.id, blob)
        with pytest.raises(QuotaExceeded):
            await s.copy(inbox.id, [1], inbox.id)
        assert await s.usage(acc) == Usage(blob.size * 2, 2)
        # the refused units allocated no UID that stays: their savepoint took it back
        assert [m.uid for m in await s.list_messages(inbox.id)] == [1, 2]
        if group_commit:
            # in one batch with a unit that fits: the refused one is rolled back alone
            other = (await s.add_account("dave@example.test", "x")).id
            other_inbox = await s.get_mailbox(other, "INBOX")
            assert other_inbox is not None
            assert s.group_commit is not None
            s.group_commit.writers = 1
            batches = s.group_commit.batches
            full, fits = inbox.id, other_inbox.id
            results = await _behind_a_held_batch(s, [
                lambda tx: _append_unit(tx, full, blob), lambda tx: _append_unit(tx, fits, blob),
            ])
            assert isinstance(results[0], QuotaExceeded)
            assert not isinstance(results[1], BaseException)
            assert s.group_commit.batches == batches + 2  # the held unit's, then one for both
            assert await s.usage(acc) == Usage(blob.size * 2, 2)
            assert await s.usage(other) == Usage(blob.size, 1)
    finally:
        await s.close()


async def _append_unit(tx: Tx, mailbox_id: int, blob: StagedBlob) -> object:
    """An APPEND's unit of work, as `MessageRules.append_many` runs it."""
    return await add_messages(tx, mailbox_id, [AppendItem(blob, (), None)], None, 0.0)


# -- small blobs travel in their unit (PostgresTx.ref_blob, PostgresStore._stage) --------------


async def _blob_row(store: PostgresStore, blob_id: str) -> tuple[int, bytes] | None:
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT refs, data FROM blobs WHERE id = %s", (blob_id,))
        row = await cur.fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))


async def _staged(store: PostgresStore, data: bytes) -> StagedBlob:
    w = store.blob_writer()
    w.write(data)
    return await w.finish()


async def test_postgres_small_blob_travels_in_its_unit(store: PostgresStore) -> None:
    """A small blob is not uploaded before its unit: the row, with its bytes, is made by the
    reference; identical content in two units of one batch is one row with both references,
    and content whose row was released (refs 0) is taken back."""
    data = b"Subject: small\r\n\r\nbody\r\n"
    blob = await _staged(store, data)
    await store._stage(blob)
    assert await _blob_row(store, blob.blob_id) is None  # nothing went up before the unit

    def reference(n: int, probe: int) -> object:
        async def op(tx: Tx) -> None:
            await tx.run("INSERT INTO gc_probe(id) VALUES (?)", (probe,))
            await tx.ref_blob(blob, n)

        return op

    results = await _behind_a_held_batch(store, [reference(2, 1), reference(3, 2)])
    assert results == [None, None]
    assert await _blob_row(store, blob.blob_id) == (5, data)
    assert await store.read_blob(blob.blob_id) == data
    # released (what an expunge of every copy leaves), then delivered again
    async with await psycopg.AsyncConnection.connect(store.dsn, autocommit=True) as conn:
        await conn.execute("UPDATE blobs SET refs = 0 WHERE id = %s", (blob.blob_id,))
    again = await _staged(store, data)
    await store._unit(lambda tx: tx.ref_blob(again, 1))
    assert await _blob_row(store, blob.blob_id) == (1, data)
    assert await _ids(store) == [1, 2]


async def test_postgres_small_blob_of_a_failed_unit_leaves_no_row(store: PostgresStore) -> None:
    """The row a small blob's reference made goes with its unit when the unit fails (rolled
    back to its SAVEPOINT), while the batch's other units commit; a later unit with the
    same content makes it again."""
    data = b"Subject: refused\r\n\r\nbody\r\n"
    blob = await _staged(store, data)
    await store._stage(blob)

    async def fails(tx: Tx) -> None:
        await tx.ref_blob(blob, 1)
        await tx.run("INSERT INTO gc_probe(id) VALUES (?)", (1,))  # taken by the first unit

    results = await _behind_a_held_batch(store, [_insert(1), fails, _insert(2)])
    assert isinstance(results[1], AlreadyExists)
    assert await _ids(store) == [1, 2]
    assert await _blob_row(store, blob.blob_id) is None
    await store._unit(lambda tx: tx.ref_blob(blob, 1))
    assert await _blob_row(store, blob.blob_id) == (1, data)


async def test_postgres_small_blob_without_group_commit_is_uploaded(tmp_path: Path) -> None:
    """Without group commit a unit is a transaction of its own: a small blob is uploaded
    before it as a large one is (the bytes never travel inside a unit holding locks for
    a round trip of its own)."""
    s = PostgresStore(fresh_dsn(), tmp_path / "data", group_commit=False)
    await s.open()
    try:
        data = b"Subject: alone\r\n\r\nbody\r\n"
        blob = await _staged(s, data)
        await s._stage(blob)
        assert await _blob_row(s, blob.blob_id) == (0, data)
        await s._unit(lambda tx: tx.ref_blob(blob, 1))
        assert await _blob_row(s, blob.blob_id) == (1, data)
    finally:
        await s.close()
