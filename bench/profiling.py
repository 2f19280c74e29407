"""Sampling profiles of the Mailwright server under a workload (py-spy, attached by PID).

py-spy samples the running server from outside (no code change, little overhead); idle
samples (the event loop waiting in epoll) are left out, so percentages are of busy time. The
summary counts, for each function, the share of samples in which it is on the stack
(inclusive) and at the top (self).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from bench.common import log


class Profiler:
    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        exe = shutil.which("py-spy")
        if exe is None:
            log("py-spy not found: no profile (pip install py-spy)")
            return self
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
             "--nonblocking", "--threads", "-o", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            log(f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]}")


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)"
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    if path.startswith("mailwright/") or "/mailwright/" in path:
        path = "mailwright/" + path.split("mailwright/", 1)[1]
    else:
        path = Path(path).name
    return f"{name} ({path})"


def summarize(raw: Path, top: int = 12) -> tuple[int, list[tuple[str, float, float]]]:
    """(busy samples, [(function, inclusive share, self share)]) by inclusive share."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    # The event loop's own frames are on every stack: they say nothing.
    boring = ("run_forever", "_run_once", "_run (events.py", "run (runners.py", "<module>",
              "main (", "run_until_complete", "_run_module_as_main", "_run_code", "run (",
              "serve (", "_bootstrap", "_bootstrap_inner", "worker (thread.py", "run (thread.py")
    rows = [(f, inclusive[f] / total, own[f] / total) for f, _ in inclusive.most_common()
            if not any(b in f for b in boring)] if total else []
    return total, rows[:top]


def markdown(title: str, raw: Path, link: str) -> str:
    total, rows = summarize(raw)
    out = [f"#### {title}", "",
           f"{total:,} busy samples; raw stacks: [{raw.name}]({link}).", "",
           "| function | on the stack | at the top |", "| --- | ---: | ---: |"]
    for f, inc, own in rows:
        out.append(f"| `{f}` | {inc:.0%} | {own:.0%} |")
    return "\n".join(out) + "\n"
