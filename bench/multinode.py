"""``python -m bench.multinode``: Mailwright on the embedded store, on PostgreSQL, on two nodes.

Issue 8's benchmark. Three configurations are measured with the same two workloads as the
main harness (``python -m bench``), whose clients, jobs and targets are reused here:

- ``sqlite``: one node on the embedded store (SQLite WAL + blob files);
- ``pg-one``: one node on PostgreSQL (``[storage] backend = "postgres"``);
- ``pg-two``: two nodes sharing one PostgreSQL database, the load split between them (load
  process *p* talks to node *p mod 2*: half of the SMTP sessions and half of the IMAP clients
  on each node, all on the same mailboxes, so the nodes contend for the same rows).

Each PostgreSQL configuration gets a scratch database of its own (``mailwright_bench_<pid>_one``
and ``_two``), created before and dropped after, so that an idle node never hears the other
configuration's NOTIFY traffic. The users and mailboxes are loaded once per database through
the first node's configuration; the second node of ``pg-two`` is a second ``mailwright init``
directory with its own port base whose ``[storage]`` points at the same DSN.

The workloads run alternately, the configuration that goes first rotating from run to run, so
that drift of a shared machine hits all of them alike. The figures go between the markers
``bench:begin multinode`` / ``bench:end multinode`` of docs/benchmarks.md (or the page given
with ``--report``). ``--quick`` is a smoke test (under two minutes; figures not representative).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import mailgen, procmem, report
from bench.common import (
    DOMAIN,
    HOST,
    PASSWORD,
    BenchError,
    log,
    pick_port,
    pick_port_base,
    port_open,
    run,
    server_preexec,
    tail,
    terminate,
    wait_for,
)
from bench.loadgen import run_jobs, split
from bench.sizes import FULL, QUICK, Sizes
from bench.targets.base import Population, Target, password_hashes
from bench.targets.mailwright import Mailwright
from bench.workloads.base import CpuMeter
from bench.workloads.imap import ClientsJob, mixed_job, mixed_mailbox
from bench.workloads.smtp import SmtpJob, smtp_job

ROOT = Path(__file__).resolve().parents[1]
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
REGION = "multinode"

#: Smaller than the main harness's full sizes: three configurations, two nodes, two cores.
MULTI_FULL = replace(FULL, runs=3, client_procs=max(2, FULL.client_procs),
                     ingest_sessions=50, ingest_messages=2000,
                     mixed_clients=20, mixed_seconds=15.0, mixed_mailbox=1000)
MULTI_QUICK = replace(QUICK, runs=2, client_procs=2, ingest_sessions=4, ingest_messages=60,
                      mixed_clients=4, mixed_seconds=2.0, mixed_mailbox=100)

CONFIGS = ("sqlite", "pg-one", "pg-two", "pg-two-haproxy")
LABELS = {
    "sqlite": "one node, embedded store (SQLite)",
    "pg-one": "one node, PostgreSQL",
    "pg-two": "two nodes, one PostgreSQL database",
    "pg-two-haproxy": "two nodes, one PostgreSQL database, behind HAProxy",
}


# -- PostgreSQL --------------------------------------------------------------------------------

def psql(sql: str, dbname: str = "postgres") -> str:
    cp = run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", PG_HOST, "-p",
              str(PG_PORT), "-U", PG_USER, "-d", dbname, "-c", sql], timeout=120)
    return cp.stdout.decode().strip()


def dsn(dbname: str) -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={dbname}"


def create_database(name: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{name}"')
    psql(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    try:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except BenchError as e:
        log(f"dropping {name}: {e}")


def backend_pids(dbname: str) -> list[int]:
    """The server processes of PostgreSQL serving this database (the nodes' connections)."""
    out = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{dbname}' "
               "AND pid <> pg_backend_pid()")
    return [int(x) for x in out.split()]


class PgCpu:
    """CPU of one database's PostgreSQL backends over a span.

    Backends alive at both ends count their difference, backends born in between count
    whole; a backend that exits in between is lost, so this is a lower bound.
    """

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.t0 = time.monotonic()
        self.cpu0 = {p: procmem.cpu_seconds([p]) for p in backend_pids(dbname)}

    def cores(self) -> float:
        total = 0.0
        for p in backend_pids(self.dbname):
            total += procmem.cpu_seconds([p]) - self.cpu0.get(p, 0.0)
        return total / max(time.monotonic() - self.t0, 1e-9)


# -- targets -----------------------------------------------------------------------------------

class CpuLimit:
    """A cgroup of its own for one node, its CPU capped at `cores` (cgroup v2 ``cpu.max`` or
    v1 ``cpu.cfs_quota_us``): a node that stands for a machine of that many cores, so that
    one and two nodes can be compared while the database and the clients are not capped."""

    ROOTS = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup"))

    def __init__(self, name: str, cores: float) -> None:
        self.cores = cores
        self.path: Path | None = None
        for root in self.ROOTS:
            v1 = (root / "cpu.cfs_period_us").exists()
            v2 = (root / "cgroup.controllers").exists() and "cpu" in (
                root / "cgroup.controllers").read_text().split()
            if not (v1 or v2):
                continue
            path = root / f"mwbench-{os.getpid()}-{name}"
            path.mkdir(exist_ok=True)
            quota = int(cores * 100_000)
            if v1:
                (path / "cpu.cfs_period_us").write_text("100000")
                (path / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (path / "cpu.max").write_text(f"{quota} 100000")
            self.path = path
            return
        raise BenchError("no writable cgroup cpu controller: --cpu-limit cannot be applied")

    def add(self, pids: list[int]) -> None:
        assert self.path is not None
        for pid in pids:
            try:
                (self.path / "cgroup.procs").write_text(str(pid))
            except OSError as e:
                raise BenchError(f"cannot move {pid} into {self.path}: {e}") from e

    def remove(self) -> None:
        if self.path is None:
            return
        parent = self.path.parent
        try:
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (parent / "cgroup.procs").write_text(pid)
            self.path.rmdir()
        except OSError as e:
            log(f"removing {self.path}: {e}")
        self.path = None


class Node(Mailwright):
    """One Mailwright node in a directory of its own, on SQLite or on a PostgreSQL DSN.

    ``load`` False: the users and mailboxes are already in the shared database (another
    node's setup loaded them), so only the configuration is written.
    """

    def __init__(self, scratch: Path, name: str, pg_dsn: str | None = None,
                 load: bool = True) -> None:
        super().__init__(scratch)
        self.name = name
        self.dir = scratch / name
        self.conf = self.dir / "mailwright.toml"
        self.pg_dsn = pg_dsn
        self.load = load
        self.cpu_limit: CpuLimit | None = None

    def start(self) -> None:
        super().start()
        if self.cpu_limit is not None and self.proc is not None:
            self.cpu_limit.add(procmem.tree([self.proc.pid]))

    def stop(self) -> None:
        super().stop()
        if self.cpu_limit is not None:
            self.cpu_limit.remove()

    def setup(self, population: Population) -> None:
        # Mailwright.setup's steps (init, listeners, limits, load), with the storage section
        # rewritten between init and the load, and the load only on the first node.
        from bench.targets import mailwright as mw

        base = pick_port_base(list(mw._OFFSETS.values()))
        run([*mw._mailwright(), "init", str(self.dir), "--domain", DOMAIN, "--port-base",
             str(base)])
        self._keep_listeners(mw._WANTED)
        with self.conf.open("a") as f:
            f.write(mw._LIMITS)
        self._write_storage()
        if self.load:
            self._load(population)

    def _write_storage(self) -> None:
        if self.pg_dsn is None:
            return
        text = self.conf.read_text()
        new, n = re.subn(r'(?m)^backend\s*=\s*"sqlite"\s*\ndsn\s*=\s*""',
                         f'backend = "postgres"\ndsn = "{self.pg_dsn}"', text)
        if n != 1:
            raise BenchError(f"{self.conf}: no [storage] section to point at PostgreSQL")
        self.conf.write_text(new)

    def _load(self, population: Population) -> None:
        """The loading half of Mailwright.setup, run with our (possibly PostgreSQL) config."""
        spec = {
            "domain": DOMAIN,
            "hashes": password_hashes(population, PASSWORD),
            "users": list(population.users),
            "maildirs": {u: str(p) for u, p in population.maildirs.items()},
            "concurrency": 16 if self.pg_dsn else 64,  # within the pool's 10 connections
        }
        spec_path = self.dir / "load.json"
        spec_path.write_text(json.dumps(spec))
        t0 = time.monotonic()
        cp = run([sys.executable, "-m", "bench.mwload", str(self.conf), str(spec_path)],
                 timeout=1800, check=False)
        if cp.returncode != 0:
            raise BenchError(f"{self.name}: loading users and mailboxes failed: "
                             + cp.stderr.decode(errors="replace").strip()[-1500:])
        log(f"  {self.name}: users and mailboxes loaded in {time.monotonic() - t0:.1f}s")


@dataclass
class Config:
    """A measured configuration: one or two nodes, and the database its data lives in."""

    key: str
    nodes: list[Node]
    dbname: str | None = None
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    #: protocol -> the address of a load balancer in front of the nodes, if any
    front: dict[str, tuple[str, int]] = field(default_factory=dict)

    def endpoints(self, protocol: str) -> list[tuple[str, int]]:
        if protocol in self.front:
            return [self.front[protocol]]
        return [n.endpoint(protocol) for n in self.nodes]

    def meter_target(self) -> Target:
        return _Group(self.nodes)


class _Group(Target):
    """Several nodes seen as one process tree, for CpuMeter."""

    def __init__(self, nodes: list[Node]) -> None:
        super().__init__()
        self.nodes = nodes

    def root_pids(self) -> list[int]:
        return [p for n in self.nodes for p in n.root_pids()]


class HAProxy:
    """HAProxy in TCP mode, round robin per connection over the nodes (no PROXY header).

    Without the PROXY protocol the nodes see every client as 127.0.0.1; that only matters
    to per-address limits, which the benchmark's configuration raises anyway.
    """

    def __init__(self, scratch: Path, nodes: list[Node], protocols: tuple[str, ...]) -> None:
        self.cfg = scratch / "haproxy.cfg"
        self.nodes = nodes
        self.protocols = protocols
        self.front: dict[str, tuple[str, int]] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        lines = ["global", "    maxconn 4000", "defaults", "    mode tcp",
                 "    timeout connect 5s", "    timeout client 1h", "    timeout server 1h", ""]
        for proto in self.protocols:
            port = pick_port()
            self.front[proto] = (HOST, port)
            lines += [f"frontend fe_{proto}", f"    bind {HOST}:{port}",
                      f"    default_backend be_{proto}", f"backend be_{proto}",
                      "    balance roundrobin"]
            lines += [f"    server {n.name} {n.endpoint(proto)[0]}:{n.endpoint(proto)[1]}"
                      for n in self.nodes]
            lines.append("")
        self.cfg.write_text("\n".join(lines))
        log_path = self.cfg.with_suffix(".log")
        with log_path.open("ab") as err:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg)],
                                         stdout=err, stderr=err, stdin=subprocess.DEVNULL,
                                         preexec_fn=server_preexec)
        proc = self.proc
        for _proto, (_h, port) in self.front.items():

            def up(port: int = port) -> bool:
                return port_open(port) or proc.poll() is not None

            wait_for(up, 30, f"haproxy on port {port}")
            if proc.poll() is not None:
                raise BenchError("haproxy exited:\n" + tail(log_path))
        log(f"  haproxy: {', '.join(f'{k}={h}:{p}' for k, (h, p) in self.front.items())}")

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, timeout=10)
            self.proc = None


# -- workloads ---------------------------------------------------------------------------------

def ingest_describe(s: Sizes) -> str:
    return (f"{s.ingest_sessions} concurrent SMTP sessions send {s.ingest_messages} messages of "
            f"{s.ingest_size // 1024} KiB in total to one local mailbox (bob), from "
            f"{s.client_procs} client processes; a 250 after DATA means the message is durably "
            "in the mailbox (fsync'ed blob, committed transaction).")


def mixed_describe(s: Sizes) -> str:
    return (f"{s.mixed_clients} concurrent clients on one {s.mixed_mailbox}-message INBOX "
            f"(2-64 KiB) for {s.mixed_seconds:g} s, from {s.client_procs} client processes, each "
            "repeating rounds of SELECT, FETCH of 20 headers, FETCH of a whole message, STORE, "
            "SEARCH UNSEEN, SEARCH FROM, APPEND 4 KiB, UID STORE \\Deleted, UID EXPUNGE.")


def _meters(cfg: Config) -> tuple[CpuMeter, PgCpu | None]:
    return CpuMeter(cfg.meter_target()), (PgCpu(cfg.dbname) if cfg.dbname else None)


def _finish(values: dict[str, float], meter: CpuMeter, pg: PgCpu | None,
            client_cpu_max: float) -> dict[str, float]:
    values["server_cores"] = meter.cores()
    if pg is not None:
        values["pg_cores"] = pg.cores()
    values["client_cpu_max"] = client_cpu_max
    return values


def run_ingest(cfg: Config, s: Sizes) -> dict[str, float]:
    eps = cfg.endpoints("smtp")
    before = cfg.nodes[0].count("bob")
    procs = max(min(s.client_procs, s.ingest_sessions), len(eps))
    per_session = split(s.ingest_messages, s.ingest_sessions)
    jobs: list[SmtpJob] = []
    k = 0
    for p, ns in enumerate(split(s.ingest_sessions, procs)):
        host, port = eps[p % len(eps)]
        jobs.append(SmtpJob(host, port, tuple(per_session[k : k + ns]), (f"bob@{DOMAIN}",),
                            s.ingest_size, seed=1000 * p))
        k += ns
    meter, pg = _meters(cfg)
    load = run_jobs(smtp_job, jobs)
    values = _finish({}, meter, pg, load.client_cpu_max)
    if sum(load.results) != s.ingest_messages:
        raise BenchError(f"sent {sum(load.results)} of {s.ingest_messages} messages")
    values["accepted"] = s.ingest_messages / load.wall
    # Every node answers 250 only once the message is in the mailbox: check that it is so,
    # through the first node (on two nodes, half of them came in through the other one).
    after = cfg.nodes[0].count("bob")
    if before is not None and after is not None and after < before + s.ingest_messages:
        raise BenchError(f"{cfg.key}: bob's INBOX has {after - before} of the "
                         f"{s.ingest_messages} messages acknowledged")
    return values


def run_mixed(cfg: Config, s: Sizes) -> dict[str, float]:
    eps = cfg.endpoints("imap")
    procs = max(min(s.client_procs, s.mixed_clients), len(eps))
    jobs = [ClientsJob(*eps[p % len(eps)], n, s.mixed_seconds, seed=p)
            for p, n in enumerate(split(s.mixed_clients, procs))]
    meter, pg = _meters(cfg)
    load = run_jobs(mixed_job, jobs)
    values = _finish({}, meter, pg, load.client_cpu_max)
    values["commands"] = sum(r[0] for r in load.results) / load.wall
    values["failed"] = float(sum(r[1] for r in load.results))
    return values


def warm_mixed(cfg: Config) -> None:
    """Untimed: one short client on every node, so that each builds its caches once."""
    for host, port in cfg.endpoints("imap"):
        run_jobs(mixed_job, [ClientsJob(host, port, 1, 0.1, seed=999)])


WORKLOADS: dict[str, tuple[str, str, Callable[[Config, Sizes], dict[str, float]],
                           Callable[[Sizes], str]]] = {
    "smtp-ingest": ("SMTP ingest", "accepted", run_ingest, ingest_describe),
    "imap-mixed": ("IMAP mixed", "commands", run_mixed, mixed_describe),
}
UNITS = {"accepted": "msg/s", "commands": "cmd/s"}


# -- report ------------------------------------------------------------------------------------

def _stats(vals: list[float]) -> str:
    f = report._fmt
    return f"{f(statistics.median(vals))} | {f(min(vals))} | {f(max(vals))}"


def _ratios(a: list[dict[str, float]], b: list[dict[str, float]], key: str) -> list[float]:
    return [x[key] / y[key] for x, y in zip(a, b, strict=False) if y.get(key)]


def markdown(meta: dict[str, Any], configs: dict[str, Config], sizes: Sizes,
             errors: list[str]) -> str:
    m = meta["machine"]
    out = [
        f"Produced by `{meta['command']}` on {meta['started']} in {meta['duration_s'] / 60:.1f} "
        f"minutes; machine: {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, {m['os']}, "
        f"Python {m['python']}, PostgreSQL {meta['pg_version']} on the same machine "
        f"(`fsync = {meta['pg_fsync']}`, `synchronous_commit = {meta['pg_sync']}`, "
        f"`shared_buffers = {meta['pg_shared_buffers']}`, "
        "its default configuration otherwise); "
        f"load average {meta['load_start']:.2f} at the start and {meta['load_end']:.2f} at the "
        "end (other engineers' work shared the machine).",
        "",
        f"Every configuration ran each workload {sizes.runs} times, alternately, the one that "
        "goes first rotating from run to run. Clients, servers and PostgreSQL share the same "
        f"{m['cores']} cores: two nodes here show the cost of sharing a database, not the "
        "gain of a second machine. *Mailwright CPU* is the nodes' CPU seconds per wall second "
        "(in cores), *PostgreSQL CPU* that of the database's backends (a lower bound: a "
        "backend that exits during a run is not counted).",
        "",
        "On two nodes, load process *p* talks to node *p* mod 2: half of the SMTP sessions and "
        "half of the IMAP clients go to each node, on the same mailboxes (bob's INBOX for "
        "ingest, alice's for the mixed load), so the nodes contend for the same mailbox rows "
        "(UID and MODSEQ allocation) and hear each other's changes through LISTEN/NOTIFY. "
        "Each PostgreSQL configuration has a scratch database of its own, created for the run "
        "and dropped after it; every node's connection pool holds at most 10 connections.",
    ]
    if "pg-two-haproxy" in configs:
        out += ["", "Behind HAProxy, every client connects to HAProxy (TCP mode, round robin "
                "per connection, no PROXY header) in front of the same two nodes; HAProxy's own "
                "CPU is not in the figures."]
    if meta.get("cpu_limit"):
        out += ["", f"**Every node's CPU was capped at {meta['cpu_limit']:g} core(s)** (a "
                "cgroup per node, `--cpu-limit`); PostgreSQL and the clients were not: a node "
                "stands for a machine of that size, so two nodes against one show whether "
                "adding a machine pays."]
    if sizes.quick:
        out += ["", "**Quick run (`--quick`): a smoke test, the figures are not representative.**"]
    for wl_key, (title, metric, _fn, describe) in WORKLOADS.items():
        out += ["", f"### {title}", "", describe(sizes), "",
                f"| configuration | median {UNITS[metric]} | min | max | runs | Mailwright CPU "
                "| PostgreSQL CPU | busiest client process |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        extra = ""
        for key in CONFIGS:
            cfg = configs.get(key)
            runs = cfg.runs.get(wl_key, []) if cfg else []
            if cfg is None and key == "pg-two-haproxy":
                continue  # opt-in (--haproxy)
            if not runs:
                out.append(f"| {LABELS[key]} | not measured | | | 0 | | | |")
                continue
            vals = [r[metric] for r in runs]
            sc = statistics.median(r["server_cores"] for r in runs)
            pgc = [r["pg_cores"] for r in runs if "pg_cores" in r]
            cl = statistics.median(r["client_cpu_max"] for r in runs)
            out.append(f"| {LABELS[key]} | {_stats(vals)} | {len(runs)} | {sc:.2f} | "
                       f"{f'{statistics.median(pgc):.2f}' if pgc else '–'} | {cl * 100:.0f} % |")
            failed = [int(r.get("failed", 0)) for r in runs]
            if any(failed):
                extra += (f" {LABELS[key]}: commands answered NO or BAD per run: "
                          f"{', '.join(map(str, failed))}.")
        out += ["", "| ratio | median | min | max | run by run |", "| --- | ---: | ---: | ---: | --- |"]
        for num, den, label in (("pg-one", "sqlite", "PostgreSQL one node / SQLite"),
                                ("pg-two", "pg-one", "PostgreSQL two nodes / one node"),
                                ("pg-two", "sqlite", "PostgreSQL two nodes / SQLite"),
                                ("pg-two-haproxy", "pg-two", "two nodes behind HAProxy / direct")):
            a, b = configs.get(num), configs.get(den)
            if num == "pg-two-haproxy" and a is None:
                continue
            rs = _ratios(a.runs.get(wl_key, []), b.runs.get(wl_key, []), metric) if a and b else []
            if rs:
                out.append(f"| {label} | {report._fmt(statistics.median(rs))} | "
                           f"{report._fmt(min(rs))} | {report._fmt(max(rs))} | "
                           f"{', '.join(f'{r:.2f}' for r in rs)} |")
            else:
                out.append(f"| {label} | – | | | not measured |")
        if extra:
            out += ["", "Failed commands:" + extra]
    if errors:
        out += ["", "Failures during this run:", ""] + [f"- {e}" for e in errors]
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------------

def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.multinode",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="small workloads (under 2 minutes)")
    p.add_argument("--runs", type=int, help="runs per workload and configuration "
                                            "(default 3, quick 2)")
    p.add_argument("--report", type=Path,
                   help="Markdown page to update between the multinode markers (default "
                        "docs/benchmarks.md; bench/out/quick/multinode.md with --quick)")
    p.add_argument("--haproxy", action="store_true",
                   help="also measure the two nodes behind HAProxy (round robin, TCP mode)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--ingest-messages", type=int, metavar="N",
                   help="messages of the SMTP ingest workload (default 2000, quick 60)")
    p.add_argument("--workloads", default="smtp-ingest,imap-mixed",
                   help="workloads to run, comma-separated (default: both)")
    p.add_argument("--configs", default="sqlite,pg-one,pg-two",
                   help="configurations to measure, comma-separated (default: all three)")
    p.add_argument("--cpu-limit", type=float, metavar="CORES",
                   help="cap every node's CPU at CORES (a cgroup per node; PostgreSQL and the "
                        "clients are not capped): a node stands for a machine of that size")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    sizes = MULTI_QUICK if args.quick else MULTI_FULL
    if args.runs:
        sizes = replace(sizes, runs=args.runs)
    if args.ingest_messages:
        sizes = replace(sizes, ingest_messages=args.ingest_messages)
    page = args.report or default_page(args.quick)
    if shutil.which("psql") is None:
        raise SystemExit("psql not found (PostgreSQL client): nothing to measure")
    started = datetime.now(UTC)
    load_start = report.loadavg()
    t_start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="mwbench-multi-", dir="/tmp"))
    log(f"scratch directory {scratch}")
    db_one, db_two = f"mailwright_bench_{os.getpid()}_one", f"mailwright_bench_{os.getpid()}_two"
    created: list[str] = []
    started_nodes: list[Node] = []
    configs: dict[str, Config] = {}
    errors: list[str] = []
    balancer: HAProxy | None = None
    try:
        for db in (db_one, db_two):
            create_database(db)
            created.append(db)
        pop_dir = scratch / "corpus" / "alice"
        mailgen.write_maildir(pop_dir, mixed_mailbox(sizes.mixed_mailbox))
        pop = Population(("alice", "bob"), {"alice": pop_dir}, fast_hash_users=("bob",))
        configs = {
            "sqlite": Config("sqlite", [Node(scratch, "sqlite")]),
            "pg-one": Config("pg-one", [Node(scratch, "pg-one", dsn(db_one))], db_one),
            "pg-two": Config("pg-two", [Node(scratch, "pg-two-a", dsn(db_two)),
                                        Node(scratch, "pg-two-b", dsn(db_two), load=False)],
                             db_two),
        }
        wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
        configs = {k: v for k, v in configs.items() if k in wanted}
        for cfg in configs.values():
            for node in cfg.nodes:
                log(f"setting up {node.name}")
                node.setup(pop)
                if args.cpu_limit:
                    node.cpu_limit = CpuLimit(node.name, args.cpu_limit)
                node.start()
                started_nodes.append(node)
        if args.haproxy:
            if shutil.which("haproxy") is None:
                errors.append("haproxy not found: the configuration behind it was not measured")
            else:
                two = configs["pg-two"]
                balancer = HAProxy(scratch, two.nodes, ("smtp", "imap"))
                try:
                    balancer.start()
                    configs["pg-two-haproxy"] = Config("pg-two-haproxy", two.nodes,
                                                       two.dbname, front=balancer.front)
                except BenchError as e:
                    errors.append(f"haproxy: {str(e).splitlines()[0][:300]}")
        order = list(configs.values())
        for wl_key, (title, metric, fn, _d) in WORKLOADS.items():
            if wl_key not in args.workloads.split(","):
                continue
            log(f"== {title}: {', '.join(configs)} x {sizes.runs} runs")
            if wl_key == "imap-mixed":
                for cfg in order:
                    warm_mixed(cfg)
            for i in range(sizes.runs):
                for cfg in order[i % len(order):] + order[: i % len(order)]:
                    try:
                        vals = fn(cfg, sizes)
                    except BenchError as e:
                        msg = f"{title}, {cfg.key}, run {i + 1}: {str(e).splitlines()[0][:300]}"
                        log(f"  FAILED: {msg}")
                        errors.append(msg)
                        continue
                    cfg.runs.setdefault(wl_key, []).append(vals)
                    log(f"  {cfg.key} run {i + 1}: {metric}={report._fmt(vals[metric])} "
                        f"server {vals['server_cores']:.2f} cores"
                        + (f", postgres {vals['pg_cores']:.2f}" if "pg_cores" in vals else "")
                        + (f", failed {vals['failed']:.0f}" if vals.get("failed") else ""))
    except KeyboardInterrupt:
        log("interrupted: stopping the nodes")
        return 130
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        if balancer is not None:
            balancer.stop()
        for node in reversed(started_nodes):
            try:
                node.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                log(f"stopping {node.name}: {e}")
        pg_meta = _pg_meta()
        for db in created:
            drop_database(db)
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    meta = {
        "command": "python -m bench.multinode" + (" " + " ".join(argv) if argv else ""),
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": time.monotonic() - t_start,
        "load_start": load_start, "load_end": report.loadavg(),
        "machine": report.machine(), **pg_meta, "cpu_limit": args.cpu_limit,
    }
    body = markdown(meta, configs, sizes, errors)
    write_page(page, body)
    raw = ROOT / "bench/out" / ("multinode-quick.json" if sizes.quick else "multinode.json")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"meta": meta, "runs": {k: c.runs for k, c in configs.items()},
                               "errors": errors}, indent=1))
    print(body)
    log(f"report written to {page}")
    return 0


SECTION = "## Several nodes on PostgreSQL"
SIDE_PAGE = "docs/bench/multinode.md"


def default_page(quick: bool) -> Path:
    """docs/benchmarks.md, unless someone has uncommitted changes in it.

    The page is shared with the main harness's regenerated sections: while its owner has work
    in progress there, the figures go to a page of their own rather than mix with it.
    """
    if quick:
        return ROOT / "bench/out/quick/multinode.md"
    main = ROOT / "docs/benchmarks.md"
    cp = run(["git", "-C", str(ROOT), "diff", "--quiet", "--", "docs/benchmarks.md"],
             check=False)
    if cp.returncode != 0:
        log(f"docs/benchmarks.md has uncommitted changes: writing {SIDE_PAGE} instead")
        return ROOT / SIDE_PAGE
    return main


def write_page(page: Path, body: str) -> None:
    """Fill the multinode region, appending the section (heading and markers) if it is new."""
    begin = report.BEGIN.format(name=REGION)
    text = page.read_text() if page.exists() else ""
    if begin not in text:
        if not text:
            text = ("# Mailwright on several nodes: benchmark\n\n"
                    "Written by `python -m bench.multinode`; see docs/benchmarks.md for the "
                    "method of the main benchmark, whose clients and workloads it reuses.\n")
        text = (text.rstrip("\n") + f"\n\n{SECTION}\n\n{begin}\n(not run yet)\n"
                + report.END.format(name=REGION) + "\n")
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(text)
    report.replace_region(page, REGION, body)


def _pg_meta() -> dict[str, str]:
    out: dict[str, str] = {}
    for key, sql in (("pg_version", "SHOW server_version"), ("pg_fsync", "SHOW fsync"),
                     ("pg_sync", "SHOW synchronous_commit"),
                     ("pg_shared_buffers", "SHOW shared_buffers")):
        try:
            out[key] = psql(sql).split()[0]
        except (BenchError, IndexError, subprocess.SubprocessError):
            out[key] = "?"
    return out


if __name__ == "__main__":
    sys.exit(main())
