"""``python -m bench.pg_roundtrips``: how many times a PostgreSQL node waits for its database.

A node's cost on PostgreSQL is mostly its conversation with the database: every wait for an
answer is a round trip (a network latency, a wake-up of the event loop, a few hundred
microseconds of Python in psycopg). This tool puts a counting TCP relay between one node
(``mailwright serve``) and PostgreSQL and counts, per delivered SMTP message and per IMAP
command of the mixed workload:

- **round trips**: on each connection, every time the database starts answering after the
  node sent something (a burst of the node's messages followed by the server's reply);
- **statements**: the frontend protocol's Execute ('E') and simple Query ('Q') messages;
- **syncs**: Sync ('S') messages (one per statement outside pipeline mode, one per batch in
  it).

The relay speaks no TLS (the node's DSN says ``sslmode=disable``) and parses only the message
framing (RFC-less, PostgreSQL's protocol 3.0: a type byte and a 32-bit length). The workloads
are the main harness's clients, smaller: a few SMTP sessions to one mailbox, then a few IMAP
clients doing the mixed rounds on a 200-message INBOX.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import mailgen
from bench.common import DOMAIN, log, pick_port
from bench.loadgen import run_jobs, split
from bench.multinode import Node, create_database, drop_database
from bench.targets.base import Population
from bench.workloads.imap import ClientsJob, mixed_job, mixed_mailbox
from bench.workloads.smtp import SmtpJob, smtp_job

PG = ("127.0.0.1", 5432)


@dataclass
class Counts:
    round_trips: int = 0
    statements: int = 0
    syncs: int = 0
    connections: int = 0
    #: statement text -> executions (with ``--statements``)
    texts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> tuple[int, int, int, int]:
        with self.lock:
            return self.round_trips, self.statements, self.syncs, self.connections


class Relay:
    """A counting TCP relay to PostgreSQL, on its own thread and event loop."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.port = pick_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self._server = server
        self._loop.run_forever()

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection(*PG)
        with self.counts.lock:
            self.counts.connections += 1
        # the node spoke last: the server's next bytes are an answer (one round trip)
        state = {"node_spoke": False}
        prepared: dict[bytes, str] = {}  # statement name -> text, on this connection
        bound = [""]

        async def node_to_server() -> None:
            buf = b""
            started = False  # the startup packet has no type byte
            while data := await cr.read(65536):
                state["node_spoke"] = True
                buf += data
                while True:
                    if not started:
                        if len(buf) < 4:
                            break
                        n = struct.unpack("!I", buf[:4])[0]
                        if len(buf) < n:
                            break
                        buf = buf[n:]
                        started = True
                        continue
                    if len(buf) < 5:
                        break
                    kind, n = buf[:1], struct.unpack("!I", buf[1:5])[0]
                    if len(buf) < 1 + n:
                        break
                    body, buf = buf[5:1 + n], buf[1 + n:]
                    if kind == b"P":
                        name, _, rest = body.partition(b"\0")
                        prepared[name] = rest.partition(b"\0")[0].decode(errors="replace")
                    elif kind == b"B":
                        bound[0] = prepared.get(body.split(b"\0")[1], "?")
                    elif kind == b"Q":
                        bound[0] = body.rstrip(b"\0").decode(errors="replace")
                    with self.counts.lock:
                        if kind in (b"E", b"Q"):
                            text = " ".join(bound[0].split())[:110]
                            self.counts.texts[text] = self.counts.texts.get(text, 0) + 1
                            self.counts.statements += 1
                        elif kind == b"S":
                            self.counts.syncs += 1
                sw.write(data)
                await sw.drain()
            sw.close()

        async def server_to_node() -> None:
            while data := await sr.read(65536):
                if state["node_spoke"]:
                    state["node_spoke"] = False
                    with self.counts.lock:
                        self.counts.round_trips += 1
                cw.write(data)
                await cw.drain()
            cw.close()

        try:
            await asyncio.gather(node_to_server(), server_to_node())
        except (ConnectionError, OSError):
            pass
        finally:
            cw.close()
            sw.close()


def measure(args: argparse.Namespace) -> dict[str, float]:
    relay = Relay()
    relay.start()
    scratch = Path(tempfile.mkdtemp(prefix="mwbench-rt-", dir="/tmp"))
    db = f"mailwright_rt_{os.getpid()}"
    create_database(db)
    node: Node | None = None
    out: dict[str, float] = {}
    try:
        pop_dir = scratch / "corpus" / "alice"
        mailgen.write_maildir(pop_dir, mixed_mailbox(args.mailbox))
        pop = Population(("alice", "bob"), {"alice": pop_dir}, fast_hash_users=("bob",))
        node = Node(scratch, "pg", f"host=127.0.0.1 port={relay.port} user=postgres "
                                   f"dbname={db} sslmode=disable")
        node.setup(pop)
        node.start()
        host, port = node.endpoint("smtp")
        time.sleep(1.0)
        spy = None
        if args.profile:
            assert node.proc is not None
            spy = subprocess.Popen(["py-spy", "record", "--nonblocking", "-r", "200", "-f", "raw",
                                    "-o", str(args.profile), "-p", str(node.proc.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        r0 = relay.counts.snapshot()
        t0 = dict(relay.counts.texts)
        per_session = split(args.messages, args.sessions)
        jobs = [SmtpJob(host, port, tuple(per_session), (f"bob@{DOMAIN}",), 4096, seed=7)]
        load = run_jobs(smtp_job, jobs)
        r1 = relay.counts.snapshot()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        t1 = dict(relay.counts.texts)
        n = sum(load.results)
        out["smtp_messages"] = n
        out["smtp_round_trips"] = (r1[0] - r0[0]) / n
        out["smtp_statements"] = (r1[1] - r0[1]) / n
        out["smtp_syncs"] = (r1[2] - r0[2]) / n
        out["smtp_rate"] = n / load.wall
        ihost, iport = node.endpoint("imap")
        run_jobs(mixed_job, [ClientsJob(ihost, iport, 1, 0.2, seed=99)])  # warm the caches
        time.sleep(0.5)
        r2 = relay.counts.snapshot()
        t2 = dict(relay.counts.texts)
        mload = run_jobs(mixed_job, [ClientsJob(ihost, iport, args.clients, args.seconds, seed=1)])
        r3 = relay.counts.snapshot()
        t3 = dict(relay.counts.texts)
        if args.statements:
            for title, a, b, per in (("SMTP", t0, t1, n), ("IMAP", t2, t3, None)):
                per = per or max(1, sum(r[0] for r in mload.results))
                log(f"statements per {title} message/command:")
                for text, k in sorted(b.items(), key=lambda kv: -(kv[1] - a.get(kv[0], 0))):
                    if k - a.get(text, 0):
                        print(f"  {(k - a.get(text, 0)) / per:6.2f}  {text}")
        cmds = sum(r[0] for r in mload.results)
        out["imap_commands"] = cmds
        out["imap_failed"] = sum(r[1] for r in mload.results)
        out["imap_round_trips"] = (r3[0] - r2[0]) / cmds
        out["imap_statements"] = (r3[1] - r2[1]) / cmds
        out["imap_syncs"] = (r3[2] - r2[2]) / cmds
        out["imap_rate"] = cmds / mload.wall
        out["connections"] = r3[3]
    finally:
        if node is not None:
            node.stop()
        drop_database(db)
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pg_roundtrips",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=300)
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--mailbox", type=int, default=200)
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="py-spy samples of the node during the SMTP part (raw, collapsed)")
    p.add_argument("--statements", action="store_true",
                   help="list the statements executed, per message and per command")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    out = measure(args)
    log("per delivered SMTP message: "
        f"{out['smtp_round_trips']:.1f} round trips, {out['smtp_statements']:.1f} statements, "
        f"{out['smtp_syncs']:.1f} syncs ({out['smtp_messages']:.0f} messages, "
        f"{out['smtp_rate']:.0f} msg/s)")
    log("per IMAP command (mixed): "
        f"{out['imap_round_trips']:.2f} round trips, {out['imap_statements']:.2f} statements, "
        f"{out['imap_syncs']:.2f} syncs ({out['imap_commands']:.0f} commands, "
        f"{out['imap_rate']:.0f} cmd/s, {out['imap_failed']:.0f} NO/BAD)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
