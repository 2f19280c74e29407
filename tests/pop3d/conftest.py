from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "data", fsync=False)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
