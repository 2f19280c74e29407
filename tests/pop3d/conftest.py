from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.store.api import Store
from tests.support.backends import Backend


@pytest.fixture
async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[Store]:
    """The same POP3 session tests on both backends (tests/support/backends.py); no fsync."""
    s = backend.new_store(tmp_path / "data")
    await s.open()
    try:
        yield s
    finally:
        await s.close()
