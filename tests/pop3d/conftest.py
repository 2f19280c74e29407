from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.store.api import Store
from mailwright.store.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The same POP3 session tests on both backends (PostgreSQL skipped when unreachable)."""
    s: Store
    if request.param == "postgres":
        from mailwright.store.postgres import PostgresStore
        from tests.support.pg import fresh_dsn

        s = PostgresStore(fresh_dsn(), tmp_path / "data")
    else:
        s = SQLiteStore(tmp_path / "data", fsync=False)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
