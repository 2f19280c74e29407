"""Mailwright itself, set up through its operator commands (docs: operator-contract.md).

``mailwright init DIR --domain example.test --port-base N``, then users and mailboxes loaded
through the Store interface (bench/mwload.py), then ``mailwright serve`` until it says
``ready``. Protocols whose listener is not part of this build are reported "not available".
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    DOMAIN,
    HOST,
    PASSWORD,
    BenchError,
    log,
    pick_port_base,
    run,
    server_preexec,
    tail,
    terminate,
)
from bench.targets.base import Population, Target, password_hashes

# Offsets of `init --port-base N` (operator contract): we keep only smtp, imap and pop3.
_OFFSETS = {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
            "pop3": 110, "pop3s": 995, "http": 8080}
_WANTED = ("smtp", "imap", "pop3")
_READY = re.compile(r"\bready\b.*")

# Raised so that the load generators, not the server's abuse limits, set the pace.
_LIMITS = """
[limits]
max_connections = 30000
max_connections_per_ip = 30000
commands_per_second = 1000000.0
idle_timeout = "1h"
imap_idle_timeout = "2h"

# The reference servers check no SPF, DKIM or DMARC; neither does Mailwright here (and the
# sandbox's resolver would make every check a temporary DNS failure).
[mailauth]
verify = false
"""


def _mailwright() -> list[str]:
    return [sys.executable, "-m", "mailwright"]


class Mailwright(Target):
    name = "mailwright"
    speaks = frozenset({"smtp", "imap", "pop3"})
    delivers_before_250 = True

    def __init__(self, scratch: Path, *, workers: int = 1) -> None:
        super().__init__()
        # `serve --workers`: 1 is the single process; "mailwright-2w" runs two workers
        self.workers = workers
        if workers != 1:
            self.name = f"mailwright-{workers}w"
        self.dir = scratch / self.name
        self.conf = self.dir / "mailwright.toml"
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            import mailwright

            self.version = str(getattr(mailwright, "__version__", "?"))
        except ImportError:
            self.version = "?"
        rev = run(["git", "-C", str(Path(__file__).resolve().parents[2]), "rev-parse",
                   "--short", "HEAD"], check=False).stdout.decode().strip()
        self.label = f"Mailwright {self.version}" + (f" ({rev})" if rev else "") + (
            f", {workers} workers" if workers != 1 else ", 1 worker")
        self._imap_counters: dict[str, object] = {}

    def _cli(self, *args: str, input: bytes | None = None, timeout: float = 120) -> str:
        cp = run([*_mailwright(), *args, "-c", str(self.conf)], input=input, timeout=timeout)
        return cp.stdout.decode()

    def setup(self, population: Population) -> None:
        base = pick_port_base(list(_OFFSETS.values()))
        run([*_mailwright(), "init", str(self.dir), "--domain", DOMAIN, "--port-base", str(base)])
        self._keep_listeners(_WANTED)
        if os.environ.get("MWBENCH_FSYNC") == "0":
            # diagnosis only (docs/benchmarks.md, "IMAP sessions"): how much of a workload's
            # time is waiting for fsync; never how Mailwright is measured against the others
            text = self.conf.read_text()
            self.conf.write_text(text.replace("[storage]\n", "[storage]\nfsync = false\n", 1))
            log("  mailwright: fsync off (MWBENCH_FSYNC=0), for diagnosis")
        with self.conf.open("a") as f:
            f.write(_LIMITS)
        spec = {
            "domain": DOMAIN,
            "hashes": password_hashes(population, PASSWORD),
            "users": list(population.users),
            "maildirs": {u: str(p) for u, p in population.maildirs.items()},
            "concurrency": 64,
        }
        spec_path = self.dir / "load.json"
        spec_path.write_text(json.dumps(spec))
        t0 = time.monotonic()
        cp = run([sys.executable, "-m", "bench.mwload", str(self.conf), str(spec_path)],
                 timeout=3600, check=False)
        if cp.returncode != 0:
            raise BenchError("loading users and mailboxes failed: "
                             + cp.stderr.decode(errors="replace").strip()[-1500:])
        for line in cp.stderr.decode().splitlines():
            log(f"  mailwright: {line}")
        log(f"  mailwright: users and mailboxes loaded in {time.monotonic() - t0:.1f}s")

    def _keep_listeners(self, protocols: tuple[str, ...]) -> None:
        """Drop the [[listener]] tables of protocols the benchmark does not use."""
        text = self.conf.read_text()
        head, *blocks = re.split(r"(?m)^(?=\[\[listener\]\])", text)
        kept = []
        for b in blocks:
            m = re.search(r'(?m)^protocol\s*=\s*"([^"]+)"', b)
            if m and m.group(1) in protocols:
                kept.append(b)
                port = int(re.search(r"(?m)^port\s*=\s*(\d+)", b).group(1))  # type: ignore[union-attr]
                self.endpoints[m.group(1)] = (HOST, port)
        self.conf.write_text(head + "".join(kept))

    def start(self) -> None:
        err_path = self.dir / "serve.log"
        err = open(err_path, "ab")  # noqa: SIM115 - kept for the child
        self.proc = subprocess.Popen(
            [*_mailwright(), "serve", "-c", str(self.conf), "--workers", str(self.workers)],
            stdout=err, stderr=err,
            stdin=subprocess.DEVNULL, preexec_fn=server_preexec,
        )
        err.close()
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"mailwright serve exited {self.proc.returncode}:\n"
                                 + tail(err_path))
            m = _READY.search(err_path.read_text(errors="replace"))
            if m:
                ready = m.group(0)
                break
            time.sleep(0.05)
        if ready is None:
            raise BenchError("mailwright serve did not say ready within 60 s:\n" + tail(err_path))
        text = err_path.read_text(errors="replace")
        for proto in list(self.endpoints):
            if f"{proto}=" not in ready:
                why = re.search(rf"warning: {proto}@\S+: (.*?); listener skipped", text)
                self.unavailable[proto] = ("not available: " + why.group(1)) if why else \
                    "not available: listener not started"
        log(f"  mailwright: {ready}")

    def stop(self) -> None:
        for conn in self._imap_counters.values():
            try:
                conn.logout()  # type: ignore[attr-defined]
            except Exception:
                pass
        self._imap_counters.clear()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            terminate(self.proc, timeout=30)
            self.proc = None

    def root_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None else []

    def count(self, user: str) -> int | None:
        """INBOX size by IMAP STATUS (the store is the server's), None without IMAP."""
        if self.availability("imap") is not None:
            return None
        import imaplib

        host, port = self.endpoint("imap")
        conn = self._imap_counters.get(user)
        if conn is None:
            c = imaplib.IMAP4(host, port, timeout=30)
            c.login(f"{user}@{DOMAIN}", PASSWORD)
            self._imap_counters[user] = conn = c
        assert isinstance(conn, imaplib.IMAP4)
        typ, data = conn.status("INBOX", "(MESSAGES)")
        if typ != "OK":
            raise BenchError(f"STATUS failed: {data!r}")
        m = re.search(rb"MESSAGES (\d+)", data[0] or b"")
        return int(m.group(1)) if m else None
