"""PostgreSQL for the tests: one database per test session, one schema per store or group.

The session database `mailwright_test_<pid>` is created on first use and dropped when the
interpreter exits. Every call of `fresh_dsn()` makes a new schema in it and returns a DSN whose
search_path points there, so each test starts from an empty store while the tests of a session
share one database. `MAILWRIGHT_TEST_DSN` names the server (default: the local one with trust
authentication); when it cannot be reached the calling test FAILS with the reason (PostgreSQL is
part of every run: scripts/test.sh starts it; `MAILWRIGHT_TEST_POSTGRES=0` deselects the tests
marked `postgres` instead, tests/support/backends.py).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from mailwright.store.postgres import PostgresStore

BASE_DSN = os.environ.get("MAILWRIGHT_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
_state: dict[str, str] = {}
Nodes = tuple[PostgresStore, PostgresStore]  # what the `nodes` fixture (tests/conftest.py) gives
_schemas = itertools.count(1)


def _admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(BASE_DSN, autocommit=True, connect_timeout=3)


def server_problem() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    if "error" in _state:
        return _state["error"]
    if "db" in _state:
        return None
    try:
        with _admin_connect():
            pass
    except psycopg.Error as e:
        _state["error"] = f"PostgreSQL not reachable at {_redacted(BASE_DSN)}: {_first_line(e)}"
        return _state["error"]
    return None


def session_database() -> str:
    """DSN of this session's database (created once, dropped at exit); fails if unreachable."""
    problem = server_problem()
    if problem is not None:
        pytest.fail(
            f"{problem} (start it, point MAILWRIGHT_TEST_DSN at a server, or set"
            " MAILWRIGHT_TEST_POSTGRES=0 to test SQLite alone on purpose)",
            pytrace=False,
        )
    if "db" not in _state:
        name = f"mailwright_test_{os.getpid()}"
        with _admin_connect() as conn:
            _drop_abandoned(conn)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(name)
                )
            )
            # A throwaway database: COMMIT need not wait for the WAL flush (what clients see
            # is the same; only a crash of the server itself could lose the last commits).
            # This halves the time of the migrations every fresh schema runs.
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                    sql.Identifier(name)
                )
            )
        _state["db"] = make_conninfo(BASE_DSN, dbname=name)
        _state["name"] = name
        atexit.register(_drop_database, name)
    return _state["db"]


def _drop_abandoned(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Drop the databases of earlier sessions on this machine that were killed mid-run."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname ~ '^mailwright_test_[0-9]+$'"
    ).fetchall()
    for (name,) in rows:
        pid = int(str(name).rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
            continue  # still running (or not ours to judge)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def _drop_database(name: str) -> None:
    try:
        with _admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error:
        pass


def fresh_dsn() -> str:
    """A DSN on a new, empty schema of the session database."""
    db = session_database()
    schema = f"t{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return make_conninfo(db, options=f"-c search_path={schema}")


async def make_postgres_store(tmp_path: Path, dsn: str | None = None) -> PostgresStore:
    """A PostgresStore (not yet opened) on a fresh schema, or on `dsn` to share one."""
    return PostgresStore(dsn or fresh_dsn(), tmp_path / "data", meta_parser=None)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _redacted(dsn: str) -> str:
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(invalid DSN)"
    params.pop("password", None)
    return make_conninfo("", **params)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    """Two PostgresStore "nodes" on one fresh database, opened at once (the migration then
    runs exactly once, under its advisory lock), closed at the end."""
    dsn = fresh_dsn()
    a = PostgresStore(dsn, tmp_path / "a")
    b = PostgresStore(dsn, tmp_path / "b")
    await asyncio.gather(a.open(), b.open())
    try:
        yield a, b
    finally:
        await asyncio.gather(a.close(), b.close())
