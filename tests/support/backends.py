"""The store backends every store and session test runs on: SQLite and PostgreSQL.

A test runs on both by asking for the `backend` fixture (tests/conftest.py), or for a fixture
built on it (`store`, the IMAP harness's `imap_server(tmp_path, backend)`, the SMTP `ctx`...);
its ids end in `[sqlite]` and `[postgres]`. Each PostgreSQL variant gets a new, empty schema
(tests/support/pg.py), so no test sees another's data.

PostgreSQL is part of every test run (scripts/test.sh installs and starts it). When it cannot
be reached, the PostgreSQL variants FAIL with the reason; `MAILWRIGHT_TEST_POSTGRES=0` says on
purpose that this run tests SQLite alone, and then they are deselected, and the run says so at
the end. Every PostgreSQL variant carries the `postgres` marker, so `-m postgres` and
`-m "not postgres"` pick one backend.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailwright.store.api import Store

NAMES = ("sqlite", "postgres")
OPT_OUT_ENV = "MAILWRIGHT_TEST_POSTGRES"
OPT_OUT_REASON = f"{OPT_OUT_ENV}=0: this run tests SQLite alone, on purpose"


def postgres_opted_out() -> bool:
    """True when the run was told to leave PostgreSQL out (`MAILWRIGHT_TEST_POSTGRES=0`)."""
    return os.environ.get(OPT_OUT_ENV, "").strip() == "0"


def params() -> list[Any]:
    """The backends as parameters (fixture `params=` or `parametrize`), the PostgreSQL one
    marked `postgres`."""
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]


@dataclass(frozen=True)
class Backend:
    """One backend for one test: its name and, for PostgreSQL, the DSN of a fresh schema."""

    name: str
    dsn: str = ""

    def __str__(self) -> str:
        return self.name

    def new_store(
        self, data_dir: Path, *, meta_parser: Any = None, fsync: bool = False
    ) -> Store:
        """A store (not yet opened) on this backend; blobs and caches under ``data_dir``."""
        if self.name == "postgres":
            from mailwright.store.postgres import PostgresStore

            return PostgresStore(self.dsn, data_dir, meta_parser=meta_parser)
        from mailwright.store.sqlite import SQLiteStore

        return SQLiteStore(data_dir, fsync=fsync, meta_parser=meta_parser)

    def storage_lines(self) -> list[str]:
        """The `[storage]` lines of a config file that selects this backend."""
        if self.name == "postgres":
            return ['backend = "postgres"', f"dsn = {json.dumps(self.dsn)}"]
        return ['backend = "sqlite"']


def backend(name: str) -> Backend:
    """The named backend, with a fresh PostgreSQL schema (fails the test if unreachable)."""
    if name == "postgres":
        from tests.support.pg import fresh_dsn

        return Backend("postgres", fresh_dsn())
    if name == "sqlite":
        return Backend("sqlite")
    raise ValueError(f"unknown backend {name!r}")


SQLITE = Backend("sqlite")
