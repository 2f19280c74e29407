"""`init --storage postgres`: the first domain lands in PostgreSQL, and no SQLite file appears."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.pg import fresh_dsn

pytestmark = pytest.mark.postgres


def mw(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailwright", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_init_postgres_first_domain_and_users_live_in_postgres(tmp_path: Path) -> None:
    dsn = fresh_dsn()
    d = tmp_path / "inst"
    r = mw("init", str(d), "--domain", "pg.test", "--storage", "postgres", "--dsn", dsn)
    assert r.returncode == 0, r.stderr
    assert "PostgreSQL" in r.stdout
    cfg = d / "mailwright.toml"
    assert 'backend = "postgres"' in cfg.read_text()
    assert cfg.stat().st_mode & 0o077 == 0  # the DSN may hold a password
    r = mw("-c", str(cfg), "user", "add", "ann@pg.test", "--password-stdin", stdin="pw\n")
    assert r.returncode == 0, r.stderr
    assert mw("-c", str(cfg), "check").returncode == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT name FROM domains").fetchall() == [("pg.test",)]
        assert conn.execute("SELECT address FROM accounts").fetchall() == [("ann@pg.test",)]
    leftovers = [p for p in d.rglob("*") if p.suffix in (".sqlite", ".db", ".sqlite3")
                 or p.name.endswith(("-wal", "-shm"))]
    assert leftovers == []


def test_init_postgres_usage_errors_and_unreachable_server(tmp_path: Path) -> None:
    r = mw("init", str(tmp_path / "a"), "--domain", "pg.test", "--storage", "postgres")
    assert r.returncode == 2 and "--dsn" in r.stderr
    r = mw("init", str(tmp_path / "b"), "--domain", "pg.test", "--dsn", "postgresql://x@y/z")
    assert r.returncode == 2
    r = mw("init", str(tmp_path / "c"), "--domain", "pg.test", "--storage", "postgres",
           "--dsn", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "c" / "mailwright.toml").exists()
