"""Turns the measured runs into docs/benchmarks.md tables and one PNG chart per workload.

The page has hand-written parts (profiles, store benchmark); the harness only rewrites the
text between its own markers, so regenerating never loses them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:begin {name} -->"
END = "<!-- bench:end {name} -->"

PAGE_TEMPLATE = """# Benchmarks

Mailwright measured side by side with reference servers on the same machine, in one run:
each workload runs alternately against every server several times, and the ratio of
Mailwright to each reference is computed run by run (run *i* of Mailwright against run *i*
of the reference), so that a noisy machine moves both sides of a ratio alike. The harness is
`bench/` (see its `__main__.py`); every figure below says which command produced it.

{protocol}

## Store benchmark

{store}
"""

ORDER = ("mailwright", "mailwright-2w", "postfix", "dovecot", "aiosmtpd")
COLORS = {"mailwright": "#2b6cb0", "mailwright-2w": "#63b3ed", "postfix": "#c05621", "dovecot": "#2f855a", "aiosmtpd": "#6b46c1"}


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    distro = "?"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "kernel": platform.release(),
        "memory_gib": round(mem / 2**30, 1),
        "os": distro,
        "python": platform.python_version(),
    }


def loadavg() -> float:
    """The 1-minute load average: how busy the shared machine was (2 cores here)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def _fmt(v: float) -> str:
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f} %"


def _cores(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def ratios(mw: list[dict[str, Any]], ref: list[dict[str, Any]], key: str) -> list[float]:
    """Run i of Mailwright over run i of the reference, for the runs both have."""
    out: list[float] = []
    for a, b in zip(mw, ref, strict=False):
        x, y = a["values"].get(key), b["values"].get(key)
        if x is not None and y:
            out.append(x / y)
    return out


def is_ours(name: str) -> bool:
    """Mailwright, in any of its set-ups (`mailwright-2w`: two worker processes)."""
    return name.startswith("mailwright")


def _sorted_servers(servers: dict[str, Any]) -> list[str]:
    return sorted(servers, key=lambda s: ORDER.index(s) if s in ORDER else 99)


def workload_markdown(wl: dict[str, Any], chart: str | None) -> str:
    out = [f"### {wl['title']}", "", wl["description"], ""]
    servers = wl["servers"]
    names = _sorted_servers(servers)
    out.append("| metric | server | median | min | max | runs | client CPU, busiest process "
               "| server CPU (cores) |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in wl["metrics"]:
        unit = m["unit"]
        for name in names:
            srv = servers[name]
            label = f"{m['label']} ({unit})"
            if srv["status"] != "ok":
                out.append(f"| {label} | {srv['label']} | {srv['status']}: {srv['reason']} "
                           "| | | | | |")
                continue
            vals = [r["values"][m["key"]] for r in srv["runs"] if m["key"] in r["values"]]
            if not vals:
                out.append(f"| {label} | {srv['label']} | not measured | | | | | |")
                continue
            cpu = statistics.median(r["client_cpu_max"] for r in srv["runs"])
            sc = [r["server_cores"] for r in srv["runs"] if r.get("server_cores") is not None]
            out.append(
                f"| {label} | {srv['label']} | {_fmt(statistics.median(vals))} | {_fmt(min(vals))} "
                f"| {_fmt(max(vals))} | {len(vals)} | {_pct(cpu)} "
                f"| {_cores(statistics.median(sc) if sc else None)} |")
    refs = [n for n in names if not is_ours(n) and servers[n]["status"] == "ok"]
    for ours in [n for n in names if is_ours(n)]:
        mw = servers[ours]
        if mw["status"] != "ok" or not refs:
            continue
        out += ["", f"{mw['label']} ÷ reference, run by run:", "",
                "| metric | reference | median ratio | min | max | pairs | better is |",
                "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
        for m in wl["metrics"]:
            for ref in refs:
                r = ratios(mw["runs"], servers[ref]["runs"], m["key"])
                if not r:
                    continue
                better = "higher" if m["higher_is_better"] else "lower"
                out.append(f"| {m['label']} | {servers[ref]['label']} | "
                           f"{statistics.median(r):.2f} | {min(r):.2f} | {max(r):.2f} | {len(r)} "
                           f"| {better} |")
    if chart:
        out += ["", f"![{wl['title']}]({chart})"]
    out.append("")
    return "\n".join(out)


def _summary_rows(wl: dict[str, Any], servers: dict[str, Any], ours: str) -> list[str]:
    rows: list[str] = []
    mw = servers[ours]
    if mw["status"] != "ok":
        return rows
    for m in wl["metrics"]:
        mine = [r["values"][m["key"]] for r in mw["runs"] if m["key"] in r["values"]]
        if not mine:
            continue
        for ref in _sorted_servers(servers):
            srv = servers[ref]
            if is_ours(ref) or srv["status"] != "ok":
                continue
            theirs = [r["values"][m["key"]] for r in srv["runs"] if m["key"] in r["values"]]
            rs = ratios(mw["runs"], srv["runs"], m["key"])
            if not theirs or not rs:
                continue
            rows.append(
                f"| {wl['title']} | {m['label']} ({m['unit']}) | {ours} ÷ {ref} "
                f"| {_fmt(statistics.median(mine))} | {_fmt(statistics.median(theirs))} "
                f"| {statistics.median(rs):.2f} | {'higher' if m['higher_is_better'] else 'lower'} |")
    return rows


def summary_markdown(data: dict[str, Any]) -> list[str]:
    """One line per workload, metric and reference: medians and the median pairwise ratio."""
    rows = []
    for wl in data["workloads"]:
        servers = wl["servers"]
        for ours in [n for n in _sorted_servers(servers) if is_ours(n)]:
            rows += _summary_rows(wl, servers, ours)
    if not rows:
        return []
    return ["### Summary", "",
            "Medians over the runs; the ratio is the median of the run-by-run ratios "
            "Mailwright ÷ reference.", "",
            "| workload | metric | reference | Mailwright | reference | ratio | better is |",
            "| --- | --- | --- | ---: | ---: | ---: | --- |", *rows, ""]


def protocol_markdown(data: dict[str, Any], charts: dict[str, str], page_dir: Path) -> str:
    meta = data["meta"]
    mach = meta["machine"]
    out = [
        "## Protocol benchmarks",
        "",
        f"Produced by `{meta['command']}` on {meta['started']} "
        f"({'QUICK MODE: tiny workloads, figures not representative' if meta['quick'] else 'full run'};"
        f" {meta['duration_s']:.0f} s in all).",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB, "
        f"kernel {mach['kernel']}, {mach['os']}, Python {mach['python']}; load average "
        f"{meta.get('load_start', -1):.1f} at the start and {meta.get('load_end', -1):.1f} at the "
        "end (other work shared the machine). Clients and servers "
        "share this machine; each workload's client runs in separate processes (multiprocessing, "
        "one asyncio loop each), and the *client CPU* column shows the busiest client process's "
        "share of one core during the timed part: well under 100 % means the client was not "
        "the bottleneck. *Server CPU* is the CPU time of all the server's processes per second "
        "of the run.",
        "",
        "Servers: " + "; ".join(f"**{n}**: {lbl}" for n, lbl in meta["servers"].items()) + ".",
        "",
    ]
    if meta.get("notes"):
        out += [f"- {n}" for n in meta["notes"]] + [""]
    out += summary_markdown(data)
    for wl in data["workloads"]:
        out.append(workload_markdown(wl, charts.get(wl["name"])))
    profiled = [wl for wl in data["workloads"] if wl.get("profile") and Path(wl["profile"]).exists()]
    if profiled:
        from bench import profiling

        out += ["### Profiles of Mailwright", "",
                "One extra run of each workload below (not counted in the tables above), "
                "with py-spy sampling the `mailwright serve` process at 200 Hz, all threads, "
                "idle samples left out. *On the stack*: share of busy samples in which the "
                "function is running or calling; *at the top*: running itself.", ""]
        for wl in profiled:
            raw = Path(wl["profile"])
            out.append(profiling.markdown(wl["title"], raw, os.path.relpath(raw, page_dir)))
    return "\n".join(out)


def replace_region(page: Path, name: str, body: str) -> None:
    """Write ``body`` between this region's markers, creating the page if needed."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if page.exists():
        text = page.read_text()
    else:
        text = PAGE_TEMPLATE.format(
            protocol=f"{BEGIN.format(name='protocol')}\n(not run yet)\n{END.format(name='protocol')}",
            store=f"{BEGIN.format(name='store')}\n(not run yet)\n{END.format(name='store')}")
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pat.search(text):
        text = pat.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)


def chart(wl: dict[str, Any], path: Path) -> bool:
    """One bar chart per workload: medians with min-max whiskers, a panel per metric."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    servers = wl["servers"]
    names = [n for n in _sorted_servers(servers) if servers[n]["status"] == "ok"]
    metrics = [m for m in wl["metrics"]
               if any(m["key"] in r["values"] for n in names for r in servers[n]["runs"])]
    if not names or not metrics:
        return False
    cols = min(3, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.5, 3.8 * cols), 3.6 * rows),
                             squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(metrics):]:
        ax.set_visible(False)
    for ax, m in zip(flat, metrics, strict=False):
        xs, meds, lo, hi, colors, labels = [], [], [], [], [], []
        for i, n in enumerate(names):
            vals = [r["values"][m["key"]] for r in servers[n]["runs"] if m["key"] in r["values"]]
            if not vals:
                continue
            med = statistics.median(vals)
            xs.append(i)
            meds.append(med)
            lo.append(med - min(vals))
            hi.append(max(vals) - med)
            colors.append(COLORS.get(n, "#718096"))
            labels.append(n)
        ax.bar(xs, meds, color=colors, yerr=[lo, hi], capsize=4)
        ax.set_xticks(xs, labels, rotation=15)
        title = m["label"] if len(m["label"]) < 38 else m["label"][:36] + "…"
        ax.set_title(f"{title}\n({m['unit']}, {'higher' if m['higher_is_better'] else 'lower'} "
                     "is better)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(wl["title"], fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write(data: dict[str, Any], page: Path, charts_dir: Path) -> None:
    charts_dir.mkdir(parents=True, exist_ok=True)
    charts: dict[str, str] = {}
    for wl in data["workloads"]:
        png = charts_dir / f"{wl['name']}.png"
        if chart(wl, png):
            charts[wl["name"]] = os.path.relpath(png, page.parent)
    replace_region(page, "protocol", protocol_markdown(data, charts, page.parent))
    (charts_dir / "results.json").write_text(json.dumps(data, indent=1))
