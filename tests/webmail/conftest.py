from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.app import AppContext, build_context
from mailwright.config import load_config
from tests.smtpd.harness import write_config
from tests.support.listening import fast_authenticator


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[AppContext]:
    """A real application context (SQLite store, the real outbound queue, not started)."""
    c = await build_context(load_config(write_config(tmp_path)))
    c.authenticator = fast_authenticator(c.store)
    try:
        yield c
    finally:
        await c.store.close()
