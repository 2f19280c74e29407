"""The store's side of SMTP fan-out: one message to 50 local accounts, committed through
`Store.deliver_and_queue` (one unit of work), one message after the other.

Run as ``python -m bench.fanout_store [--backend sqlite|postgres] [--messages 40]
[--blobs database|files]``; PostgreSQL uses a scratch database created (and dropped) on the
server of ``--dsn``, with message content as `bytea` or in files (`[storage] blobs`). Prints
the time per 50-recipient unit of work, fsync and commit included: the cost the SMTP fan-out
workload pays once per message at the end of DATA, without the protocol around it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from mailwright.store.api import DeliveryTarget, LocalCopies, Store

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def measure(store: Store, recipients: int, messages: int) -> float:
    """Seconds per unit of work, on average."""
    await store.add_domain("example.test")
    targets = []
    for i in range(recipients):
        account = await store.add_account(f"fan{i:02d}@example.test", "x")
        targets.append(DeliveryTarget(account.id))
    spent = 0.0
    for i in range(messages):
        writer = store.blob_writer()
        writer.write(f"Subject: fan-out {i}\r\n\r\n".encode() + b"x" * 4000 + b"\r\n")
        blob = await writer.finish()
        t0 = time.perf_counter()
        await store.deliver_and_queue(LocalCopies(blob, tuple(targets)), None)
        spent += time.perf_counter() - t0
    return spent / messages


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--dsn", default=ADMIN_DSN, help="a PostgreSQL server to make a database on")
    p.add_argument("--recipients", type=int, default=50)
    p.add_argument("--messages", type=int, default=40)
    p.add_argument("--blobs", choices=("database", "files"), default="database",
                   help="PostgreSQL: message content as bytea (default) or in files")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-fanout-") as tmp:
        await run(args, Path(tmp))


async def run(args: argparse.Namespace, scratch: Path) -> None:
    store: Store
    if args.backend == "sqlite":
        from mailwright.store.sqlite import SQLiteStore

        store = SQLiteStore(scratch)
        name = ""
    else:
        import psycopg

        from mailwright.store.postgres import PostgresStore  # type: ignore[attr-defined]

        name = f"mw_fanout_{os.getpid()}"
        with psycopg.connect(args.dsn, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}".encode())
        store = PostgresStore(args.dsn.rsplit("/", 1)[0] + "/" + name, scratch, blobs=args.blobs)
    await store.open()
    try:
        per = await measure(store, args.recipients, args.messages)
    finally:
        await store.close()
        if name:
            with psycopg.connect(args.dsn, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name}".encode())
    kind = f"{args.backend} ({args.blobs})" if name else args.backend
    print(f"{kind}: {1000 * per:.1f} ms per {args.recipients}-recipient unit of work "
          f"({1 / per:.1f} msg/s, {args.messages} messages)")


if __name__ == "__main__":
    asyncio.run(main())
