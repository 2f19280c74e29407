"""`init --storage postgres`: the first domain lands in PostgreSQL, and no SQLite file appears."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from mailwright.accounts.passwords import verify_password
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


def test_init_postgres_import_export_roundtrip(tmp_path: Path) -> None:
    """Migration on PostgreSQL: appends one at a time, still in source order, still idempotent."""
    from tests.cli.test_migrate import maildir_view, make_maildir, snapshot

    d = tmp_path / "inst"
    assert mw("init", str(d), "--domain", "example.test", "--storage", "postgres",
              "--dsn", fresh_dsn()).returncode == 0
    cfg = d / "mailwright.toml"
    assert mw("-c", str(cfg), "user", "add", "alice@example.test", "--password-stdin",
              stdin="pw\n").returncode == 0
    src = tmp_path / "Maildir"
    make_maildir(src)
    r = mw("-c", str(cfg), "import", "maildir", str(src), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    first = snapshot(cfg, "alice@example.test")
    assert [s for _, _, s in first["INBOX"]] == sorted(s for _, _, s in first["INBOX"])
    r = mw("-c", str(cfg), "import", "maildir", str(src), "--user", "alice@example.test")
    assert "imported 0 message(s)" in r.stdout
    out = tmp_path / "out"
    assert mw("-c", str(cfg), "export", "maildir", str(out), "--user",
              "alice@example.test").returncode == 0
    assert maildir_view(out) == maildir_view(src)


def test_quickstart_postgres_puts_the_domain_account_and_postmaster_in_postgres(
    tmp_path: Path,
) -> None:
    """`quickstart --storage postgres`: the guided start on PostgreSQL from the first command,
    and the printed password is the one the stored account takes."""
    dsn = fresh_dsn()
    d = tmp_path / "quick"
    r = mw("quickstart", "ann@pgq.test", "--dir", str(d), "--bind", "127.0.0.1",
           "--storage", "postgres", "--dsn", dsn)
    assert r.returncode == 0, r.stderr
    password = re.search(r"^  password: (\S+)$", r.stdout, re.M)
    assert password, r.stdout
    assert "k=rsa; p=" in r.stdout and "k=ed25519; p=" in r.stdout
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT name FROM domains").fetchall() == [("pgq.test",)]
        assert conn.execute("SELECT address FROM accounts").fetchall() == [("ann@pgq.test",)]
        assert conn.execute("SELECT source, targets FROM aliases").fetchall() == [
            ("postmaster@pgq.test", ["ann@pgq.test"])]
        [(stored,)] = conn.execute("SELECT password_hash FROM accounts").fetchall()
    assert verify_password(stored, password.group(1))
    assert not verify_password(stored, "something else")
    assert [p for p in d.rglob("*") if p.suffix in (".sqlite", ".db", ".sqlite3")] == []
