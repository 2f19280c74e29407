"""The blob storage contract (store/blobstore.py), on every kind a site can choose: files on
SQLite, PostgreSQL `bytea` behind the node-local cache (its default), and files on PostgreSQL
(`[storage] blobs = "files"`).

Each runs through a real store, since the storage's guarantees hold only together with the
rows that reference its content: a staged blob that no unit committed is collected, a
committed one survives closing and reopening the store (and, for the database, the loss of
the whole node-local cache), a released one stays readable for the grace period, and content
no row names is removed only once it is older than the grace period.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailwright.store.api import DeliveryTarget, NotFound, StagedBlob, Store
from mailwright.store.blobstore import BlobStorage, CachedBlobs, FileBlobs
from tests.support import backends

MSG = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: blob\r\n\r\nbody\r\n"
OLD = 7200.0  # seconds: older than the grace period the tests collect with
GRACE = 3600.0


@dataclass(frozen=True)
class Kind:
    backend: str
    blobs: str

    def open(self, b: backends.Backend, data_dir: Path) -> Store:
        if self.backend == "postgres":
            from mailwright.store.postgres import PostgresStore

            store: Store = PostgresStore(b.dsn, data_dir, blobs=self.blobs, fsync=True)
            return store
        from mailwright.store.sqlite import SQLiteStore

        return SQLiteStore(data_dir, fsync=True)


KINDS = [
    pytest.param(Kind("sqlite", "files"), id="sqlite-files"),
    pytest.param(Kind("postgres", "database"), id="postgres-bytea", marks=pytest.mark.postgres),
    pytest.param(Kind("postgres", "files"), id="postgres-files", marks=pytest.mark.postgres),
]


@dataclass
class Site:
    kind: Kind
    backend: backends.Backend
    data_dir: Path
    store: Store

    @property
    def storage(self) -> BlobStorage:
        return self.store._blob_storage()  # type: ignore[attr-defined,no-any-return]

    async def reopen(self) -> None:
        await self.store.close()
        self.store = self.kind.open(self.backend, self.data_dir)
        await self.store.open()

    async def stage(self, data: bytes) -> StagedBlob:
        w = self.store.blob_writer()
        w.write(data)
        return await w.finish()

    async def inbox(self) -> tuple[int, int]:
        await self.store.add_domain("example.test")
        acc = await self.store.add_account("alice@example.test", "x")
        mb = await self.store.get_mailbox(acc.id, "INBOX")
        assert mb is not None
        return acc.id, mb.id


@pytest.fixture(params=KINDS)
async def site(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:
    kind: Kind = request.param
    b = backends.backend(kind.backend)
    store = kind.open(b, tmp_path / "data")
    await store.open()
    s = Site(kind, b, tmp_path / "data", store)
    try:
        yield s
    finally:
        await s.store.close()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _staging_files(site: Site) -> list[Path]:
    return list(site.storage.files.tmp_dir.iterdir())


async def test_blobstore_kind_is_the_one_configured(site: Site) -> None:
    expected = CachedBlobs if site.kind.blobs == "database" else FileBlobs
    assert type(site.storage) is expected


async def test_blobstore_committed_blob_is_readable_after_reopening(site: Site) -> None:
    _, inbox = await site.inbox()
    blob = await site.stage(MSG)
    rec = await site.store.append(inbox, blob)
    assert _staging_files(site) == []  # the store owned the staging file: it is gone
    await site.reopen()
    assert await site.store.read_blob(rec.blob_id) == MSG
    if site.kind.blobs == "database":
        # the cache is only a cache: the node loses it whole, the content is still there
        shutil.rmtree(site.storage.files.blob_dir)
        site.storage.files.blob_dir.mkdir()
        assert await site.store.read_blob(rec.blob_id) == MSG
    assert await site.store.check() == []


async def test_blobstore_staged_blob_never_committed_is_collected(site: Site) -> None:
    await site.inbox()
    blob = await site.stage(MSG)
    assert await site.store.read_staged(blob) == MSG
    # a crash here: the writer finished, no unit referenced the blob, nobody discarded it
    await site.reopen()
    (staging,) = _staging_files(site)
    assert await site.store.collect_garbage(min_age=GRACE) == 0  # type: ignore[call-arg]
    assert staging.exists()  # a message may still be streaming into a young staging file
    _age(staging, OLD)
    assert await site.store.collect_garbage(min_age=GRACE) == 1  # type: ignore[call-arg]
    assert _staging_files(site) == []
    with pytest.raises(NotFound):
        await site.store.read_staged(blob)


async def test_blobstore_content_stored_without_its_row_is_collected(site: Site) -> None:
    """A crash after the content was stored and before the COMMIT that names it."""
    await site.inbox()
    blob = await site.stage(MSG)
    await site.storage.upload(blob)  # database: a row with no reference yet
    site.storage.keep(blob, set())  # files: linked into place
    await site.reopen()
    if site.kind.blobs == "files":
        path = site.storage.files.path_for(blob.blob_id)
        assert path.exists()
        assert await site.store.collect_garbage(min_age=GRACE) == 0  # type: ignore[call-arg]
        _age(path, OLD)
        assert await site.store.collect_garbage(min_age=GRACE) >= 1  # type: ignore[call-arg]
        assert not path.exists()
    else:
        assert await site.store.collect_garbage(min_age=0) >= 1  # type: ignore[call-arg]
    with pytest.raises(NotFound):
        await site.store.read_blob(blob.blob_id)
    assert await site.store.check() == []


async def test_blobstore_released_blob_stays_for_the_grace_period(site: Site) -> None:
    acc, inbox = await site.inbox()
    rec = await site.store.append(inbox, await site.stage(MSG))
    await site.store.expunge(inbox, [rec.uid])
    assert await site.store.collect_garbage(min_age=GRACE) == 0  # type: ignore[call-arg]
    assert await site.store.read_blob(rec.blob_id) == MSG  # RFC 2180 4.1
    # identical content arriving meanwhile takes the released blob back
    (again,) = await site.store.deliver(await site.stage(MSG), [DeliveryTarget(acc)])
    assert await site.store.collect_garbage(min_age=0) == 0  # type: ignore[call-arg]
    assert await site.store.read_blob(again.blob_id) == MSG
    await site.store.expunge(inbox, [again.uid])
    assert await site.store.collect_garbage(min_age=0) == 1  # type: ignore[call-arg]
    with pytest.raises(NotFound):
        await site.store.read_blob(rec.blob_id)
    assert await site.store.check() == []


async def test_blobstore_discard_never_touches_stored_content(site: Site) -> None:
    _, inbox = await site.inbox()
    first = await site.stage(MSG)
    rec = await site.store.append(inbox, first)
    second = await site.stage(MSG)  # the same content, staged again and refused
    site.store.discard_staged(second)
    site.store.discard_staged(first)  # already referenced: a no-op
    assert _staging_files(site) == []
    assert await site.store.read_blob(rec.blob_id) == MSG
    assert await site.store.read_staged(first, limit=4) == MSG[:4]
    with pytest.raises(NotFound):
        await site.store.read_blob("0" * 64)


def _storage_config(tmp_path: Path, **storage: str) -> object:
    from mailwright.config import parse_config

    data = {"server": {"hostname": "mail.example.test"},
            "tls": {"cert": "c.pem", "key": "k.pem"}, "storage": storage}
    return parse_config(data, tmp_path / "mailwright.toml").storage


def test_blobstore_config_defaults_keep_each_backends_content_where_it_was(
    tmp_path: Path,
) -> None:
    assert _storage_config(tmp_path).blobs == "files"  # type: ignore[attr-defined]
    pg = {"backend": "postgres", "dsn": "postgresql://db/mail"}
    assert _storage_config(tmp_path, **pg).blobs == "database"  # type: ignore[attr-defined]
    chosen = _storage_config(tmp_path, **pg, blobs="files")
    assert chosen.blobs == "files"  # type: ignore[attr-defined]


@pytest.mark.parametrize("storage", [
    {"blobs": "s3"},
    {"blobs": "database"},  # SQLite has no second database to put them in
    {"backend": "postgres", "dsn": "postgresql://db/mail", "blobs": "bytea"},
])
def test_blobstore_config_refuses_what_no_backend_does(
    tmp_path: Path, storage: dict[str, str]
) -> None:
    from mailwright.config import ConfigError

    with pytest.raises(ConfigError) as err:
        _storage_config(tmp_path, **storage)
    assert err.value.key == "storage.blobs"


async def test_blobstore_check_names_content_that_is_gone(site: Site) -> None:
    _, inbox = await site.inbox()
    rec = await site.store.append(inbox, await site.stage(MSG))
    site.storage.files.path_for(rec.blob_id).unlink()  # a file, or a cache file
    problems = await site.store.check()
    if site.kind.blobs == "files":
        assert problems == [f"blob {rec.blob_id}: file missing"]
    else:
        assert problems == []  # only the cache lost it
        assert await site.store.read_blob(rec.blob_id) == MSG
