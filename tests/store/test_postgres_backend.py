"""What is particular to the PostgreSQL backend: migrations, blobs in the database, the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailwright.store.api import StoreError
from mailwright.store.postgres import PostgresStore
from mailwright.store.postgres.schema import SCHEMA_VERSION, current_version, migrate
from tests.conftest import new_inbox
from tests.support.pg import fresh_dsn

pytestmark = pytest.mark.postgres

MSG = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


async def _open(dsn: str, data_dir: Path) -> PostgresStore:
    store = PostgresStore(dsn, data_dir)
    await store.open()
    return store


async def test_postgres_migrations_are_versioned_and_idempotent(tmp_path: Path) -> None:
    dsn = fresh_dsn()
    store = await _open(dsn, tmp_path / "a")
    try:
        async with store.pool.connection() as conn:
            assert await current_version(conn) == SCHEMA_VERSION
            assert await migrate(conn) == 0  # nothing left to apply
        assert await store.check() == []
    finally:
        await store.close()


async def test_postgres_refuses_a_newer_schema(tmp_path: Path) -> None:
    dsn = fresh_dsn()
    store = await _open(dsn, tmp_path / "a")
    async with store.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO mailwright_schema(version, description) VALUES (%s, 'from the future')",
            (SCHEMA_VERSION + 1,),
        )
    await store.close()
    with pytest.raises(StoreError, match="newer"):
        await _open(dsn, tmp_path / "b")


async def test_postgres_unreachable_server_is_one_line_error(tmp_path: Path) -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2", tmp_path)
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        await store.open()


async def test_postgres_blob_lives_in_database_cache_is_optional(tmp_path: Path) -> None:
    dsn = fresh_dsn()
    a = await _open(dsn, tmp_path / "a")
    try:
        inbox = await new_inbox(a)
        w = a.blob_writer()
        w.write(MSG.replace(b"\r\n", b"\n"))  # bare LF becomes CRLF at ingest
        rec = await a.append(inbox, await w.finish())
        assert not any((tmp_path / "a" / "tmp").iterdir())  # the staging file became the cache
        shutil.rmtree(tmp_path / "a" / "blobs")
        assert await a.read_blob(rec.blob_id) == MSG  # from the database, and cached again
        assert a.files is not None and a.files.path_for(rec.blob_id).read_bytes() == MSG
        async with a.pool.connection() as conn:
            cur = await conn.execute("SELECT data, refs FROM blobs WHERE id = %s", (rec.blob_id,))
            assert await cur.fetchone() == (MSG, 1)
    finally:
        await a.close()


async def test_postgres_gc_of_pending_upload_does_not_lose_the_message(tmp_path: Path) -> None:
    dsn = fresh_dsn()
    a = await _open(dsn, tmp_path / "a")
    b = await _open(dsn, tmp_path / "b")
    try:
        inbox = await new_inbox(a)
        w = a.blob_writer()
        w.write(MSG)
        blob = await w.finish()
        await a._upload(blob)  # the first half of an append: bytes in, not yet referenced
        assert await b.collect_garbage(min_age=0) == 1  # node B starting now removes the row
        rec = await a.append(inbox, blob)  # the referencing transaction inserts it again
        assert await b.read_blob(rec.blob_id) == MSG
        assert await a.check() == []
    finally:
        await a.close()
        await b.close()


async def test_postgres_damaged_cache_file_is_not_served(tmp_path: Path) -> None:
    dsn = fresh_dsn()
    a = await _open(dsn, tmp_path / "a")
    try:
        inbox = await new_inbox(a)
        w = a.blob_writer()
        w.write(MSG)
        rec = await a.append(inbox, await w.finish())
        assert a.files is not None
        cached = a.files.path_for(rec.blob_id)
        cached.write_bytes(MSG[:10])  # as a power loss may leave an unsynced file
        assert await a.read_blob(rec.blob_id) == MSG
        assert cached.read_bytes() == MSG  # replaced by a good copy
    finally:
        await a.close()


async def test_postgres_meta_cache_is_bounded_in_bytes(tmp_path: Path) -> None:
    """The node's cache of blob metas is bounded in bytes, not only in entries: the meta of a
    message of 10,000 MIME parts (480 KB, any sender can deliver it) is about 1 MB, so 4,096
    of them read once (a FETCH BODYSTRUCTURE of each) were kept as some 4 GB."""
    from mailwright.store import meta_parser

    store = PostgresStore(fresh_dsn(), tmp_path / "a", meta_parser=meta_parser())
    await store.open()
    try:
        inbox = await new_inbox(store)
        parts = b"".join(
            b"--b\r\nContent-Type: text/plain; name=a%d\r\n\r\nx\r\n" % i for i in range(10_000)
        )
        ids = []
        for k in range(3):
            w = store.blob_writer()
            w.write(
                b"Subject: parts %d\r\nMIME-Version: 1.0\r\n" % k
                + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
            )
            ids.append((await store.append(inbox, await w.finish())).blob_id)
        metas = [await store.get_meta(blob_id) for blob_id in ids]
        assert min(len(m) for m in metas) > 512 * 1024  # what a reader is given, whole
        kept = sum(len(store._meta.get(blob_id, b"")) for blob_id in ids)
        assert kept <= 256 * 1024, kept
    finally:
        await store.close()
