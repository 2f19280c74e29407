"""Small helpers shared by the harness: logging, ports, commands, waiting.

The harness is plain synchronous code in the parent process (it only starts and stops
servers and load generators); every client runs in its own process with its own event loop.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

DOMAIN = "example.test"
PASSWORD = "secret"
HOST = "127.0.0.1"

_T0 = time.monotonic()


class BenchError(Exception):
    """A failure of the harness or of a server under test, reported as one line."""


def log(msg: str) -> None:
    """Progress on stderr, so that stdout stays free for the summary."""
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


_claimed: set[int] = set()


def pick_port_base(offsets: Sequence[int], lo: int = 20000, hi: int = 29000) -> int:
    """A base N such that N+offset is free for every offset (and not claimed by us before).

    Chosen at random in a range the test suite does not use, so that a benchmark never
    collides with tests or with another benchmark run.
    """
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(lo, hi, 10)
        ports = [base + o for o in offsets]
        if any(p in _claimed for p in ports):
            continue
        if all(port_free(p) for p in ports):
            _claimed.update(ports)
            return base
    raise BenchError("no free block of loopback ports found")


def pick_port() -> int:
    return pick_port_base([0], 33000, 39000)


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run(cmd: Sequence[str], *, input: bytes | None = None, timeout: float = 600,
        check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command, turning a failure into a BenchError that shows its output."""
    try:
        cp = subprocess.run(list(cmd), input=input, capture_output=True, timeout=timeout, env=env)
    except FileNotFoundError as e:
        raise BenchError(f"{cmd[0]}: not found") from e
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{' '.join(cmd)}: timed out after {timeout:.0f}s") from e
    if check and cp.returncode != 0:
        out = (cp.stderr or cp.stdout).decode(errors="replace").strip()[-2000:]
        raise BenchError(f"{' '.join(cmd)}: exit {cp.returncode}: {out}")
    return cp


def raise_nofile(limit: int = 200_000) -> None:
    """Lift the open-file limit (root may raise the hard limit) for many connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, limit)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_preexec() -> None:
    """Run in the child before exec: own process group, many files allowed."""
    os.setpgrp()
    raise_nofile()


def terminate(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, wait, then SIGKILL: only the process we started (and its group)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(5)


def tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])
