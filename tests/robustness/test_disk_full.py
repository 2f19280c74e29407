"""Disk full: the store refuses with StorageFull, damages nothing, and recovers with space."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright.store.api import StorageFull
from mailwright.store.sqlite import SQLiteStore


@contextlib.contextmanager
def small_fs(path: Path, size: str = "3m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_disk_full_store_refuses_and_recovers(tmp_path: Path) -> None:
    with small_fs(tmp_path / "small") as root:
        store = SQLiteStore(root / "data")
        await store.open()
        try:
            await store.add_domain("example.test")
            acc = await store.add_account("a@example.test", "x")
            inbox = await store.get_mailbox(acc.id, "INBOX")
            assert inbox is not None
            stored: list[tuple[int, bytes]] = []
            full = False
            for i in range(400):
                data = f"Subject: {i}\r\n\r\n".encode() + os.urandom(20000).hex().encode()
                try:
                    w = store.blob_writer()
                    w.write(data)
                    blob = await w.finish()
                    rec = await store.append(inbox.id, blob)
                except StorageFull:
                    full = True
                    break
                stored.append((rec.uid, data))
            assert full, "the small file system never filled up"
            assert stored
            # nothing already stored is damaged
            recs = {r.uid: r for r in await store.list_messages(inbox.id)}
            for uid, data in stored:
                assert await store.read_blob(recs[uid].blob_id) == data
            # space returns: delete half, writing works again
            gone = await store.expunge(inbox.id, [u for u, _ in stored[: len(stored) // 2]])
            assert gone
            await store.collect_garbage(min_age=0)
            w = store.blob_writer()
            w.write(b"Subject: after\r\n\r\nsmall\r\n")
            rec = await store.append(inbox.id, await w.finish())
            assert rec.uid > max(u for u, _ in stored)
            assert await store.check() == []
        finally:
            await store.close()
