"""How big each workload is, in quick mode and in a full run."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    """Every workload's size; ``QUICK`` keeps a whole run under two minutes."""

    quick: bool
    runs: int  # runs of each workload against each server, alternating
    client_procs: int  # load-generator processes
    ingest_sessions: int
    ingest_messages: int  # in total, over all sessions
    ingest_size: int
    fanout_recipients: int
    fanout_messages: int
    fanout_sessions: int
    mixed_clients: int
    mixed_seconds: float  # how long the clients keep starting new rounds
    mixed_mailbox: int  # messages in the shared mailbox
    idle_levels: tuple[int, ...]
    idle_runs: int
    large_messages: int
    large_runs: int
    pop3_messages: int
    pop3_size: int

    def scaled_runs(self, workload: str) -> int:
        if workload == "imap-idle":
            return self.idle_runs
        if workload == "imap-large":
            return self.large_runs
        return self.runs


_CPUS = max(2, os.cpu_count() or 2)

QUICK = Sizes(
    quick=True, runs=2, client_procs=2,
    ingest_sessions=4, ingest_messages=60, ingest_size=4096,
    fanout_recipients=10, fanout_messages=4, fanout_sessions=2,
    mixed_clients=4, mixed_seconds=2.0, mixed_mailbox=100,
    idle_levels=(50, 100), idle_runs=1,
    large_messages=1000, large_runs=2,
    pop3_messages=100, pop3_size=10240,
)

FULL = Sizes(
    quick=False, runs=5, client_procs=_CPUS,
    ingest_sessions=50, ingest_messages=3000, ingest_size=4096,
    fanout_recipients=50, fanout_messages=100, fanout_sessions=4,
    mixed_clients=20, mixed_seconds=20.0, mixed_mailbox=1000,
    idle_levels=(1000, 10000), idle_runs=1,
    large_messages=100_000, large_runs=5,
    pop3_messages=1000, pop3_size=10240,
)
