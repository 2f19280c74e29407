"""aiosmtpd (PyPI) with the fsync'ing spool handler of bench/aiosmtpd_server.py."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from bench.common import (
    DOMAIN,
    HOST,
    BenchError,
    pick_port,
    port_open,
    server_preexec,
    tail,
    terminate,
    wait_for,
)
from bench.targets.base import Population, Target


class Aiosmtpd(Target):
    name = "aiosmtpd"
    speaks = frozenset({"smtp"})
    delivers_before_250 = True

    def __init__(self, scratch: Path) -> None:
        super().__init__()
        import aiosmtpd

        self.dir = scratch / "aiosmtpd"
        self.version = str(aiosmtpd.__version__)
        self.label = f"aiosmtpd {self.version} (fsync spool)"
        self.proc: subprocess.Popen[bytes] | None = None
        self.users: tuple[str, ...] = ()

    def setup(self, population: Population) -> None:
        self.dir.mkdir(parents=True)
        self.users = population.users
        self.endpoints = {"smtp": (HOST, pick_port())}

    def start(self) -> None:
        port = self.endpoints["smtp"][1]
        err = open(self.dir / "stderr.log", "ab")  # noqa: SIM115 - kept for the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.aiosmtpd_server", "--port", str(port),
             "--spool", str(self.dir / "spool"), "--users", ",".join(self.users),
             "--domain", DOMAIN],
            stdout=err, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=server_preexec,
            cwd=Path(__file__).resolve().parents[2],
        )
        err.close()
        try:
            wait_for(lambda: port_open(port), 30, "aiosmtpd")
        except BenchError:
            raise BenchError("aiosmtpd did not start:\n" + tail(self.dir / "stderr.log")) from None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            terminate(self.proc)
            self.proc = None

    def root_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def count(self, user: str) -> int | None:
        folder = self.dir / "spool" / user / "new"
        try:
            return sum(1 for _ in folder.iterdir())
        except FileNotFoundError:
            return 0
