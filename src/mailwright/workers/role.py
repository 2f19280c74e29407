"""What the supervisor tells one worker process it forks."""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass

from mailwright.metrics import SharedMetrics
from mailwright.net.budgets import SharedCounts, SharedRates
from mailwright.workers.channel import WorkerChannel


@dataclass
class WorkerRole:
    """One worker's place among its siblings.

    `primary` runs the services that must run once per server (retention, garbage collection,
    DMARC and TLS reports, the spam trainer); `first` is set only for the primary's first start,
    before any other worker serves: it alone may remove every staging file (`collect_garbage(0)`),
    since later no file in `tmp/` can be told from another worker's delivery in progress.
    """

    index: int
    count: int
    primary: bool
    first: bool
    sockets: dict[str, socket.socket]  # listener name -> the bound, shared listening socket
    channel: WorkerChannel
    status_fd: int  # the worker writes b"r" here once it serves
    # loaded by the supervisor before it dropped its privileges: the key may be root's alone
    ssl_context: ssl.SSLContext | None = None
    # every worker's connections, for the server-wide connection budgets (net.budgets)
    counts: SharedCounts | None = None
    # every worker's /metrics values, so that any worker answers a scrape for all (metrics.py)
    metrics: SharedMetrics | None = None
    # every worker's per-address command-rate buckets, so an address gets the server's rate
    # (net.budgets.SharedRates), not the rate once per worker
    rates: SharedRates | None = None

    def report_ready(self) -> None:
        try:
            os.write(self.status_fd, b"r")
        except OSError:  # the supervisor is gone; SIGTERM follows
            pass
