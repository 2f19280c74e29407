"""The store under the power-loss tracer: delivers messages until it is killed.

Eight deliveries run at a time through the real store (staging file, fsync, link, directory
fsync, group commit), every third one also queued for a remote recipient; `ACK <n>` is printed,
flushed, only once the store acknowledged message n (what an SMTP 250 waits for).

The negative controls, which the test must catch, each switch one kind of fsync off in this
process only: `no-dir-fsync` the blob directories' fsyncs, `no-file-fsync` the fsync of each
staged message file (directories are still synced), `no-wal-fsync` SQLite's own
(`PRAGMA synchronous=OFF`: no WAL frame is ever synced).
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

from mailwright.store.api import DeliveryTarget, QueueRecipient
from mailwright.store.sqlite import SQLiteStore


def message(n: int) -> bytes:
    """Message n, as the test expects it back byte for byte (CRLF, distinct sizes)."""
    body = "".join(f"line {k} of message {n}\r\n" for k in range(1 + (n * 37) % 400))
    return f"From: a@example.test\r\nSubject: power {n}\r\n\r\n{body}".encode()


def queue_id(n: int) -> str:
    return f"{n:012X}"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(data_dir: Path, mode: str) -> None:
    store = SQLiteStore(data_dir, meta_parser=None)
    if mode == "no-wal-fsync":
        store.db.fsync = False  # the connections open with PRAGMA synchronous=OFF
    await store.open()
    if mode == "no-dir-fsync":
        store.db.sync_dirs = lambda dirs: None
    elif mode == "no-file-fsync":
        real_fsync = os.fsync

        def fsync_directories_only(fd: int) -> None:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                real_fsync(fd)

        os.fsync = fsync_directories_only  # the staging file's fsync (store/blobs.py) is skipped
    acc = await store.find_account("power@example.test")
    assert acc is not None
    counter = iter(range(1, 5001))

    async def lane() -> None:
        for n in counter:
            w = store.blob_writer()
            w.write(message(n))
            blob = await w.finish()
            await store.deliver(blob, [DeliveryTarget(acc.id, "INBOX")])
            if n % 3 == 0:  # and a copy for a remote recipient, through the outbound queue
                w = store.blob_writer()
                w.write(message(n))
                await store.queue_add(await w.finish(), "power@example.test", {
                    "remote.test": [QueueRecipient(f"r{n}@remote.test", "scheduled")]},
                    queue_id=queue_id(n))
            say(f"ACK {n}")

    await asyncio.gather(*(lane() for _ in range(8)))
    say("DONE")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
