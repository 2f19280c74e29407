"""Power loss, not only SIGKILL: every acknowledged message survives losing what was not fsynced.

A killed process leaves the page cache behind, so a crash test cannot see a missing fsync. Here
the store runs under an LD_PRELOAD tracer (`powerloss/shim.c`, compiled with the system's cc)
that records, at every fsync/fdatasync under the data directory, the file's content or the
directory's entries at that moment. After ACKs have come back the writer is SIGKILLed in the
middle of its work, and the test rebuilds the data directory as a power loss at that instant
would leave it under a strict model: each directory holds only the entries it had at its last
fsync (or before the run), each file only the content it had at its last fsync (or before the
run; a new file never synced is empty). The store is opened on that rebuild: every acknowledged
message (and queue entry, for every third) must be there byte for byte, and `check` must be
clean.

The negative controls switch one kind of fsync off in the writer (the blob directories', the
staged message files', SQLite's WAL): the same check must then find acknowledged messages lost,
which shows the method catches each missing fsync.
docs/reliability.md ("Power loss") describes the method and what it showed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailwright.store.api import NotFound
from mailwright.store.sqlite import SQLiteStore
from tests.robustness.powerloss.worker import message, queue_id

HERE = Path(__file__).resolve().parent / "powerloss"
ACKS_BEFORE_POWER_LOSS = 60
Entries = dict[int, list[tuple[int, str, str]]]  # directory inode -> (inode, kind, name)


def build_shim(tmp_path: Path) -> Path:
    cc = shutil.which("cc")
    assert cc is not None, "the power-loss test needs a C compiler (cc); scripts/test.sh installs gcc"
    shim = tmp_path / "powerloss.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(shim),
                    str(HERE / "shim.c"), "-ldl"], check=True)
    return shim


def snapshot(root: Path, into: Path) -> tuple[Entries, dict[int, Path]]:
    """The state before the run, taken as durable (it was synced): entries and contents by inode."""
    os.sync()
    entries: Entries = {}
    contents: dict[int, Path] = {}
    into.mkdir()
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        listing = entries.setdefault(d.stat().st_ino, [])
        for name in dirnames:
            listing.append((os.lstat(d / name).st_ino, "d", name))
        for name in filenames:
            ino = os.lstat(d / name).st_ino
            listing.append((ino, "f", name))
            contents[ino] = into / str(ino)
            shutil.copyfile(d / name, contents[ino])
    return entries, contents


def rebuild(root_ino: int, shadow: Path, base: tuple[Entries, dict[int, Path]], out: Path) -> None:
    """The data directory as a power loss would leave it (see the module docstring)."""
    base_entries, base_contents = base

    def listing(ino: int) -> list[tuple[int, str, str]]:
        recorded = shadow / "dir" / str(ino)
        if recorded.exists():
            lines = recorded.read_text().splitlines()
            return [(int(i), k, n) for i, k, n in (line.split(" ", 2) for line in lines)]
        return base_entries.get(ino, [])  # never synced: as before the run (new: empty)

    def fill(dir_ino: int, path: Path, depth: int = 0) -> None:
        assert depth < 10
        path.mkdir(exist_ok=True)
        for ino, kind, name in listing(dir_ino):
            if kind == "d":
                fill(ino, path / name, depth + 1)
                continue
            synced = shadow / "ino" / str(ino)
            source = synced if synced.exists() else base_contents.get(ino)
            if source is None:
                (path / name).write_bytes(b"")  # created, never synced: no data
            else:
                shutil.copyfile(source, path / name)

    fill(root_ino, out)


async def _prepare(data: Path) -> None:
    store = SQLiteStore(data, meta_parser=None)
    await store.open()
    await store.add_domain("example.test")
    await store.add_account("power@example.test", "x")
    await store.close()


async def _verify(data: Path, acked: set[int]) -> list[str]:
    """What a power loss cost: acknowledged messages missing or changed, and `check` problems."""
    store = SQLiteStore(data, meta_parser=None)
    await store.open()
    try:
        problems = await store.check()
        acc = await store.find_account("power@example.test")
        assert acc is not None
        inbox = await store.get_mailbox(acc.id, "INBOX")
        assert inbox is not None
        stored: set[bytes] = set()
        for rec in await store.list_messages(inbox.id):
            try:
                stored.add(await store.read_blob(rec.blob_id))
            except Exception as exc:  # noqa: BLE001 - a lost blob is what we look for
                problems.append(f"uid {rec.uid}: {type(exc).__name__}")
        lost = sorted(n for n in acked if message(n) not in stored)
        if lost:
            problems.append(f"{len(lost)} acknowledged message(s) lost, e.g. {lost[:5]}")
        queued = {e.queue_id: e for e in await store.queue_list()}
        unqueued = []
        for n in sorted(n for n in acked if n % 3 == 0):
            entry = queued.get(queue_id(n))
            try:
                if entry is None or await store.read_blob(entry.blob_id) != message(n):
                    unqueued.append(n)
            except NotFound:
                unqueued.append(n)
        if unqueued:
            problems.append(f"{len(unqueued)} acknowledged queue entries lost, e.g. {unqueued[:5]}")
        return problems
    finally:
        await store.close()


def _run_until_power_loss(shim: Path, data: Path, shadow: Path, mode: str) -> set[int]:
    env = dict(os.environ, LD_PRELOAD=str(shim), POWERLOSS_ROOT=str(data.resolve()),
               POWERLOSS_SHADOW=str(shadow))
    proc = subprocess.Popen([sys.executable, "-m", "tests.robustness.powerloss.worker",
                             str(data), mode], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[2])
    acked: set[int] = set()
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("ACK "):
                acked.add(int(line.split()[1]))
                if len(acked) >= ACKS_BEFORE_POWER_LOSS:
                    break
        proc.send_signal(signal.SIGKILL)  # the power goes, in the middle of eight deliveries
        for line in proc.stdout:  # acknowledged before the kill landed: those count too
            if line.startswith("ACK "):
                acked.add(int(line.split()[1]))
    finally:
        proc.kill()
        proc.wait(60)
    return acked


@pytest.mark.parametrize("mode", ["intact", "no-dir-fsync", "no-file-fsync", "no-wal-fsync"])
def test_power_loss_keeps_every_acknowledged_message(tmp_path: Path, mode: str) -> None:
    shim = build_shim(tmp_path)
    data = tmp_path / "data"
    asyncio.run(_prepare(data))
    base = snapshot(data, tmp_path / "base")
    shadow = tmp_path / "shadow"
    (shadow / "ino").mkdir(parents=True)
    (shadow / "dir").mkdir()
    acked = _run_until_power_loss(shim, data, shadow, mode)
    assert len(acked) >= ACKS_BEFORE_POWER_LOSS
    assert any((shadow / "dir").iterdir()), "the tracer recorded nothing: is LD_PRELOAD working?"
    after = tmp_path / "after-power-loss"
    rebuild(data.stat().st_ino, shadow, base, after)
    problems = asyncio.run(_verify(after, acked))
    if mode == "intact":
        assert problems == []
    else:
        # the negative controls: without directory fsyncs the blobs' names are not durable,
        # without file fsyncs their content is not, without WAL fsyncs the rows are not
        assert problems, f"a store with {mode} passed: the method is blind to it"
        assert any("file missing" in p or "lost" in p for p in problems), problems
