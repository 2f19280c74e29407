"""IMAP workloads: a mixed client load, memory per IDLE session, and a 100,000-message mailbox."""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from bench import mailgen, procmem
from bench.clients import source_address
from bench.clients.imap import ImapClient
from bench.common import DOMAIN, PASSWORD, BenchError, log
from bench.loadgen import Gate, JobFn, run_jobs, split
from bench.targets.base import Target
from bench.workloads.base import CpuMeter, Metric, RunResult, Workload, result

_EXISTS = re.compile(rb"^\* (\d+) EXISTS", re.M)

#: messages in alice's INBOX cycle through these sizes (bytes)
MIXED_SIZES = (2048, 4096, 4096, 8192, 16384, 65536)


def mixed_mailbox(n: int) -> list[bytes]:
    return [mailgen.message(i, MIXED_SIZES[i % len(MIXED_SIZES)], eol=b"\n") for i in range(n)]


async def _login(host: str, port: int, user: str, source: str | None = None) -> ImapClient:
    c = await ImapClient.connect(host, port, source)
    await c.login(f"{user}@{DOMAIN}", PASSWORD)
    return c


def _exists(untagged: list[bytes]) -> int:
    for line in untagged:
        m = _EXISTS.match(line)
        if m:
            return int(m.group(1))
    raise BenchError("SELECT gave no EXISTS")


# -- clients of one user, for a time (imap-mixed, imap-sessions) ---------------------------

@dataclass(frozen=True, slots=True)
class ClientsJob:
    """The clients of one load process (`seed`: its number, which also seeds its choices)."""

    host: str
    port: int
    clients: int
    seconds: float  # each client starts commands until this much time has passed
    seed: int


def client_jobs(target: Target, clients: int, seconds: float, procs: int) -> list[ClientsJob]:
    """`clients` spread over at most `procs` load processes."""
    host, port = target.endpoint("imap")
    return [
        ClientsJob(host, port, n, seconds, seed=p)
        for p, n in enumerate(split(clients, min(procs, clients)))
    ]


def warm_up(job: JobFn, target: Target, seconds: float) -> None:
    """One untimed client of `job` for `seconds`: lets a server build its index/cache of the
    mailbox once, before the timed runs."""
    host, port = target.endpoint("imap")
    run_jobs(job, [ClientsJob(host, port, 1, seconds, seed=999)])


async def login_clients(job: ClientsJob, user: str) -> list[ImapClient]:
    """The job's clients, logged in as `user`, each from a source address of its own."""
    return [
        await _login(job.host, job.port, user, source_address(job.seed, k))
        for k in range(job.clients)
    ]


# -- mixed -----------------------------------------------------------------------------------

async def mixed_job(job: ClientsJob, gate: Gate) -> tuple[int, int, list[str]]:
    clients = await login_clients(job, "alice")
    appended = mailgen.message(10_000_000 + job.seed, 4096)
    refusals: list[str] = []  # the first few NO/BAD answers, for the log
    await gate.start()

    async def one(c: ImapClient, k: int) -> tuple[int, int]:
        rng = random.Random(job.seed * 1000 + k)
        done = failed = 0

        def refused(line: bytes, ans: Any) -> None:
            nonlocal failed
            failed += 1
            if len(refusals) < 5:
                refusals.append(f"{line[:80]!r} -> {ans.tagged[:200]!r}")

        async def cmd(line: bytes) -> Any:
            # A NO or BAD is counted and reported, not fatal: the run goes on.
            nonlocal done
            ans = await c.command(line, ok=False)
            done += 1
            if ans.status != b"OK":
                refused(line, ans)
            return ans

        deadline = time.monotonic() + job.seconds
        while time.monotonic() < deadline:
            sel = await cmd(b"SELECT INBOX")
            n = _exists(sel.untagged)
            lo = rng.randint(1, max(1, n - 19))
            await cmd(b"FETCH %d:%d (UID FLAGS RFC822.SIZE INTERNALDATE "
                      b"BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])"
                      % (lo, min(n, lo + 19)))
            one_msg = rng.randint(1, n)
            await cmd(b"FETCH %d (BODY.PEEK[])" % one_msg)
            await cmd(b"STORE %d +FLAGS (\\Flagged)" % one_msg)
            await cmd(b"UID SEARCH UNSEEN")
            await cmd(b'UID SEARCH FROM "sender%d@"' % rng.randint(0, 96))
            ans, uid = await c.append("INBOX", appended, "\\Seen", ok=False)
            done += 1
            if ans.status != b"OK":
                refused(b"APPEND", ans)
                continue
            if uid is None:
                raise BenchError("server did not answer APPENDUID (RFC 4315)")
            await cmd(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % uid)
            await cmd(b"UID EXPUNGE %d" % uid)
        return done, failed

    counts = await asyncio.gather(*(one(c, k) for k, c in enumerate(clients)))
    gate.stop()
    await asyncio.gather(*(c.logout() for c in clients))
    return sum(d for d, _ in counts), sum(f for _, f in counts), refusals


class ImapMixed(Workload):
    name = "imap-mixed"
    title = "IMAP mixed"
    protocol = "imap"
    metrics = (
        Metric("commands", "commands completed", "cmd/s", True),
        Metric("failed", "commands answered NO or BAD", "per run", False),
    )

    def describe(self) -> str:
        s = self.sizes
        return (f"{s.mixed_clients} concurrent clients on one {s.mixed_mailbox}-message INBOX "
                f"(2-64 KiB) for {s.mixed_seconds:g} s, each repeating rounds of SELECT, "
                "FETCH of 20 headers, "
                "FETCH of a whole message, STORE, SEARCH UNSEEN, SEARCH FROM, APPEND 4 KiB, "
                "UID STORE \\Deleted, UID EXPUNGE.")

    def prepare(self, target: Target) -> None:
        warm_up(mixed_job, target, 0.1)

    def run(self, target: Target) -> RunResult:
        s = self.sizes
        jobs = client_jobs(target, s.mixed_clients, s.mixed_seconds, s.client_procs)
        meter = CpuMeter(target)
        load = run_jobs(mixed_job, jobs)
        done = sum(r[0] for r in load.results)
        failed = sum(r[1] for r in load.results)
        for line in [x for r in load.results for x in r[2]][:5]:
            log(f"  {target.name}: {line}")
        return result(load, {"commands": done / load.wall, "failed": float(failed)}, meter)


# -- idle ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class IdleJob:
    host: str
    port: int
    levels: tuple[int, ...]  # sessions this process holds at each level (cumulative)
    parallel: int
    process: int


async def idle_job(job: IdleJob, gate: Gate) -> list[float]:
    sessions: list[ImapClient] = []
    durations: list[float] = []
    sem = asyncio.Semaphore(job.parallel)

    async def open_one(k: int) -> ImapClient:
        async with sem:
            c = await _login(job.host, job.port, "idle", source_address(job.process, k))
            await c.command(b"SELECT INBOX")
            await c.idle_start()
            return c

    await gate.start()
    try:
        for level in job.levels:
            t0 = time.monotonic()
            sessions += await asyncio.gather(*(open_one(k) for k in range(len(sessions), level)))
            durations.append(time.monotonic() - t0)
            await gate.hold(len(sessions))
    finally:
        for c in sessions:
            c.close()
    return durations


class ImapIdle(Workload):
    name = "imap-idle"
    title = "IMAP IDLE memory"
    protocol = "imap"

    @property
    def metrics(self) -> tuple[Metric, ...]:  # type: ignore[override]
        out: list[Metric] = []
        for n in self.sizes.idle_levels:
            out.append(Metric(f"pss{n}", f"PSS per session at {n:,} sessions", "KiB", False))
            out.append(Metric(f"rss{n}", f"RSS per session at {n:,} sessions", "KiB", False))
            out.append(Metric(f"rate{n}", f"sessions opened (LOGIN+SELECT+IDLE) up to {n:,}",
                              "sessions/s", True))
        return tuple(out)

    def describe(self) -> str:
        levels = " and ".join(f"{n:,}" for n in self.sizes.idle_levels)
        return ("Sessions log in as `idle` (its INBOX is a copy of alice's; its argon2id hash "
                "has cheap parameters on every server alike, so that logins do not dominate), "
                f"SELECT INBOX and IDLE, held open at {levels} sessions; "
                "memory is the sum over every server process (PSS and RSS from "
                "/proc/PID/smaps_rollup) minus the same sum before the first session, "
                "divided by the number of sessions.")

    def run(self, target: Target) -> RunResult:
        s = self.sizes
        host, port = target.endpoint("imap")
        procs = s.client_procs
        per_level = [split(n, procs) for n in s.idle_levels]
        jobs = [IdleJob(host, port, tuple(lv[p] for lv in per_level), parallel=16, process=p)
                for p in range(procs)]
        time.sleep(0.5)
        base = procmem.memory(target.pids())
        values: dict[str, float] = {}

        def on_hold(rnd: int, infos: list[Any]) -> None:
            n = sum(infos)
            time.sleep(1.0)  # let the server settle (login processes exit, buffers drain)
            mem = procmem.memory(target.pids())
            values[f"pss{n}"] = (mem.pss - base.pss) / n / 1024
            values[f"rss{n}"] = (mem.rss - base.rss) / n / 1024
            log(f"  {target.name}: {n} IDLE sessions, {mem.processes} server processes, "
                f"PSS {mem.pss / 2**20:.0f} MiB, RSS {mem.rss / 2**20:.0f} MiB")

        meter = CpuMeter(target)
        load = run_jobs(idle_job, jobs, timeout=1800, on_hold=on_hold)
        for i, n in enumerate(s.idle_levels):
            slowest = max(r[i] for r in load.results)
            prev = s.idle_levels[i - 1] if i else 0
            values[f"rate{n}"] = (n - prev) / slowest
        res = result(load, values, meter)
        # The timed part here is opening the sessions; wait for the server to close them all.
        time.sleep(1.0)
        return res


# -- large mailbox ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LargeJob:
    host: str
    port: int
    expected: int


async def large_job(job: LargeJob, gate: Gate) -> tuple[float, float]:
    c = await _login(job.host, job.port, "large")
    await gate.start()
    t0 = time.monotonic()
    sel = await c.command(b"SELECT INBOX")
    t1 = time.monotonic()
    lines = await c.bulk(b"UID FETCH 1:* (FLAGS)")
    t2 = time.monotonic()
    gate.stop()
    n = _exists(sel.untagged)
    if n != job.expected or lines < job.expected:
        raise BenchError(f"large mailbox has {n} messages ({lines} FETCH lines), "
                         f"expected {job.expected}")
    await c.logout()
    return t1 - t0, t2 - t1


class ImapLarge(Workload):
    name = "imap-large"
    title = "IMAP large mailbox"
    protocol = "imap"
    metrics = (
        Metric("select", "SELECT INBOX", "s", False),
        Metric("fetch", "UID FETCH 1:* (FLAGS)", "s", False),
    )

    def describe(self) -> str:
        return (f"One client logs in to a mailbox of {self.sizes.large_messages:,} messages "
                "(1 KiB each), times SELECT INBOX and then UID FETCH 1:* (FLAGS) until the "
                "tagged OK; a new session each run, after one untimed warm-up session.")

    def prepare(self, target: Target) -> None:
        host, port = target.endpoint("imap")
        run_jobs(large_job, [LargeJob(host, port, self.sizes.large_messages)], timeout=1800)

    def run(self, target: Target) -> RunResult:
        host, port = target.endpoint("imap")
        meter = CpuMeter(target)
        load = run_jobs(large_job, [LargeJob(host, port, self.sizes.large_messages)], timeout=1800)
        sel, fetch = load.results[0]
        return result(load, {"select": sel, "fetch": fetch}, meter)


def large_mailbox(n: int) -> Any:
    return (mailgen.message(i, 1024, rcpt=f"large@{DOMAIN}", eol=b"\n") for i in range(n))
