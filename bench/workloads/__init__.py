"""The workloads of issue 9, each run alternately against every server that speaks it."""

from __future__ import annotations

from bench.workloads.base import Metric, RunResult, Workload
from bench.workloads.imap import ImapIdle, ImapLarge, ImapMixed
from bench.workloads.imap_sessions import ImapSessions
from bench.workloads.pop3 import Pop3Download
from bench.workloads.smtp import SmtpFanout, SmtpIngest

ALL: tuple[type[Workload], ...] = (
    SmtpIngest, SmtpFanout, ImapMixed, ImapIdle, ImapLarge, Pop3Download, ImapSessions,
)

__all__ = ["ALL", "Metric", "RunResult", "Workload"]
