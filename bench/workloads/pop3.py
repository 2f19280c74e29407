"""POP3: one session downloads a whole 10 KiB-message maildrop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench import mailgen
from bench.clients.pop3 import Pop3Client
from bench.common import DOMAIN, PASSWORD, BenchError
from bench.loadgen import Gate, run_jobs
from bench.targets.base import Target
from bench.workloads.base import CpuMeter, Metric, RunResult, Workload, result


@dataclass(frozen=True, slots=True)
class Pop3Job:
    host: str
    port: int
    expected: int


async def pop3_job(job: Pop3Job, gate: Gate) -> tuple[float, int]:
    c = await Pop3Client.connect(job.host, job.port)
    await c.login(f"pop1000@{DOMAIN}", PASSWORD)
    await gate.start()
    t0 = time.monotonic()
    stat = await c.simple(b"STAT")
    n = int(stat.split()[1])
    if n != job.expected:
        raise BenchError(f"maildrop has {n} messages, expected {job.expected}")
    await c.multi(b"UIDL")
    total = 0
    for i in range(1, n + 1):
        total += len(await c.multi(b"RETR %d" % i))
    await c.quit()
    return time.monotonic() - t0, total


class Pop3Download(Workload):
    name = "pop3"
    title = "POP3 download"
    protocol = "pop3"
    metrics = (Metric("seconds", "STAT, UIDL, RETR of every message, QUIT", "s", False),)

    def describe(self) -> str:
        s = self.sizes
        return (f"One session downloads a maildrop of {s.pop3_messages:,} messages of "
                f"{s.pop3_size // 1024} KiB: after USER/PASS (not timed, argon2id), STAT, UIDL, "
                "RETR 1..n one by one, QUIT; nothing deleted.")

    def prepare(self, target: Target) -> None:
        host, port = target.endpoint("pop3")
        run_jobs(pop3_job, [Pop3Job(host, port, self.sizes.pop3_messages)])

    def run(self, target: Target) -> RunResult:
        host, port = target.endpoint("pop3")
        meter = CpuMeter(target)
        load = run_jobs(pop3_job, [Pop3Job(host, port, self.sizes.pop3_messages)])
        seconds, _ = load.results[0]
        return result(load, {"seconds": seconds}, meter)


def pop3_mailbox(n: int, size: int) -> Any:
    return (mailgen.message(i, size, rcpt=f"pop1000@{DOMAIN}", eol=b"\n") for i in range(n))
