"""What IMAP NOTIFY (RFC 5465) costs a session and the server (docs/imap.md).

``python -m bench.imap_notify [--mailboxes M] [--runs N]`` builds a scratch SQLite store whose
account has M (default 300) mailboxes, drives one IMAP session (the real session and connection
core over an in-memory transport, as bench/imap_extensions.py), and prints medians of:

* a NOOP without NOTIFY, and with ``NOTIFY SET (personal (...all message and mailbox events))``
  over the M mailboxes (the per-command cost of the delivery point);
* ``NOTIFY SET STATUS`` over the M mailboxes (one STATUS each);
* a delivery to one of the mailboxes until its STATUS notification reaches the session with no
  command in flight (the hub wake-up, one ``changes_since``, one ``mailbox_status``);
* a CREATE by another session until its LIST notification (one mailbox listing), against a
  CREATE with no NOTIFY session.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.imap_extensions import PASSWORD, _command, _Pipe

EVENTS = b"(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)"


async def _wait_for(pipe: _Pipe, needle: bytes, start: int) -> None:
    while pipe.output.find(needle, start) < 0:
        pipe.written.clear()
        await pipe.written.wait()


async def run(mailboxes: int, runs: int) -> list[tuple[str, float]]:
    from mailwright.accounts.authenticator import Authenticator
    from mailwright.accounts.passwords import hash_password
    from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
    from mailwright.imapd.session import Session, SessionConfig
    from mailwright.store import meta_parser
    from mailwright.store.api import DeliveryTarget
    from mailwright.store.sqlite import SQLiteStore

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "data", fsync=False, meta_parser=meta_parser())
        await store.open()
        try:
            await store.add_domain("example.test")
            acc = await store.add_account("alice@example.test", hash_password(PASSWORD))
            for i in range(mailboxes):
                await store.create_mailbox(acc.id, f"Box{i:04d}")
            auth = Authenticator(store, base_delay=0.0, max_delay=0.0)
            pipes, tasks = [], []
            for _ in range(2):
                pipe = _Pipe()
                session = Session(pipe, store, auth, SessionConfig(hostname="bench.example.test"))
                tasks.append(asyncio.ensure_future(session.run()))
                await _command(pipe, b'l LOGIN alice@example.test "%s"\r\n' % PASSWORD.encode(),
                               b"l")
                pipes.append(pipe)
            a, b = pipes

            async def median(name: str, data: bytes, pipe: _Pipe = a) -> None:
                times = []
                for n in range(runs):
                    tag = b"t%d" % n
                    times.append((await _command(pipe, tag + b" " + data + b"\r\n", tag))[0])
                rows.append((name, statistics.median(times)))

            await median("NOOP (no NOTIFY)", b"NOOP")
            times = []
            for n in range(runs):
                times.append((await _command(b, b"p%d CREATE Pre%d\r\n" % (n, n), b"p%d" % n))[0])
            rows.append(("CREATE (no NOTIFY session)", statistics.median(times)))
            await median(f"NOTIFY SET STATUS (personal ...) over {mailboxes} mailboxes",
                         b"NOTIFY SET STATUS (personal " + EVENTS + b")")
            await median(f"NOOP (NOTIFY over {mailboxes} mailboxes)", b"NOOP")
            times = []
            for n in range(runs):
                name = f"Box{n % mailboxes:04d}"
                w = store.blob_writer()
                w.write(b"From: b@example.test\r\nSubject: %d\r\n\r\nbody\r\n" % n)
                blob = await w.finish()
                start = len(a.output)
                t0 = time.perf_counter()
                await store.deliver(blob, [DeliveryTarget(acc.id, name, frozenset())])
                await _wait_for(a, b"* STATUS " + name.encode(), start)
                times.append(time.perf_counter() - t0)
            rows.append(("delivery until its STATUS notification", statistics.median(times)))
            times = []
            for n in range(runs):
                start = len(a.output)
                t0 = time.perf_counter()
                await _command(b, b"c%d CREATE New%d\r\n" % (n, n), b"c%d" % n)
                await _wait_for(a, b'* LIST () "/" New%d\r\n' % n, start)
                times.append(time.perf_counter() - t0)
            rows.append(("CREATE by another session until its LIST notification",
                         statistics.median(times)))
            for pipe in pipes:
                pipe.incoming.put_nowait(b"")
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await store.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailboxes", type=int, default=300)
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args()
    for name, seconds in asyncio.run(run(args.mailboxes, args.runs)):
        print(f"{name:62} {seconds * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
