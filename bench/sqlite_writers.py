"""Several processes writing one SQLite database: how they should take turns.

``python -m bench.sqlite_writers [--seconds 5] [--concurrency 32]`` runs, for 1 and 2 writer
processes, each with ``--concurrency`` writes in flight (fsync on, `synchronous=FULL`, the
writer thread and group commit of `mailwright.store.sqlite.db.Database`), two ways:

* ``busy``: SQLite's own locking only (`BEGIN IMMEDIATE` with a busy timeout: a writer that
  finds the database locked sleeps and retries);
* ``flock``: a kernel lock taken before `BEGIN IMMEDIATE` (`store/sqlite/writelock.py`), which
  hands the turn over at once and lets a waiting process's batch grow meanwhile.

It prints writes per second, writes per commit and the 99th percentile of a write's latency.
Each write is one small row, so the figures show the locking and the commits, not the work.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path


def _worker(path: str, lock: bool, seconds: float, concurrency: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from mailwright.store.sqlite.db import Database, WriteContext

    db = Database(Path(path), process_lock=lock)
    db.start(lambda c: None)
    latencies: list[float] = []
    payload = "x" * 200

    def op(ctx: WriteContext) -> None:
        ctx.conn.execute("INSERT INTO t (v) VALUES (?)", (payload,))

    async def run() -> None:
        end = time.monotonic() + seconds

        async def one() -> None:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                await db.write(op)
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(one() for _ in range(concurrency)))

    asyncio.run(run())
    db.stop()
    out.put((len(latencies), db.batches, sorted(latencies)))


def measure(processes: int, lock: bool, seconds: float, concurrency: int,
            ) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory(prefix="mw-writers-") as tmp:
        path = str(Path(tmp) / "db.sqlite")
        c = sqlite3.connect(path)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        c.close()
        ctx = multiprocessing.get_context("spawn")
        out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
        procs = [ctx.Process(target=_worker, args=(path, lock, seconds, concurrency, out))
                 for _ in range(processes)]  # fmt: skip
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
    writes = sum(r[0] for r in results)
    batches = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    p99 = lat[int(len(lat) * 0.99)] if lat else 0.0
    med = statistics.median(lat) if lat else 0.0
    return writes / seconds, writes / max(1, batches), med * 1000, p99 * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    print("| processes | locking | writes/s | writes per commit | latency median / p99 (ms) |")
    print("| --- | --- | --- | --- | --- |")
    for processes in (1, 2):
        for lock in (False, True):
            rate, per_commit, med, p99 = measure(processes, lock, args.seconds, args.concurrency)
            name = "flock" if lock else "busy"
            print(f"| {processes} | {name} | {rate:,.0f} | {per_commit:.1f} | {med:.1f} / {p99:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
