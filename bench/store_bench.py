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
    from mailwright.store.api import FlagOp

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
    finally:
        await store.close()

    async def timed_list(st: Store) -> float:
        t0 = time.monotonic()
        recs = await st.list_messages(mb.id)
        dt = time.monotonic() - t0
        if len(recs) != done:
            raise SystemExit(f"store_bench: listed {len(recs)}, expected {done}")
        return dt

    # "first": the first listing after the store is opened (nothing cached in the process;
    # the OS page cache is warm); "again": the mailbox unchanged since the last listing;
    # "after a change": one message's flags changed since the last listing.
    first: list[float] = []
    again: list[float] = []
    changed: list[float] = []
    for r in range(list_runs):
        store = open_store(config)
        await store.open()
        try:
            first.append(await timed_list(store))
            again.append(await timed_list(store))
            await store.store_flags(mb.id, [1 + r * 997 % done], FlagOp.ADD, ["\\Flagged"])
            changed.append(await timed_list(store))
        finally:
            await store.close()
    for name, times in (("first after opening", first), ("unchanged", again),
                        ("after one flag change", changed)):
        log(f"list_messages of {done} messages, {name}: median {statistics.median(times):.3f}s "
            f"(min {min(times):.3f}, max {max(times):.3f})")
    return {"messages": done, "size": size, "rates": rates,
            "list_first": first, "list_again": again, "list_changed": changed}


def markdown(res: dict[str, object], command: str, when: str) -> str:
    mach = report.machine()
    rates = res["rates"]
    load = res.get("load", (-1.0, -1.0))
    assert isinstance(rates, list) and isinstance(load, tuple)
    n = res["messages"]
    lines = [
        f"Produced by `{command}` on {when}; machine: {mach['cpu']}, {mach['cores']} cores, "
        f"kernel {mach['kernel']}, {mach['os']}; load average {load[0]:.1f} at the start and "
        f"{load[1]:.1f} at the end (other work shared the machine).",
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
    first = res["list_first"]
    assert isinstance(first, list)
    goal = "met" if statistics.median(first) < 0.2 else "not met"
    lines += [
        "",
        f"Listing UID, flags and size of all {n:,} messages (`list_messages`); the store was "
        f"closed and opened again {len(first)} times, and each time listed three times: first "
        "after opening (nothing cached in the process, the OS page cache warm), again with the "
        "mailbox unchanged, and after one message's flags changed (the store keeps a listing "
        "per mailbox and applies the rows changed since its MODSEQ):",
        "",
        "| listing | median | min | max |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, key in (("first after opening", "list_first"), ("unchanged", "list_again"),
                       ("after one flag change", "list_changed")):
        t = res[key]
        assert isinstance(t, list)
        lines.append(f"| {label} | {statistics.median(t):.3f} s | {min(t):.3f} s "
                     f"| {max(t):.3f} s |")
    lines += ["", f"Goal (issue 2): under 0.2 s. First listing after opening: {goal}."]
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
    load_start = report.loadavg()
    try:
        res = asyncio.run(run(args.messages, phases, args.size, args.list_runs, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    argv_used = sys.argv[1:] if argv is None else argv
    command = "python -m bench.store_bench" + (" " + " ".join(argv_used) if argv_used else "")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res["load"] = (load_start, report.loadavg())
    report.replace_region(args.report, "store", markdown(res, command, when))
    log(f"written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
