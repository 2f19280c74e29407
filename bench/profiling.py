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
from dataclasses import dataclass
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


_FRIENDLY = {
    "Runner.run (runners.py)": "event loop itself (uvloop's C code: I/O, callbacks, wake-ups)",
    "_worker (thread.py)": "thread-pool workers (blocking calls made through to_thread)",
}
#: frames that only pass control on (accept loop, per-connection handler, dispatch)
_WRAPPERS = ("create.<locals>.handle", "on_connect", "Session.execute", "_loop (", "answer (",
             "_run_writer", "SmtpSession.handle", "<module>", "_bootstrap", "run (mailwright/app",
             "main (mailwright/cli", "cmd_serve", "serve (mailwright", "ListenerSet._serve",
             "Session.run (")


@dataclass(slots=True)
class Summary:
    total: int
    threads: list[tuple[str, float]]
    own: list[tuple[str, float]]
    inclusive: list[tuple[str, float]]


def summarize(raw: Path, top: int = 10) -> Summary:
    """Shares of busy samples: per thread, per function at the top, per function on the stack."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        parts = stack.split(";")
        if parts and parts[0].startswith("thread "):
            name = parts[0].rpartition(":")[2].strip()
            threads[name.rstrip("_0123456789") or name] += n
        frames = [_frame_name(f) for f in parts if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        for f in set(frames):
            if "mailwright/" in f and not any(w in f for w in _WRAPPERS):
                inclusive[f] += n
        own[frames[-1]] += n
    if not total:
        return Summary(0, [], [], [])
    return Summary(
        total,
        [(t, n / total) for t, n in threads.most_common(6)],
        [(_FRIENDLY.get(f, f), n / total) for f, n in own.most_common(top)],
        [(f, n / total) for f, n in inclusive.most_common(top)],
    )


def markdown(title: str, raw: Path, link: str) -> str:
    s = summarize(raw)
    out = [f"#### {title}", "",
           f"{s.total:,} busy samples ([raw stacks]({link})); by thread: "
           + ", ".join(f"{t} {share:.0%}" for t, share in s.threads) + ".", "",
           "| running itself (at the top of the stack) | share |", "| --- | ---: |"]
    out += [f"| `{f}` | {share:.0%} |" for f, share in s.own]
    out += ["", "| Mailwright function, with what it calls (on the stack) | share |",
            "| --- | ---: |"]
    out += [f"| `{f}` | {share:.0%} |" for f, share in s.inclusive]
    return "\n".join(out) + "\n"
