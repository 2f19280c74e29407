"""The backend parametrisation (tests/support/backends.py): every test that asks for `backend`
runs on SQLite and PostgreSQL; without PostgreSQL its PostgreSQL variant fails, unless
MAILWRIGHT_TEST_POSTGRES=0 leaves PostgreSQL out on purpose, and then the run says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

DUMMY = """
from tests.support.backends import Backend

def test_on_each(backend: Backend) -> None:
    assert backend.name in ("sqlite", "postgres")
"""


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_dummy.py").write_text(DUMMY)
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    full.pop("MAILWRIGHT_SKIP_ALLOWLIST", None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "-c", os.devnull, "--rootdir", str(tmp_path), *args, str(tmp_path / "test_dummy.py")],
        capture_output=True, text=True, env=full, cwd=tmp_path, timeout=120)


def test_each_backend_is_a_test_of_its_own(tmp_path: Path) -> None:
    r = run(tmp_path, "--collect-only")
    assert "test_dummy.py::test_on_each[sqlite]" in r.stdout
    assert "test_dummy.py::test_on_each[postgres]" in r.stdout
    r = run(tmp_path, "--collect-only", "-m", "not postgres")
    assert "test_on_each[postgres]" not in r.stdout and "test_on_each[sqlite]" in r.stdout


def test_postgres_missing_fails_with_the_reason(tmp_path: Path) -> None:
    r = run(tmp_path, MAILWRIGHT_TEST_POSTGRES="1",
            MAILWRIGHT_TEST_DSN="postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")
    assert r.returncode == 1, r.stdout
    assert "1 passed, 1 error" in r.stdout.splitlines()[-1]  # in the fixture: an error, a failure
    assert "PostgreSQL not reachable at" in r.stdout
    assert "MAILWRIGHT_TEST_POSTGRES=0 to test SQLite alone on purpose" in r.stdout


def test_postgres_left_out_on_purpose_is_said_at_the_end(tmp_path: Path) -> None:
    r = run(tmp_path, MAILWRIGHT_TEST_POSTGRES="0",
            MAILWRIGHT_TEST_DSN="postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")
    assert r.returncode == 0, r.stdout
    assert "1 passed, 1 deselected" in r.stdout.splitlines()[-1]
    assert ("1 test(s) marked postgres not run: MAILWRIGHT_TEST_POSTGRES=0: this run tests"
            " SQLite alone, on purpose") in r.stdout
