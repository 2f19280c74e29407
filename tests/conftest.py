"""Shared fixtures: the backend of a test and a fresh store on it (SQLite and PostgreSQL, see
tests/support/backends.py), and the skip guard of scripts/test.sh."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mailwright.store.api import StagedBlob, Store
from tests.support import backends
from tests.support.backends import Backend

if TYPE_CHECKING:
    from tests.support.pg import Nodes

REPO = Path(__file__).resolve().parents[1]

# The tests start hundreds of Python processes (`mailwright serve`, its workers, CLI commands),
# each importing some 600 modules. Where PYTHONDONTWRITEBYTECODE is set (to keep a tree free of
# __pycache__), each of them compiled every module from source again: a third of a server's
# start-up CPU. They get bytecode caches under the temporary directory instead (tree untouched).
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) and not os.environ.get("PYTHONPYCACHEPREFIX"):
    os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "mailwright-pycache")
CORPUS = Path(os.environ.get("MAILWRIGHT_CORPUS", REPO.parent / "shared" / "corpus"))


def store_backends() -> list[Any]:
    """SQLite and PostgreSQL, as parameters (tests/support/backends.py says how they run)."""
    return backends.params()


async def make_store(backend: str | Backend, tmp_path: Path) -> Store:
    """An opened store of ``backend`` (a name: a fresh PostgreSQL schema) with its blobs
    under ``tmp_path``/data."""
    b = backend if isinstance(backend, Backend) else backends.backend(backend)
    store = b.new_store(tmp_path / "data", fsync=True)
    await store.open()
    return store


@pytest.fixture(params=backends.params())
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend of this test: SQLite, or PostgreSQL on a fresh schema of its own."""
    return backends.backend(request.param)


@pytest.fixture
async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[Store]:
    s = await make_store(backend, tmp_path)
    try:
        yield s
    finally:
        await s.close()


# -- PostgreSQL left out on purpose: deselected, and said so at the end -----------------------

_LEFT_OUT: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not backends.postgres_opted_out():
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("postgres") else keep).append(item)
    if drop:
        _LEFT_OUT.extend(item.nodeid for item in drop)
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


async def stage_blob(store: Store, data: bytes) -> StagedBlob:
    """Message bytes staged as a blob of ``store``, ready to append or deliver."""
    w = store.blob_writer()
    w.write(data)
    return await w.finish()


async def new_inbox(store: Store, address: str = "alice@example.test") -> int:
    """A new account ``address`` (its domain added when missing): the id of its INBOX."""
    domain = address.rpartition("@")[2]
    if not await store.has_domain(domain):
        await store.add_domain(domain)
    acc = await store.add_account(address, "$argon2id$fake")
    mb = await store.get_mailbox(acc.id, "INBOX")
    assert mb is not None
    return mb.id


@pytest.fixture
def stage(store: Store) -> Callable[[bytes], object]:
    """Stage message bytes as a blob (async)."""

    async def _stage(data: bytes) -> StagedBlob:
        return await stage_blob(store, data)

    return _stage


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    """Two PostgreSQL nodes on one fresh schema (tests/support/pg.two_nodes); the tests that
    use it are marked `postgres`."""
    from tests.support.pg import two_nodes  # psycopg only where PostgreSQL is used

    async with two_nodes(tmp_path) as pair:
        yield pair


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- skipped tests: listed at the end, and held to tests/skip-allowlist.txt -------------------
#
# scripts/test.sh sets MAILWRIGHT_SKIP_ALLOWLIST to that file. Every skipped test is then
# printed with its reason at the end of the run, and the run fails (exit status 1) when a test
# skipped that no line of the allow-list names: a missing tool, service or file is a failure,
# unless the list says why that skip is acceptable.

_SKIPPED: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _SKIPPED.setdefault(report.nodeid, reason.removeprefix("Skipped: "))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # a whole module skipped at collection (`pytest.skip(..., allow_module_level=True)`,
    # `pytest.importorskip`) never reaches pytest_runtest_logreport: count it here
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _SKIPPED.setdefault(report.nodeid, reason.removeprefix("Skipped: "))


def read_allowlist(path: Path) -> list[tuple[re.Pattern[str], str]]:
    """`<test id, * matches anything> -- <why it may skip>` per line; # starts a comment."""
    rules = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, why = line.partition(" -- ")
        if not sep or not why.strip():
            raise ValueError(f"{path}:{n}: expected `<test id pattern> -- <reason>`")
        regex = re.compile(".*".join(re.escape(p) for p in pattern.strip().split("*")))
        rules.append((regex, why.strip()))
    return rules


def _allowlist() -> list[tuple[re.Pattern[str], str]] | None:
    path = os.environ.get("MAILWRIGHT_SKIP_ALLOWLIST")
    return read_allowlist(Path(path)) if path else None


def _not_allowed() -> list[str]:
    rules = _allowlist()
    if rules is None:
        return []
    return [nodeid for nodeid in _SKIPPED if not any(r.fullmatch(nodeid) for r, _ in rules)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _not_allowed() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tr = terminalreporter
    if _LEFT_OUT:
        tr.section(f"PostgreSQL tests deselected ({len(_LEFT_OUT)})")
        tr.write_line(
            f"{len(_LEFT_OUT)} test(s) marked postgres not run: {backends.OPT_OUT_REASON}",
            yellow=True,
            bold=True,
        )
    if not _SKIPPED:
        return
    bad = set(_not_allowed())
    tr.section(f"skipped tests ({len(_SKIPPED)})")
    for nodeid, reason in sorted(_SKIPPED.items()):
        tr.write_line(f"{'NOT ALLOWED ' if nodeid in bad else ''}{nodeid}: {reason}")
    if bad:
        tr.write_line(
            f"{len(bad)} skipped test(s) not in {os.environ['MAILWRIGHT_SKIP_ALLOWLIST']}:"
            " install what they need, or add a line saying why they may skip",
            red=True,
            bold=True,
        )
