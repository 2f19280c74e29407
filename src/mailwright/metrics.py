"""What `/metrics` reports (Prometheus text format 0.0.4), from one process or from every worker.

With several workers (`[server] workers`), whichever worker accepts the scrape answers it, so a
counter read from that worker alone would jump back and forth between scrapes. Each worker
therefore publishes its values into its own row of one shared anonymous mapping made by the
supervisor before the fork (`SharedMetrics`; the same lock-free row scheme as the connection
counts of `net.budgets`), at least once a second and at every scrape it answers; the answer
gives one sample per worker, labelled `worker="N"`, which Prometheus sums with `sum()`. A
worker's row is zeroed when it is forked again, as its counters are (Prometheus treats a
counter that went down as a reset).
"""

from __future__ import annotations

import contextlib
import math
import mmap
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailwright.app import AppContext

# name (after `mailwright_`), type, help: the fixed order of the shared rows
METRICS: tuple[tuple[str, str, str], ...] = (
    ("connections_active", "gauge", "Open client connections."),
    ("connections_refused_banned_total", "counter",
     "Connections refused at accept from banned addresses."),
    ("connections_refused_busy_total", "counter",
     "Connections refused at accept because a budget (node, listener, address) was full."),
    ("commands_delayed_total", "counter", "Commands delayed by the per-address command rate."),
    ("auth_verifications_total", "counter", "Password hashes checked."),
    ("auth_failures_total", "counter", "Failed logins."),
    ("auth_refused_banned_total", "counter", "Logins refused from banned addresses."),
    ("tls_certificate_expiry_timestamp_seconds", "gauge",
     "When the certificate the TLS listeners present expires (Unix time)."),
    ("acme_certificates_issued_total", "counter",
     "Certificates obtained from the ACME server by this process."),
    ("acme_failing", "gauge", "1 while the last ACME attempt failed."),
    ("store_commits_total", "counter", "Store write batches committed."),
    ("store_operations_total", "counter", "Store write operations."),
)  # fmt: skip
_INDEX = {name: i for i, (name, _kind, _help) in enumerate(METRICS)}


def values(ctx: AppContext) -> dict[str, float]:
    """This process's values; a metric whose part is not running is left out."""
    out: dict[str, float] = {}
    listeners: Any = getattr(ctx, "listeners", None)
    if listeners is not None:
        out["connections_active"] = listeners.active
        out["connections_refused_banned_total"] = getattr(listeners, "refused_banned", 0)
        out["connections_refused_busy_total"] = getattr(listeners, "refused_busy", 0)
    limiter = getattr(ctx, "limiter", None)
    if limiter is not None:
        out["commands_delayed_total"] = limiter.delayed
    auth = ctx.authenticator
    out["auth_verifications_total"] = auth.verifications
    out["auth_failures_total"] = auth.failures
    out["auth_refused_banned_total"] = auth.refused_banned
    server_tls = getattr(ctx, "server_tls", None)
    if server_tls is not None:
        with contextlib.suppress(OSError, ValueError):
            out["tls_certificate_expiry_timestamp_seconds"] = _expiry(server_tls.cert_path)
    acme = getattr(ctx, "acme", None)
    if acme is not None:
        out["acme_certificates_issued_total"] = acme.issued
        out["acme_failing"] = 1 if acme.last_error else 0
    db = getattr(ctx.store, "db", None)
    if db is not None and hasattr(db, "batches"):
        out["store_commits_total"] = db.batches
        out["store_operations_total"] = db.operations
    return out


_expiry_cache: dict[Path, tuple[int, float]] = {}


def _expiry(cert_path: Path) -> float:
    """The certificate's notAfter, parsed again only when the file changes (each worker
    publishes every second: a stat, not a read and an X.509 parse, each time)."""
    mtime = cert_path.stat().st_mtime_ns
    hit = _expiry_cache.get(cert_path)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    from mailwright.tls import describe_certificate

    not_after = describe_certificate(cert_path.read_bytes())["not_after"]
    assert isinstance(not_after, datetime)
    _expiry_cache[cert_path] = (mtime, not_after.timestamp())
    return not_after.timestamp()


class SharedMetrics:
    """One row of float64 values per worker, in a mapping shared across `fork` (NaN: absent)."""

    def __init__(self, workers: int) -> None:
        row = 8 * len(METRICS)
        self._map = mmap.mmap(-1, row * workers)  # anonymous, MAP_SHARED: seen by every child
        view = memoryview(self._map)
        self._rows = [view[r * row : (r + 1) * row].cast("d") for r in range(workers)]
        for r in range(workers):
            self.clear(r)
        self._row = 0

    def attach(self, index: int) -> SharedMetrics:
        """Publish as worker `index` from now on (in the worker, after the fork)."""
        self._row = index
        return self

    def clear(self, index: int) -> None:
        """Worker `index` is forked again: its counters start from nothing."""
        row = self._rows[index]
        for i in range(len(row)):
            row[i] = math.nan

    def publish(self, current: Mapping[str, float]) -> None:
        row = self._rows[self._row]
        for name, i in _INDEX.items():
            row[i] = float(current[name]) if name in current else math.nan

    def rows(self) -> dict[int, dict[str, float]]:
        """Every worker's last published values."""
        return {
            r: {name: row[i] for name, i in _INDEX.items() if not math.isnan(row[i])}
            for r, row in enumerate(self._rows)
        }


def _number(value: float) -> str:
    v = float(value)  # counters are ints in the process, floats in the shared rows
    return str(int(v)) if v.is_integer() else repr(v)


def render(ctx: AppContext, shared: SharedMetrics | None = None) -> str:
    """The `/metrics` answer: this process's values, or every worker's (labelled) when shared."""
    mine = values(ctx)
    per_worker: dict[int | None, dict[str, float]]
    if shared is None:
        per_worker = {None: mine}
    else:
        shared.publish(mine)
        per_worker = {w: v for w, v in shared.rows().items()}
    lines: list[str] = []
    for name, kind, help_ in METRICS:
        samples = [(w, v[name]) for w, v in per_worker.items() if name in v]
        if not samples:
            continue
        lines.append(f"# HELP mailwright_{name} {help_}")
        lines.append(f"# TYPE mailwright_{name} {kind}")
        for w, value in samples:
            labels = "" if w is None else f'{{worker="{w}"}}'
            lines.append(f"mailwright_{name}{labels} {_number(value)}")
    return "\n".join(lines) + "\n"
