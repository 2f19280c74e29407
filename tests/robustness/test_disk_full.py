"""Disk full: the store refuses with StorageFull, damages nothing, and recovers with space.

Two layers: the free-space reserve refuses new mail early (test_disk_full_store_...), and a
disk that fills completely anyway (another process ate the space) still leaves the store
consistent and working once space returns (test_disk_full_without_reserve_...).
"""

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
        # a 384 KiB reserve: new mail is refused before the disk is completely full, so that
        # expunges (which need journal space) can still free space
        store = SQLiteStore(root / "data", min_free=384 * 1024)
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


async def test_disk_full_without_reserve_recovers_when_space_returns(tmp_path: Path) -> None:
    with small_fs(tmp_path / "small2") as root:
        ballast = root / "ballast"
        store = SQLiteStore(root / "data")
        await store.open()
        try:
            await store.add_domain("example.test")
            acc = await store.add_account("a@example.test", "x")
            inbox = await store.get_mailbox(acc.id, "INBOX")
            assert inbox is not None
            w = store.blob_writer()
            w.write(b"Subject: before\r\n\r\nkept\r\n")
            first = await store.append(inbox.id, await w.finish())
            # another process fills the disk to the last byte
            with open(ballast, "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass
            with pytest.raises(StorageFull):
                for i in range(50):
                    w = store.blob_writer()
                    w.write(f"Subject: {i}\r\n\r\n".encode() + b"y" * 50000)
                    await store.append(inbox.id, await w.finish())
            ballast.unlink()  # space returns
            w = store.blob_writer()
            w.write(b"Subject: after\r\n\r\nok\r\n")
            rec = await store.append(inbox.id, await w.finish())
            assert rec.uid > first.uid
            assert await store.read_blob(first.blob_id) == b"Subject: before\r\n\r\nkept\r\n"
            await store.collect_garbage(min_age=0)
            assert await store.check() == []
        finally:
            await store.close()
