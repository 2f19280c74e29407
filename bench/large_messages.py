"""Large messages into a real server: peak memory of the server process and event-loop stalls.

Run as ``python -m bench.large_messages [--scenario NAME ...]``. For every scenario a fresh
server is made with ``mailwright init`` (SQLite store) and started with ``mailwright serve``
(the code on ``PYTHONPATH``, so the same script measures two versions), a user is added, and
messages go to the MX port from raw sockets (``[mailauth] verify`` off: no DNS here; the
header section is still checked for forged Authentication-Results).

* ``one50``: one 50,000,000-byte message; the server's RSS is sampled every 10 ms.
* ``eight48``: 8 concurrent 48,000,000-byte messages; peak RSS, and RSS once they are stored.
* ``stall-crlf`` / ``stall-lf``: one 49 MiB message (CRLF, or bare LF line ends) while a second
  connection from another loopback address sends NOOP every 5 ms; the longest NOOP round trip
  is the longest time the server's event loop could not answer.

Figures are printed as one line per scenario (MiB and seconds); docs/reliability.md keeps them.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import pick_port_base, port_open, terminate, wait_for

MIB = 1024 * 1024
LINE = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."


def mw(cfg: Path, *args: str, stdin: bytes = b"") -> None:
    subprocess.run([sys.executable, "-m", "mailwright", "-c", str(cfg), *args], input=stdin,
                   check=True, capture_output=True, timeout=120)


def make_server(root: Path) -> tuple[Path, int]:
    base = pick_port_base([25, 587])
    subprocess.run([sys.executable, "-m", "mailwright", "init", str(root), "--domain",
                    "example.test", "--port-base", str(base)], check=True, capture_output=True)
    cfg = root / "mailwright.toml"
    with cfg.open("a") as f:
        f.write('\n[mailauth]\nverify = false\n\n[dns]\nnameservers = ["127.0.0.1"]\n'
                if "[dns]" not in cfg.read_text() else '\n[mailauth]\nverify = false\n')
    mw(cfg, "user", "add", "bob@example.test", "--password-stdin", stdin=b"pw\n")
    return cfg, base + 25


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid)[0])
            time.sleep(0.01)


def recv_reply(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" ":
            return data


def message(size: int, eol: bytes) -> list[bytes]:
    """A message of `size` bytes (as sent) in chunks of about 1 MiB."""
    line = LINE + eol
    head = b"From: x@remote.test" + eol + b"Subject: large" + eol + eol
    chunk = line * (MIB // len(line))
    out, left = [head], size - len(head)
    while left > 0:
        piece = chunk[:left]
        out.append(piece)
        left -= len(piece)
    return out


def send(port: int, size: int, eol: bytes = b"\r\n") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
        recv_reply(s)
        for cmd in (b"EHLO bench.test", b"MAIL FROM:<x@remote.test>",
                    b"RCPT TO:<bob@example.test>", b"DATA"):
            s.sendall(cmd + b"\r\n")
            recv_reply(s)
        for piece in message(size, eol):
            s.sendall(piece)
        s.sendall(b"\r\n.\r\n")
        reply = recv_reply(s)
        s.sendall(b"QUIT\r\n")
        return reply


class Pinger(threading.Thread):
    """NOOP round trips from 127.0.0.2 (its own per-address limits)."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
        recv_reply(self.sock)
        self.worst = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            self.sock.sendall(b"NOOP\r\n")
            recv_reply(self.sock)
            self.worst = max(self.worst, time.perf_counter() - t)
            time.sleep(0.005)


def scenario(name: str) -> str:
    with tempfile.TemporaryDirectory(prefix="mw-large-") as tmp:
        cfg, port = make_server(Path(tmp) / "srv")
        log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "mailwright", "-c", str(cfg), "serve",
                             "--workers", "1"],  # the RSS of one serving process
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: port_open(port), 60, "the MX port")
            send(port, 10_000)  # warm up: every code path imported once
            base = rss_kib(proc.pid)[0]
            sampler = Sampler(proc.pid)
            sampler.start()
            pinger = None
            if name.startswith("stall"):
                pinger = Pinger(port)
                pinger.start()
            replies: list[bytes] = []
            t0 = time.perf_counter()
            if name == "one50":
                replies.append(send(port, 50_000_000))
            elif name == "eight48":
                threads = [threading.Thread(target=lambda: replies.append(send(port, 48_000_000)))
                           for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            else:
                replies.append(send(port, 49 * MIB, b"\n" if name == "stall-lf" else b"\r\n"))
            took = time.perf_counter() - t0
            time.sleep(0.5)
            sampler.stop.set()
            sampler.join()
            after, hwm = rss_kib(proc.pid)
            worst = ""
            if pinger is not None:
                pinger.stop.set()
                pinger.join()
                worst = f" longest_noop_s={pinger.worst:.3f}"
            ok = sum(r.split(b"\r\n")[-2].startswith(b"250") for r in replies)
            return (f"{name}: accepted={ok}/{len(replies)} base_mib={base / 1024:.0f}"
                    f" peak_growth_mib={(max(sampler.peak, hwm) - base) / 1024:.0f}"
                    f" kept_mib={(after - base) / 1024:.0f} seconds={took:.1f}{worst}")
        finally:
            terminate(proc)
            log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append",
                    choices=["one50", "eight48", "stall-crlf", "stall-lf"])
    args = ap.parse_args()
    print(f"mailwright from {os.environ.get('PYTHONPATH', '(installed)')}", flush=True)
    for name in args.scenario or ["one50", "eight48", "stall-crlf", "stall-lf"]:
        print(scenario(name), flush=True)


if __name__ == "__main__":
    main()
