"""Garbage collection never holds the writer while it walks the blob files.

A "large" collection: thousands of old orphan files plus released blobs. From inside the walk
(the collector's progress callback, called from its thread) a second, real SQLite connection
takes the write lock with `BEGIN IMMEDIATE` and no busy timeout, and a delivery through the store
completes. When the walk ran inside the writer's transaction, the first failed at once
("database is locked") and the second could not finish until the walk did (a deadlock here).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

from mailwright.store.api import DeliveryTarget, Store

MSG = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: gc\r\n\r\nbody\r\n"
ORPHANS = 3000


def _plant_orphans(blob_dir: Path, n: int) -> list[Path]:
    """Old files no row knows, as a crash between link and COMMIT leaves them."""
    old = time.time() - 7200
    paths = []
    for i in range(n):
        blob_id = f"{i:064x}"
        path = blob_dir / blob_id[:2] / blob_id[2:4] / blob_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (old, old))
        paths.append(path)
    return paths


async def test_delivery_completes_while_a_large_collection_walks(store: Store, stage) -> None:
    await store.add_domain("example.test")
    acc = await store.add_account("alice@example.test", "x")
    inbox = await store.get_mailbox(acc.id, "INBOX")
    assert inbox is not None
    # released blobs, still in their grace period (kept)
    for i in range(50):
        rec = await store.append(inbox.id, await stage(MSG + str(i).encode()))
        await store.expunge(inbox.id, [rec.uid])
    files = store.files  # type: ignore[attr-defined]
    orphans = _plant_orphans(files.blob_dir, ORPHANS)
    loop = asyncio.get_running_loop()
    sqlite_db = getattr(store, "db", None)
    seen: list[str] = []

    def during_walk(walked: int) -> None:
        if seen:
            return
        if sqlite_db is not None:
            probe = sqlite3.connect(sqlite_db.path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")  # the write lock is free during the walk
                probe.execute("ROLLBACK")
            finally:
                probe.close()
            seen.append("write lock free")

        async def deliver() -> None:
            blob = await stage(MSG + b"during gc")
            await store.deliver(blob, [DeliveryTarget(acc.id, "INBOX")])

        # generous bound: a delivery takes milliseconds; it would wait for the whole walk
        # (here: forever, the walk waits for it) if the walk held the writer
        asyncio.run_coroutine_threadsafe(deliver(), loop).result(timeout=60)
        seen.append(f"delivered after {walked} files")

    removed = await store.collect_garbage(min_age=60, progress=during_walk)  # type: ignore[call-arg]
    assert seen and seen[-1].startswith("delivered")
    assert removed >= ORPHANS  # the 50 released blobs are within their grace period
    assert not any(p.exists() for p in orphans)
    bodies = [await store.read_blob(r.blob_id) for r in await store.list_messages(inbox.id)]
    assert any(b.endswith(b"during gc") for b in bodies)
    assert await store.check() == []


async def test_grace_period_keeps_recently_released_blobs(store: Store, stage) -> None:
    await store.add_domain("example.test")
    acc = await store.add_account("alice@example.test", "x")
    inbox = await store.get_mailbox(acc.id, "INBOX")
    assert inbox is not None
    blob = await stage(MSG)
    rec = await store.append(inbox.id, blob)
    await store.expunge(inbox.id, [rec.uid])
    await store.collect_garbage(min_age=3600)  # type: ignore[call-arg]
    assert await store.read_blob(blob.blob_id) == MSG  # a lagging IMAP session may still read it
    assert await store.check() == []
