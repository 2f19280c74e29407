"""SMTP ingest and fan-out: concurrent sessions delivering to local mailboxes.

Two figures per run: messages per second acknowledged with 250 (every server here answers 250
only after the message is on disk and fsync'ed), and messages per second until the mail is in
the mailbox (Postfix hands it to Dovecot after the 250, so the two differ there).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench import mailgen
from bench.clients.smtp import SmtpClient, dot_stuff
from bench.common import DOMAIN, BenchError
from bench.loadgen import Gate, run_jobs, split
from bench.targets.base import Target
from bench.workloads.base import CpuMeter, Metric, RunResult, Workload, result

_SENDER = f"loadgen@{DOMAIN}"


@dataclass(frozen=True, slots=True)
class SmtpJob:
    host: str
    port: int
    per_session: tuple[int, ...]  # messages sent by each session of this process
    rcpts: tuple[str, ...]
    size: int
    seed: int


async def smtp_job(job: SmtpJob, gate: Gate) -> int:
    sessions = [await SmtpClient.connect(job.host, job.port) for _ in job.per_session]
    payloads = [dot_stuff(mailgen.message(job.seed + i, job.size, sender=_SENDER,
                                          rcpt=job.rcpts[0])) for i in range(8)]
    await gate.start()

    async def one(client: SmtpClient, n: int, k: int) -> int:
        for i in range(n):
            await client.send(_SENDER, list(job.rcpts), payloads[(i + k) % len(payloads)])
        return n

    sent = await asyncio.gather(*(one(c, n, k) for k, (c, n) in
                                  enumerate(zip(sessions, job.per_session, strict=True))))
    gate.stop()
    await asyncio.gather(*(c.quit() for c in sessions))
    return sum(sent)


def _counts(target: Target, users: list[str]) -> int | None:
    total = 0
    for u in users:
        c = target.count(u)
        if c is None:
            return None
        total += c
    return total


def _wait_delivered(target: Target, users: list[str], expected: int, t_start: float,
                    timeout: float = 600) -> float | None:
    """Seconds from the start of the load until ``expected`` messages are in the mailboxes."""
    deadline = time.monotonic() + timeout
    while True:
        got = _counts(target, users)
        if got is None:
            return None
        if got >= expected:
            return time.monotonic() - t_start
        if time.monotonic() > deadline:
            raise BenchError(f"{target.name}: only {got} of {expected} messages delivered "
                             f"after {timeout:.0f}s")
        time.sleep(0.02)


class _SmtpWorkload(Workload):
    protocol = "smtp"

    def _drive(self, target: Target, sessions: int, messages: int, rcpts: list[str],
               size: int, seed: int) -> tuple[Any, RunResult]:
        host, port = target.endpoint("smtp")
        users = [r.split("@")[0] for r in rcpts]
        before = _counts(target, users)
        procs = min(self.sizes.client_procs, sessions)
        per_proc_sessions = split(sessions, procs)
        per_session = split(messages, sessions)
        jobs: list[SmtpJob] = []
        k = 0
        for p, ns in enumerate(per_proc_sessions):
            jobs.append(SmtpJob(host, port, tuple(per_session[k : k + ns]), tuple(rcpts), size,
                                seed=1000 * p))
            k += ns
        meter = CpuMeter(target)
        load = run_jobs(smtp_job, jobs)
        if sum(load.results) != messages:
            raise BenchError(f"sent {sum(load.results)} of {messages} messages")
        accepted = messages / load.wall
        e2e = None
        if before is not None:
            expected = before + messages * len(rcpts)
            e2e = _wait_delivered(target, users, expected, min(load.starts))
            if target.delivers_before_250:
                # Its 250 means "in the mailbox": the count above only checks that it is so.
                e2e = load.wall
        res = result(load, {"accepted": accepted}, meter)
        return (e2e, res)


class SmtpIngest(_SmtpWorkload):
    name = "smtp-ingest"
    title = "SMTP ingest"
    metrics = (
        Metric("accepted", "accepted (250 after DATA, durable)", "msg/s", True),
        Metric("delivered", "in the mailbox", "msg/s", True),
    )

    def describe(self) -> str:
        s = self.sizes
        return (f"{s.ingest_sessions} concurrent SMTP sessions send {s.ingest_messages} messages "
                f"of {s.ingest_size // 1024} KiB in total to one local mailbox (bob), "
                f"from {min(s.client_procs, s.ingest_sessions)} client processes.")

    def run(self, target: Target) -> RunResult:
        s = self.sizes
        e2e, res = self._drive(target, s.ingest_sessions, s.ingest_messages,
                               [f"bob@{DOMAIN}"], s.ingest_size, seed=0)
        if e2e is not None:
            res.values["delivered"] = s.ingest_messages / e2e
        return res


class SmtpFanout(_SmtpWorkload):
    name = "smtp-fanout"
    title = "SMTP fan-out"
    metrics = (
        Metric("accepted", "messages accepted (250 after DATA)", "msg/s", True),
        Metric("delivered", "recipient copies in the mailboxes", "copies/s", True),
    )

    def describe(self) -> str:
        s = self.sizes
        return (f"{s.fanout_sessions} concurrent SMTP sessions send {s.fanout_messages} messages "
                f"of 4 KiB in total, each to the same {s.fanout_recipients} local recipients.")

    def run(self, target: Target) -> RunResult:
        s = self.sizes
        rcpts = [f"fan{i:02d}@{DOMAIN}" for i in range(1, s.fanout_recipients + 1)]
        e2e, res = self._drive(target, s.fanout_sessions, s.fanout_messages, rcpts, 4096,
                               seed=50_000)
        if e2e is not None:
            res.values["delivered"] = s.fanout_messages * s.fanout_recipients / e2e
        return res


def fanout_users(n: int) -> list[str]:
    return [f"fan{i:02d}" for i in range(1, n + 1)]
