"""Large messages into a real `mailwright serve` process over real sockets: memory stays bounded.

Eight clients send 48 MB each at once to the MX. Before, the server buffered and copied each
message whole (about 600 MiB of growth for these eight, see docs/reliability.md); now content
streams to disk in bounded chunks and only the MIME parse, one message at a time, holds a whole
message. The bound asserted is far from the measured value (about 70 MiB), never a timing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright.tls import make_self_signed

MB = 1000 * 1000
MIB = 1024 * 1024
LINE = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mailwright(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailwright", "-c", str(cfg), *args],
                          input="pw\n", capture_output=True, text=True, timeout=120, check=True)


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection"
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and lines[-2][3:4] == b" ":
            return lines[-2]


def content(size: int) -> Iterator[bytes]:
    head = b"From: x@remote.test\r\nSubject: large\r\n\r\n"
    block = LINE * (MIB // len(LINE))
    yield head
    left = size - len(head)
    while left > 0:
        yield block[:left]
        left -= min(left, len(block))


def send(port: int, size: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
        read_reply(s)
        for cmd in (b"EHLO client.test", b"MAIL FROM:<x@remote.test>",
                    b"RCPT TO:<bob@example.test>", b"DATA"):
            s.sendall(cmd + b"\r\n")
            read_reply(s)
        for piece in content(size):
            s.sendall(piece)
        s.sendall(b"\r\n.\r\n")
        return read_reply(s)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    port = free_port()
    make_self_signed("mail.example.test", tmp_path / "cert.pem", tmp_path / "key.pem")
    cfg = tmp_path / "mailwright.toml"
    cfg.write_text("\n".join([
        "[server]", 'hostname = "mail.example.test"', 'data_dir = "data"',
        "[tls]", 'cert = "cert.pem"', 'key = "key.pem"',
        "[storage]", "fsync = false",
        "[dns]", 'nameservers = ["127.0.0.1"]',
        "[mailauth]", "verify = false",
        "[[listener]]", 'protocol = "smtp"', 'address = "127.0.0.1"', f"port = {port}", "",
    ]))
    mailwright(cfg, "domain", "add", "example.test")
    mailwright(cfg, "user", "add", "bob@example.test", "--password-stdin")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "mailwright", "-c", str(cfg), "serve",
                             "--workers", "1"],  # the RSS of one serving process
                            stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                threading.Event().wait(0.1)
        yield proc.pid, port, cfg
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def test_smtp_eight_concurrent_48mb_messages_keep_memory_bounded(
    served: tuple[int, int, Path],
) -> None:
    pid, port, cfg = served
    assert send(port, 10_000).startswith(b"250")  # every code path loaded once
    base = status_kib(pid, "VmRSS")
    replies: list[bytes] = []
    threads = [threading.Thread(target=lambda: replies.append(send(port, 48 * MB)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 8 and all(r.startswith(b"250 2.0.0") for r in replies), replies
    growth_mib = (status_kib(pid, "VmHWM") - base) / 1024
    assert growth_mib < 200, f"peak RSS grew by {growth_mib:.0f} MiB"
    listing = subprocess.run(
        [sys.executable, "-c",
         "import asyncio, sys\n"
         "from mailwright.config import load_config\n"
         "from mailwright.store import open_store\n"
         "async def main():\n"
         "    s = open_store(load_config(sys.argv[1])); await s.open()\n"
         "    a = await s.find_account('bob@example.test')\n"
         "    box = await s.get_mailbox(a.id, 'INBOX')\n"
         "    print(sorted(m.size for m in await s.list_messages(box.id)))\n"
         "    await s.close()\n"
         "asyncio.run(main())\n", str(cfg)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    sizes = eval(listing)  # noqa: S307 - our own subprocess's list of ints
    assert len(sizes) == 9 and all(48 * MB < size < 48 * MB + 2000 for size in sizes[1:])
