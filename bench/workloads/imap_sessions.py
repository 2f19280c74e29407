"""IMAP, long-lived sessions on one mailbox with every reply checked (issue 16, item 6).

Ten sessions (four in quick mode) log in once as ``team`` (its INBOX a copy of alice's 1,000
messages), SELECT INBOX and, until the time is up, each picks its next command at random:
FETCH of 20 messages' flags, size and header fields, FETCH BODY[] of one message (which sets
\\Seen), STORE +/-FLAGS (\\Flagged), APPEND of a message of its own, EXPUNGE of the messages it
appended (UID STORE \\Deleted, then EXPUNGE, which also removes what the others marked), LIST
and STATUS. Messages are picked at random, half of them among the 20 newest, which the other
sessions are appending and expunging: the replies must stay right while the messages a session
names are being expunged by another (bench/clients/imapcheck.py has the rules checked).

Reported: the commands per second of each kind and in all, the NO/BAD answers (must be 0),
the wrong replies (must be 0) and the server CPU per command.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench import mailgen
from bench.clients.imapcheck import CheckedSession, Checks
from bench.common import DOMAIN, log
from bench.loadgen import Gate, run_jobs
from bench.targets.base import Target
from bench.workloads.base import CpuMeter, Metric, RunResult, Workload, result
from bench.workloads.imap import ClientsJob, client_jobs, login_clients, warm_up

USER = "team"
#: the kinds of command, in the report's order, and how often each is picked
KINDS = ("fetch", "fetch-body", "store", "append", "expunge", "list", "status")
WEIGHTS = (6, 4, 3, 2, 1, 2, 2)


async def sessions_job(
    job: ClientsJob, gate: Gate
) -> tuple[dict[str, int], int, int, int, int, list[str]]:
    clients: list[CheckedSession] = []
    checks = Checks()
    for c in await login_clients(job, USER):
        s = CheckedSession(c, checks)
        await s.select()
        clients.append(s)
    checks.done.clear()
    await gate.start()

    async def one(s: CheckedSession, k: int) -> None:
        rng = random.Random(job.seed * 1000 + k)
        mine: list[int] = []
        count = 0
        deadline = time.monotonic() + job.seconds
        while time.monotonic() < deadline:
            kind = rng.choices(KINDS, WEIGHTS)[0]
            n = s.exists
            if n < 1:
                await s.run("noop", b"NOOP")
                continue
            # half of the picks among the newest messages, which others append and expunge
            pick = rng.randint(max(1, n - 19), n) if rng.random() < 0.5 else rng.randint(1, n)
            if kind == "fetch":
                lo = max(1, min(pick, n - 19))
                await s.fetch_headers(lo, min(n, lo + 19))
            elif kind == "fetch-body":
                await s.fetch_body(pick)
            elif kind == "store":
                await s.store(pick, rng.random() < 0.5)
            elif kind == "append":
                count += 1
                uid = await s.append(mailgen.message(
                    20_000_000 + job.seed * 1_000_000 + k * 100_000 + count,
                    rng.choice((2048, 4096, 8192)), rcpt=f"{USER}@{DOMAIN}"))
                if uid is not None:
                    mine.append(uid)
            elif kind == "expunge":
                if mine:
                    await s.expunge(mine)
                    mine = []
            elif kind == "list":
                await s.list_all()
            else:
                await s.status()
        if mine:  # leave the mailbox as it was found, for the next run
            await s.expunge(mine)

    await asyncio.gather(*(one(s, k) for k, s in enumerate(clients)))
    gate.stop()
    await asyncio.gather(*(s.c.logout() for s in clients))
    return (checks.done, checks.refused, checks.wrong, checks.ghosts, checks.raced,
            checks.problems)


class ImapSessions(Workload):
    name = "imap-sessions"
    title = "IMAP sessions, every reply checked"
    protocol = "imap"
    metrics = (
        Metric("commands", "commands completed", "cmd/s", True),
        *(Metric(k, f"{k.upper().replace('-BODY', ' BODY[]')} commands", "cmd/s", True)
          for k in KINDS),
        Metric("cpu_ms", "server CPU per command", "ms", False),
        Metric("failed", "commands answered NO or BAD", "per run", False),
        Metric("wrong", "replies that broke a rule", "per run", False),
        Metric("ghosts", "FETCH answers of expunged messages with no content", "per run", False),
        Metric("raced", "STORE answers showing another session's change of the same flag",
               "per run", False),
    )

    @property
    def sessions(self) -> int:
        return 4 if self.sizes.quick else 10

    def describe(self) -> str:
        s = self.sizes
        return (f"{self.sessions} long-lived sessions of one user on one "
                f"{s.mixed_mailbox}-message INBOX (2-64 KiB) for {s.mixed_seconds:g} s, each "
                "picking its next command at random: FETCH of 20 messages (flags, size, header "
                "fields) 6 of 20, FETCH BODY[] 4, STORE \\Flagged 3, APPEND 2, UID STORE "
                "\\Deleted + EXPUNGE of its own appended messages 1, LIST 2, STATUS 2; half the "
                "messages picked among the 20 newest, which the others append and expunge; "
                "every reply checked (bench/clients/imapcheck.py).")

    def prepare(self, target: Target) -> None:
        warm_up(sessions_job, target, 0.2)

    def run(self, target: Target) -> RunResult:
        s = self.sizes
        jobs = client_jobs(target, self.sessions, s.mixed_seconds, s.client_procs)
        meter = CpuMeter(target)
        load = run_jobs(sessions_job, jobs)
        done: dict[str, int] = {}
        refused = wrong = ghosts = raced = 0
        problems: list[str] = []
        for d, r, w, g, rc, p in load.results:
            for k, v in d.items():
                done[k] = done.get(k, 0) + v
            refused, wrong, ghosts, raced = refused + r, wrong + w, ghosts + g, raced + rc
            problems += p
        for p in problems[:5]:
            log(f"  {target.name}: {p}")
        total = sum(done.values())
        values: dict[str, Any] = {"commands": total / load.wall}
        for k in KINDS:
            values[k] = done.get(k, 0) / load.wall
        res = result(load, values, meter)
        values["cpu_ms"] = (res.server_cores or 0.0) / max(values["commands"], 1e-9) * 1000
        values.update(failed=float(refused), wrong=float(wrong), ghosts=float(ghosts),
                      raced=float(raced))
        return res
