"""Shared fixtures: a fresh store per test, for each backend that can run here."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mailwright.store.api import StagedBlob, Store

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("MAILWRIGHT_CORPUS", REPO.parent / "shared" / "corpus"))


def store_backends() -> list[str]:
    backends = ["sqlite"]
    if os.environ.get("MAILWRIGHT_TEST_POSTGRES", "") not in ("", "0"):
        backends.append("postgres")
    return backends


async def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        from mailwright.store.sqlite import SQLiteStore

        store: Store = SQLiteStore(tmp_path / "data", meta_parser=None)
    else:  # pragma: no cover - provided by the PostgreSQL backend's test support
        from tests.support.pg import make_postgres_store  # type: ignore[import-not-found]

        store = await make_postgres_store(tmp_path)
    await store.open()
    return store


@pytest.fixture(params=store_backends())
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = await make_store(request.param, tmp_path)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def stage(store: Store) -> Callable[[bytes], object]:
    """Stage message bytes as a blob (async)."""

    async def _stage(data: bytes) -> StagedBlob:
        w = store.blob_writer()
        w.write(data)
        return await w.finish()

    return _stage


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
