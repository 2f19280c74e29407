"""The store benchmark of issue 2: delivery throughput with fsync on, and a 100,000-message list.

``python -m bench.store_bench`` creates a scratch Mailwright (``mailwright init`` under /tmp),
then, through the public Store interface only (``blob_writer`` + ``deliver``, the path SMTP
delivery takes, fsync on):

1. delivers messages one at a time, then with 8 and with 64 deliveries in flight, into one
   INBOX until it holds ``--messages`` (default 100,000) messages; the rate per concurrency
   shows group commit (many deliveries sharing one fsync'ed commit);
2. times ``list_messages`` (UID, flags, size of every message) on that mailbox, several times.

The figures go into docs/benchmarks.md between the ``store`` markers, with the command.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench import mailgen, report
from bench.common import DOMAIN, PASSWORD, log

if TYPE_CHECKING:
    from mailwright.store.api import Store

ROOT = Path(__file__).resolve().parents[1]


async def _deliver_phase(st: Store, account_id: int, first: int, count: int,
                         concurrency: int, size: int) -> float:
    from mailwright.delivery.ingest import stage_bytes
    from mailwright.store.api import DeliveryTarget
    nxt = first
    end = first + count
    target = [DeliveryTarget(account_id)]

    async def worker() -> None:
        nonlocal nxt
        while nxt < end:
            i = nxt
            nxt += 1
            blob = await stage_bytes(st, mailgen.message(i, size))
            await st.deliver(blob, target)

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.monotonic() - t0)


async def run(total: int, phases: list[tuple[int, int]], size: int, list_runs: int,
              scratch: Path) -> dict[str, object]:
    from mailwright.accounts.passwords import hash_password
    from mailwright.config import load_config
    from mailwright.store import open_store

    subprocess.run([sys.executable, "-m", "mailwright", "init", str(scratch / "mw"), "--domain",
                    DOMAIN, "--port-base", "20000"], check=True, capture_output=True)
    config = load_config(scratch / "mw" / "mailwright.toml")
    if not config.storage.fsync:
        raise SystemExit("store_bench: fsync is off in the config; refusing to measure")
    store = open_store(config)
    await store.open()
    try:
        if not await store.has_domain(DOMAIN):
            await store.add_domain(DOMAIN)
        acc = await store.add_account(f"bench@{DOMAIN}", hash_password(PASSWORD))
        mb = await store.get_mailbox(acc.id, "INBOX")
        assert mb is not None
        rates: list[dict[str, float]] = []
        done = 0
        for concurrency, count in phases:
            count = min(count, total - done) if count else total - done
            if count <= 0:
                break
            rate = await _deliver_phase(store, acc.id, done, count, concurrency, size)
            done += count
            log(f"delivered {count} messages with {concurrency} in flight: {rate:.0f} msg/s")
            rates.append({"concurrency": concurrency, "messages": count, "rate": rate})
        status = await store.mailbox_status(mb.id)
        if status.messages != done:
            raise SystemExit(f"store_bench: mailbox holds {status.messages}, expected {done}")
        times: list[float] = []
        for _ in range(list_runs):
            t0 = time.monotonic()
            recs = await store.list_messages(mb.id)
            times.append(time.monotonic() - t0)
            assert len(recs) == done
        log(f"list_messages of {done} messages: median {statistics.median(times):.3f}s "
            f"(min {min(times):.3f}, max {max(times):.3f})")
        return {"messages": done, "size": size, "rates": rates, "list_times": times}
    finally:
        await store.close()


def markdown(res: dict[str, object], command: str, when: str) -> str:
    mach = report.machine()
    rates = res["rates"]
    times = res["list_times"]
    assert isinstance(rates, list) and isinstance(times, list)
    n = res["messages"]
    lines = [
        f"Produced by `{command}` on {when}; machine: {mach['cpu']}, {mach['cores']} cores, "
        f"kernel {mach['kernel']}, {mach['os']}.",
        "",
        f"Delivery of {n:,} messages of {int(res['size']) // 1024} KiB (distinct contents) "  # type: ignore[call-overload]
        "into one INBOX of the embedded store (SQLite WAL + blob files, fsync on), through "
        "the Store interface: `blob_writer()` (stream, fsync, parse once) then `deliver()` "
        "(one durable transaction each). Deliveries in flight share commits (group commit):",
        "",
        "| deliveries in flight | messages | messages per second |",
        "| ---: | ---: | ---: |",
    ]
    for r in rates:
        lines.append(f"| {r['concurrency']} | {r['messages']:,} | {r['rate']:.0f} |")
    goal = "met" if statistics.median(times) < 0.2 else "NOT met"
    lines += [
        "",
        f"Listing UID, flags and size of all {n:,} messages (`list_messages`), {len(times)} "
        f"times: median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
        f"max {max(times):.3f} s (goal under 0.2 s: {goal}).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store_bench", description=__doc__)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--list-runs", type=int, default=5)
    args = p.parse_args(argv)
    phases = [(1, max(100, args.messages // 50)), (8, max(200, args.messages // 20)), (64, 0)]
    scratch = Path(tempfile.mkdtemp(prefix="mwbench-store-", dir="/tmp"))
    try:
        res = asyncio.run(run(args.messages, phases, args.size, args.list_runs, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    argv_used = sys.argv[1:] if argv is None else argv
    command = "python -m bench.store_bench" + (" " + " ".join(argv_used) if argv_used else "")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report.replace_region(args.report, "store", markdown(res, command, when))
    log(f"written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
