from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.smtpd.harness import write_config
from tests.support.backends import SQLITE, Backend
from tests.support.listening import fast_authenticator

from mailwright.app import AppContext, build_context
from mailwright.config import load_config


async def _ctx(tmp_path: Path, outbound: bool, backend: Backend = SQLITE) -> AppContext:
    config = load_config(write_config(tmp_path, backend=backend))
    ctx = await build_context(config)
    ctx.authenticator = fast_authenticator(ctx.store)
    if not outbound:
        ctx.outbound = None
    return ctx


@pytest.fixture
async def ctx(tmp_path: Path, backend: Backend) -> AsyncIterator[AppContext]:
    """The SMTP sessions' context, on each backend (tests/support/backends.py)."""
    c = await _ctx(tmp_path, outbound=False, backend=backend)
    try:
        yield c
    finally:
        await c.store.close()


@pytest.fixture
async def ctx_outbound(tmp_path: Path, backend: Backend) -> AsyncIterator[AppContext]:
    """With the real outbound queue service, not started: entries stay in the store."""
    c = await _ctx(tmp_path, outbound=True, backend=backend)
    assert c.outbound is not None
    try:
        yield c
    finally:
        await c.store.close()
