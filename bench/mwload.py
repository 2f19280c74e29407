"""Loads users and mailboxes into a Mailwright data directory before the server starts.

Run as ``python -m bench.mwload CONFIG SPEC.json``. It goes through the public Store interface
(``blob_writer``/``append``, exactly as APPEND and import do), with many appends in flight and
per-message fsync off followed by one sync(2), like the Maildirs written for Dovecot; this is
the fastest honest path to a 100,000-message mailbox. Accounts get the argon2id hashes the harness made (the same strings Dovecot gets).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailwright.config import load_config
from mailwright.delivery.ingest import stage_bytes
from mailwright.store import open_store
from mailwright.store.api import Store

_FLAGS = {"S": "\\Seen", "R": "\\Answered", "F": "\\Flagged", "T": "\\Deleted", "D": "\\Draft"}


def _maildir_items(root: Path) -> list[tuple[Path, list[str], datetime]]:
    out = []
    for sub in ("cur", "new"):
        folder = root / sub
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            info = f.name.partition(":2,")[2]
            flags = [_FLAGS[c] for c in info if c in _FLAGS]
            out.append((f, flags, datetime.fromtimestamp(f.stat().st_mtime, UTC)))
    return out


async def _fill(store: Store, mailbox_id: int, root: Path, concurrency: int) -> int:
    items = _maildir_items(root)
    queue: asyncio.Queue[tuple[Path, list[str], datetime]] = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)

    async def worker() -> None:
        while not queue.empty():
            path, flags, date = queue.get_nowait()
            blob = await stage_bytes(store, path.read_bytes())
            await store.append(mailbox_id, blob, flags, date)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(items)


async def main(config_path: str, spec_path: str) -> None:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    config = load_config(config_path)
    # Bulk loading with per-message fsync off, then one sync(2) of everything: the same
    # durability as the Maildirs written for Dovecot, without 100,000 fsyncs (the serving
    # server runs with the config's fsync setting, on by default).
    config = replace(config, storage=replace(config.storage, fsync=False))
    store = open_store(config)
    await store.open()
    try:
        if not await store.has_domain(spec["domain"]):
            await store.add_domain(spec["domain"])
        accounts = {}
        for user in spec["users"]:
            address = f"{user}@{spec['domain']}"
            acc = await store.find_account(address)
            if acc is None:
                # The harness hands the same argon2id hash strings to every server.
                acc = await store.add_account(address, spec["hashes"][user])
            accounts[user] = acc
        for user, root in spec["maildirs"].items():
            t0 = time.monotonic()
            mb = await store.get_mailbox(accounts[user].id, "INBOX")
            assert mb is not None
            n = await _fill(store, mb.id, Path(root), spec.get("concurrency", 64))
            dt = time.monotonic() - t0
            print(f"loaded {n} messages into {user}'s INBOX in {dt:.1f}s ({n / dt:.0f}/s)",
                  file=sys.stderr, flush=True)
    finally:
        await store.close()
    os.sync()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
