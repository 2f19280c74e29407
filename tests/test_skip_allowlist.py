"""The skip guard of scripts/test.sh (tests/conftest.py): skipped tests are listed at the end of
the run, and a skip that tests/skip-allowlist.txt does not allow fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, read_allowlist

DUMMY = """
import pytest

def test_runs():
    pass

def test_needs_a_tool():
    pytest.skip("the tool is not installed")
"""


MODULE_SKIP = """
import pytest

pytest.importorskip("a_module_that_is_not_installed")

def test_never_collected():
    pass
"""


def run(tmp_path: Path, allowlist: str, test: str = DUMMY) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_dummy.py").write_text(test)
    (tmp_path / "allow.txt").write_text(allowlist)
    env = dict(os.environ, MAILWRIGHT_SKIP_ALLOWLIST=str(tmp_path / "allow.txt"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_dummy.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_a_skip_not_in_the_allowlist_fails_the_run(tmp_path: Path) -> None:
    r = run(tmp_path, "# nothing may skip\n")
    assert r.returncode == 1, r.stdout
    assert "NOT ALLOWED test_dummy.py::test_needs_a_tool: the tool is not installed" in r.stdout
    assert "1 passed, 1 skipped" in r.stdout.splitlines()[-1]


def test_a_module_skipped_at_collection_fails_the_run(tmp_path: Path) -> None:
    r = run(tmp_path, "# nothing may skip\n", MODULE_SKIP)
    assert r.returncode == 1, r.stdout
    assert "NOT ALLOWED test_dummy.py: could not import 'a_module_that_is_not_installed'" in r.stdout


def test_an_allowed_skip_is_listed_and_passes(tmp_path: Path) -> None:
    r = run(tmp_path, "test_dummy.py::test_needs_* -- the tool is optional here\n")
    assert r.returncode == 0, r.stdout
    assert "test_dummy.py::test_needs_a_tool: the tool is not installed" in r.stdout
    assert "NOT ALLOWED" not in r.stdout


def test_the_repository_allowlist_gives_a_reason_on_every_line() -> None:
    rules = read_allowlist(REPO / "tests" / "skip-allowlist.txt")
    assert rules and all(len(why) >= 10 for _, why in rules)
    assert len(rules) <= 20  # a short list: more skips need fixing, not listing
