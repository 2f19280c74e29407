"""Durability (issue 3, item 5): SIGKILL the server while 20 sessions send, restart it, and
find every message that had received 250 in its mailbox, byte for byte.

Runs the real `mailwright` command with fsync on (the default), so it exercises the whole path:
listener, core, session, blob fsync, group commit, and the garbage collection at restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mailwright.cli.common import opened_store
from mailwright.config import load_config

pytestmark = pytest.mark.slow

SESSIONS = 20
ACKED_BEFORE_KILL = 80
OFFSETS = (25, 587, 465, 143, 993, 110, 995, 8080)


def free_port_base() -> int:
    import random

    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        try:
            for off in OFFSETS:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + off))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


class Server:
    def __init__(self, root: Path) -> None:
        self.base = free_port_base()
        self.dir = root / "mw"
        self.cfg = self.dir / "mailwright.toml"
        self.proc: subprocess.Popen[str] | None = None
        self.run("init", str(self.dir), "--domain", "example.test",
                 "--port-base", str(self.base), config=False)  # fmt: skip
        if "[mailauth]" not in self.cfg.read_text():
            # No DNS here: authentication results are recorded as not checked.
            with self.cfg.open("a") as f:
                f.write("\n[mailauth]\nverify = false\n")
        self.run("user", "add", "bob@example.test", "--password-stdin", stdin="pw\n")

    def run(self, *args: str, stdin: str | None = None, config: bool = True) -> str:
        cmd = [sys.executable, "-m", "mailwright", *args]
        if config:
            cmd += ["-c", str(self.cfg)]
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (cmd, result.stdout, result.stderr)
        return result.stdout

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailwright", "serve", "-c", str(self.cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert self.proc.stderr is not None
        lines = []
        for line in self.proc.stderr:
            lines.append(line)
            if "ready" in line:
                break
        else:
            raise RuntimeError("server did not start:\n" + "".join(lines))
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def inbox(self, address: str) -> list[bytes]:
        async def read() -> list[bytes]:
            async with opened_store(load_config(self.cfg)) as store:
                account = await store.find_account(address)
                assert account is not None
                box = await store.get_mailbox(account.id, "INBOX")
                assert box is not None
                return [await store.read_blob(r.blob_id) for r in await store.list_messages(box.id)]

        return asyncio.run(read())


def message(session: int, seq: int) -> bytes:
    filler = "".join(f"line {i} of message {session}.{seq}\r\n" for i in range(100))
    return (
        f"From: sender{session}@remote.test\r\nTo: bob@example.test\r\n"
        f"Subject: crash test {session}.{seq}\r\nMessage-ID: <{session}.{seq}@remote.test>\r\n"
        f"\r\n{filler}"
    ).encode()


def strip_trace(stored: bytes) -> bytes:
    lines = stored.split(b"\r\n")
    i = 0
    while lines[i].startswith(
        (b"Return-Path:", b"Received:", b"Authentication-Results:", b"\t", b" ")
    ):
        i += 1
    return b"\r\n".join(lines[i:])


def test_smtp_crash_loses_no_acknowledged_message(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.start()
    port = server.base + 25
    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    enough = threading.Event()

    def sender(n: int) -> None:
        seq = 0
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                while True:
                    seq += 1
                    data = message(n, seq)
                    s.sendmail(f"sender{n}@remote.test", ["bob@example.test"], data)
                    # sendmail returned: the server said 250 to the end of data.
                    with lock:
                        acked[f"{n}.{seq}"] = data
                        if len(acked) >= ACKED_BEFORE_KILL:
                            enough.set()
        except (smtplib.SMTPException, OSError):
            return  # the server died under us

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SESSIONS)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(120), f"only {len(acked)} messages acknowledged"
        server.kill()
        for t in threads:
            t.join(60)
        with lock:
            promised = dict(acked)
        server.start()  # restart after the crash: recovery and garbage collection run
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            assert s.noop()[0] == 250
    finally:
        server.stop()
    stored = {}
    for raw in server.inbox("bob@example.test"):
        body = strip_trace(raw)
        mid = body.split(b"Message-ID: <", 1)[1].split(b"@", 1)[0].decode()
        stored[mid] = body
    missing = sorted(set(promised) - set(stored))
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:10]}"
    for key, data in promised.items():
        assert stored[key] == data, f"message {key} differs"
