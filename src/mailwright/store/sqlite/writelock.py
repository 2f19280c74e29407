"""One writer at a time across processes, handed over by the kernel.

Several processes write one SQLite store: the worker processes of `serve` (docs/architecture.md
"Processes"), and operator commands run while it serves. SQLite alone makes a writer that finds
the database locked sleep and retry (its busy handler polls with growing sleeps, up to 100 ms),
so under load a waiting worker's whole batch sleeps past the moment the lock was freed.
Taking this lock before `BEGIN IMMEDIATE` queues the writers in the kernel instead: `flock`
wakes the next one as the previous one's COMMIT ends, and while a writer waits its process keeps
queueing operations, so its next batch is larger: group commit holds across processes
(bench/sqlite_writers.py measures both ways; docs/benchmarks.md).

A `flock` belongs to the open file, so each process must open its own (the supervisor never
opens a store; each worker opens one after the fork), and it ends with the process: a writer
killed holding it blocks nobody.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class WriteLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
