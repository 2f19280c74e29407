"""``python -m bench``: the one entry point of Mailwright's benchmarks.

Installs what is missing, sets up every selected server in a scratch directory under /tmp on
loopback ports of its own, loads the same users and mailboxes everywhere, runs each workload
alternately against each server, writes docs/benchmarks.md and the charts, and stops
everything it started. ``--quick`` makes every workload small (a smoke test, figures not
representative).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import install, mailgen, report
from bench.common import BenchError, log
from bench.profiling import Profiler
from bench.sizes import FULL, QUICK, Sizes
from bench.targets.base import Population, Target
from bench.workloads import ALL, Workload
from bench.workloads.imap import large_mailbox, mixed_mailbox
from bench.workloads.pop3 import pop3_mailbox
from bench.workloads.smtp import fanout_users

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("mailwright", "postfix", "dovecot", "aiosmtpd")  # the default selection
# on request: Mailwright with two worker processes (`serve --workers 2`; the others run one)
EXTRA_SERVERS = ("mailwright-2w",)
WORKLOADS = {w.name: w for w in ALL}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="every workload small (under 2 minutes)")
    p.add_argument("--servers", default=",".join(SERVERS),
                   help=f"comma-separated subset of {','.join(SERVERS + EXTRA_SERVERS)}")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--runs", type=int, help="runs per workload and server (default 5, quick 2)")
    p.add_argument("--report", type=Path,
                   help="Markdown page to update (default docs/benchmarks.md; "
                        "bench/out/quick/benchmarks.md with --quick)")
    p.add_argument("--charts", type=Path,
                   help="folder for the PNG charts (default docs/bench/ next to the page)")
    p.add_argument("--profile", action="store_true",
                   help="also profile Mailwright (py-spy) under SMTP ingest, fan-out, IMAP mixed, "
                        "sessions and large")
    p.add_argument("--no-install", action="store_true", help="never run apt-get or pip")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    for name, allowed, value in (("--servers", SERVERS + EXTRA_SERVERS, args.servers),
                                 ("--workloads", tuple(WORKLOADS), args.workloads)):
        bad = [x for x in value.split(",") if x and x not in allowed]
        if bad:
            p.error(f"{name}: unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
    return args


def population(sizes: Sizes, workloads: list[Workload], corpus: Path) -> Population:
    """The users and mailboxes the selected workloads need, written once as Maildirs."""
    users = ["alice", "bob", "pop1000", "large", "idle", "team",
             *fanout_users(sizes.fanout_recipients)]
    names = {w.name for w in workloads}
    maildirs: dict[str, Path] = {}
    t0 = time.monotonic()
    if names & {"imap-mixed", "imap-idle", "imap-sessions"}:
        maildirs["alice"] = corpus / "alice"
        mailgen.write_maildir(maildirs["alice"], mixed_mailbox(sizes.mixed_mailbox))
        maildirs["idle"] = maildirs["alice"]
        maildirs["team"] = maildirs["alice"]  # imap-sessions: a copy of alice's INBOX
    if "pop3" in names:
        maildirs["pop1000"] = corpus / "pop1000"
        mailgen.write_maildir(maildirs["pop1000"], pop3_mailbox(sizes.pop3_messages,
                                                                sizes.pop3_size), flags="")
    if "imap-large" in names:
        maildirs["large"] = corpus / "large"
        mailgen.write_maildir(maildirs["large"], large_mailbox(sizes.large_messages))
    log(f"mailbox contents written in {time.monotonic() - t0:.1f}s")
    fast = ("idle", "team", "bob", *fanout_users(sizes.fanout_recipients))
    return Population(tuple(users), maildirs, fast_hash_users=fast)


def build_targets(names: list[str], scratch: Path, allow_install: bool,
                  failed: dict[str, str]) -> list[Target]:
    targets: list[Target] = []
    dovecot: Any = None
    need_dovecot = "dovecot" in names or "postfix" in names
    if need_dovecot:
        why = install.ensure_for("dovecot", allow_install)
        if why is None:
            from bench.targets.reference import Dovecot, ensure_vmail

            ensure_vmail()
            dovecot = Dovecot(scratch)
        else:
            for n in ("dovecot", "postfix"):
                if n in names:
                    failed[n] = why
    for name in names:
        try:
            if name == "mailwright":
                from bench.targets.mailwright import Mailwright

                targets.append(Mailwright(scratch))
            elif name == "mailwright-2w":
                from bench.targets.mailwright import Mailwright

                targets.append(Mailwright(scratch, workers=2))
            elif name == "dovecot" and dovecot is not None:
                targets.append(dovecot)
            elif name == "postfix" and dovecot is not None:
                why = install.ensure_for("postfix", allow_install)
                if why is not None:
                    failed[name] = why
                    continue
                from bench.targets.reference import Postfix

                targets.append(Postfix(scratch, dovecot))
            elif name == "aiosmtpd":
                why = install.ensure_for("aiosmtpd", allow_install)
                if why is not None:
                    failed[name] = why
                    continue
                from bench.targets.aiosmtpd_ref import Aiosmtpd

                targets.append(Aiosmtpd(scratch))
        except BenchError as e:
            failed[name] = str(e)
    # Postfix delivers into Dovecot: Dovecot runs whenever Postfix does, even if not measured.
    if dovecot is not None and dovecot not in targets and any(t.name == "postfix" for t in targets):
        targets.insert(0, dovecot)
    return targets


def _server_entry(t: Target | None, name: str, status: str, reason: str = "") -> dict[str, Any]:
    return {"label": t.label if t else name, "status": status, "reason": reason, "runs": []}


PROFILED = ("smtp-ingest", "smtp-fanout", "imap-mixed", "imap-sessions", "imap-large")


def run_workload(wl: Workload, targets: list[Target], selected: list[str],
                 failed: dict[str, str], profile_dir: Path | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": wl.name, "title": wl.title, "description": wl.describe(),
        "metrics": [{"key": m.key, "label": m.label, "unit": m.unit,
                     "higher_is_better": m.higher_is_better} for m in wl.metrics],
        "servers": {},
    }
    servers: dict[str, Any] = entry["servers"]
    active: list[Target] = []
    by_name = {t.name: t for t in targets}
    for name in selected:
        t = by_name.get(name)
        speaks = {"mailwright": {"smtp", "imap", "pop3"}, "mailwright-2w": {"smtp", "imap", "pop3"},
                  "postfix": {"smtp"},
                  "dovecot": {"imap", "pop3"}, "aiosmtpd": {"smtp"}}[name]
        if wl.protocol not in speaks:
            continue
        if name in failed:
            servers[name] = _server_entry(t, name, "not available", failed[name])
            continue
        assert t is not None
        why = t.availability(wl.protocol)
        if why is not None:
            servers[name] = _server_entry(t, name, "not available", why.removeprefix("not available: "))
            continue
        servers[name] = _server_entry(t, name, "ok")
        active.append(t)
    runs = wl.sizes.scaled_runs(wl.name)
    log(f"== {wl.title}: {', '.join(t.name for t in active) or 'no server'} x {runs} runs")
    for t in list(active):
        try:
            wl.prepare(t)
        except BenchError as e:
            log(f"  {t.name}: warm-up failed: {e}")
            servers[t.name].update(status="failed", reason=str(e).splitlines()[0][:300])
            active.remove(t)
    for i in range(runs):
        # Alternate, and rotate who goes first, so that drift hits every server alike.
        order = active[i % len(active):] + active[: i % len(active)] if active else []
        for t in order:
            if servers[t.name]["status"] != "ok":
                continue
            try:
                r = wl.run(t)
            except BenchError as e:
                log(f"  {t.name} run {i + 1}: FAILED: {e}")
                servers[t.name].update(status="failed", reason=str(e).splitlines()[0][:300])
                continue
            vals = ", ".join(f"{k}={report._fmt(v)}" for k, v in r.values.items())
            log(f"  {t.name} run {i + 1}: {vals} (client cpu max {r.client_cpu_max:.0%})")
            servers[t.name]["runs"].append({
                "values": r.values, "client_cpu_max": r.client_cpu_max,
                "client_cores": r.client_cores, "server_cores": r.server_cores,
                "notes": r.notes,
            })
    mw = by_name.get("mailwright")
    if (profile_dir is not None and wl.name in PROFILED and mw is not None
            and servers.get("mailwright", {}).get("status") == "ok" and mw.root_pids()):
        # One more run, not counted, with the sampling profiler attached to the server.
        raw = profile_dir / f"profile-{wl.name}.txt"
        log(f"  mailwright: profiling one extra run into {raw}")
        try:
            with Profiler(mw.root_pids()[0], raw):
                wl.run(mw)
        except BenchError as e:
            log(f"  mailwright: profiled run failed: {e}")
        if raw.exists():
            entry["profile"] = str(raw)
    return entry


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _sigterm)
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = replace(sizes, runs=args.runs, idle_runs=min(args.runs, sizes.idle_runs) or 1,
                        large_runs=args.runs)
    selected = [s for s in SERVERS + EXTRA_SERVERS if s in args.servers.split(",")]
    workloads: list[Workload] = [WORKLOADS[n](sizes) for n in WORKLOADS
                                 if n in args.workloads.split(",")]
    page = args.report or (ROOT / ("bench/out/quick/benchmarks.md" if args.quick
                                   else "docs/benchmarks.md"))
    charts = args.charts or (page.parent / "bench")
    started = datetime.now(UTC)
    load_start = report.loadavg()
    t_start = time.monotonic()
    install.ensure_pip(install.PIP_ALWAYS, not args.no_install)
    if args.profile:
        why = install.ensure_program("py-spy", "py-spy", not args.no_install)
        if why:
            log(f"no profiles: {why}")
    scratch = Path(tempfile.mkdtemp(prefix="mwbench-", dir="/tmp"))
    scratch.chmod(0o755)  # Dovecot's unprivileged processes must reach their sockets
    log(f"scratch directory {scratch}")
    failed: dict[str, str] = {}
    targets: list[Target] = []
    started_targets: list[Target] = []
    results: list[dict[str, Any]] = []
    try:
        targets = build_targets(selected, scratch, not args.no_install, failed)
        pop = population(sizes, workloads, scratch / "corpus")
        for t in targets:
            try:
                log(f"setting up {t.label}")
                t.setup(pop)
                t.start()
                started_targets.append(t)
            except BenchError as e:
                log(f"  {t.name}: {e}")
                failed[t.name] = str(e).splitlines()[0][:300]
                if t.name == "dovecot":
                    failed.setdefault("postfix", "Dovecot (its delivery agent) did not start")
        for wl in workloads:
            results.append(run_workload(wl, started_targets, selected, failed,
                                        charts if args.profile else None))
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        return 130
    finally:
        for t in reversed(started_targets):
            try:
                t.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the others
                log(f"stopping {t.name}: {e}")
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    command = "python -m bench" + (" " + " ".join(sys.argv[1:] if argv is None else argv)
                                   if (argv or sys.argv[1:]) else "")
    data = {
        "meta": {
            "command": command, "quick": sizes.quick,
            "started": started.strftime("%Y-%m-%d %H:%M UTC"),
            "duration_s": time.monotonic() - t_start,
            "load_start": load_start, "load_end": report.loadavg(),
            "machine": report.machine(),
            "servers": {t.name: t.label for t in targets},
            "notes": [f"{n}: {why}" for n, why in failed.items()],
            "sizes": {k: getattr(sizes, k) for k in sizes.__dataclass_fields__},
        },
        "workloads": results,
    }
    report.write(data, page, charts)
    log(f"report written to {page} (charts in {charts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
