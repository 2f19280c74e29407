"""What every operator command shares: config discovery, errors, running the store."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from mailwright.config import Config, load_config
from mailwright.store import open_store
from mailwright.store.api import Store

T = TypeVar("T")


class CLIError(Exception):
    """Printed as one line; `code` is the exit status (1 runtime failure, 2 bad usage)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def config_path(args: argparse.Namespace) -> Path:
    given = getattr(args, "config", None)
    if given:
        return Path(given)
    env = os.environ.get("MAILWRIGHT_CONFIG")
    if env:
        return Path(env)
    return Path("mailwright.toml")


def load(args: argparse.Namespace) -> Config:
    """Load and validate the config (ConfigError propagates: exit 2)."""
    return load_config(config_path(args))


@asynccontextmanager
async def opened_store(config: Config) -> AsyncIterator[Store]:
    store = open_store(config)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def with_store(config: Config, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Run `fn(store)` on a freshly opened store, for one-shot commands."""

    async def go() -> T:
        async with opened_store(config) as store:
            return await fn(store)

    return asyncio.run(go())
