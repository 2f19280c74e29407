"""Mailwright's POP3 answers compared with Dovecot's, byte for byte, on the same corpus.

Dovecot (Debian package dovecot-pop3d) is the reference server: both get the same messages,
and for each one RETR, TOP n 0 and TOP n 3 (the whole multi-line answer after the status
line) and LIST sizes must be identical.  Dovecot runs from a scratch directory with its own
config, as the user ``nobody``; the test skips when it is not installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.pop3d.harness import (
    PASSWORD,
    Pop3Server,
    add_message,
    add_user,
    corpus_messages,
    start_server,
)

CORPUS = corpus_messages()
NOBODY = 65534
pytestmark = [
    pytest.mark.interop,
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_config(d: Path, port: int) -> str:
    return f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = mw-pop3-test-{os.getpid()}
protocols = pop3
listen = 127.0.0.1
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
mail_location = maildir:~/Maildir
first_valid_uid = {NOBODY}
last_valid_uid = {NOBODY}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@pytest.fixture(scope="module")
def dovecot() -> Iterator[int]:
    # a missing tool fails the test, never skips it (scripts/test.sh installs dovecot-pop3d)
    assert shutil.which("dovecot"), "dovecot is not installed (apt-get install dovecot-pop3d)"
    assert os.geteuid() == 0, "running Dovecot as another user needs root"
    d = Path(tempfile.mkdtemp(prefix="mw-pop3-dovecot-"))
    d.chmod(0o755)
    try:
        for sub in ("run", "state"):
            (d / sub).mkdir()
        home = d / "home"
        maildir = home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        # Names with increasing timestamps: Dovecot numbers new messages in that order.
        for i, path in enumerate(CORPUS):
            (maildir / "cur" / f"{1_000_000_000 + i}.M{i}P1.test:2,").write_bytes(path.read_bytes())
        for dirpath, _dirnames, filenames in os.walk(home):
            os.chown(dirpath, NOBODY, NOBODY)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
        (d / "users").write_text(f"bob:{{PLAIN}}{PASSWORD}:{NOBODY}:{NOBODY}::{home}::\n")
        # Dovecot's auth process (user dovecot) reads it: readable whatever the umask, which
        # an earlier test that ran Mailwright's CLI in this process has tightened to 027
        # (restrict_umask), so the file would depend on which tests ran before
        (d / "users").chmod(0o644)
        port = free_port()
        (d / "dovecot.conf").write_text(dovecot_config(d, port))
        proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(d / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        pytest.fail("Dovecot did not start: " + (d / "dovecot.log").read_text()[-500:])
                    time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def mailwright(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    srv = await start_server(tmp_path)
    account = await add_user(srv.store, "bob")
    for path in CORPUS:
        await add_message(srv.store, account, path.read_bytes())
    try:
        yield srv
    finally:
        await srv.stop()


class Client:
    """A raw POP3 client that keeps multi-line answers exactly as sent (still dot-stuffed)."""

    def __init__(self, port: int, user: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        assert self.command(b"USER " + user.encode()).startswith(b"+OK")
        assert self.command(b"PASS " + PASSWORD.encode()).startswith(b"+OK")

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.file.readline()

    def multi(self, line: bytes) -> bytes:
        status = self.command(line)
        assert status.startswith(b"+OK"), (line, status)
        body = b""
        while not (body.endswith(b"\r\n.\r\n") or body == b".\r\n"):
            body += self.file.readline()
        return body

    def close(self) -> None:
        self.command(b"QUIT")
        self.sock.close()


def answers(port: int, user: str) -> tuple[list[int], list[tuple[bytes, bytes, bytes]]]:
    c = Client(port, user)
    sizes = [int(line.split()[1]) for line in c.multi(b"LIST").split(b"\r\n")[:-2]]
    out = [
        (c.multi(b"RETR %d" % n), c.multi(b"TOP %d 0" % n), c.multi(b"TOP %d 3" % n))
        for n in range(1, len(sizes) + 1)
    ]
    c.close()
    return sizes, out


async def test_pop3_dovecot_same_bytes_for_retr_top_and_list(mailwright: Pop3Server, dovecot: int) -> None:
    ours_sizes, ours = await asyncio.to_thread(answers, mailwright.port, "bob@example.test")
    theirs_sizes, theirs = await asyncio.to_thread(answers, dovecot, "bob")
    assert len(ours) == len(theirs) == len(CORPUS)
    differ = {
        path.name: [what for what, a, b in zip(("RETR", "TOP 0", "TOP 3"), mine, ref, strict=True) if a != b]
        for path, mine, ref in zip(CORPUS, ours, theirs, strict=True)
        if mine != ref
    }
    assert differ == {}
    assert ours_sizes == theirs_sizes
