"""Durability (issue 3, item 5): SIGKILL the server while 20 sessions send, restart it, and
find every message that had received 250 in its mailbox, byte for byte.

Runs the real `mailwright` command with fsync on (the default), so it exercises the whole path:
listener, core, session, blob fsync, group commit, and the garbage collection at restart.
"""

from __future__ import annotations

import smtplib
import threading
from pathlib import Path

import pytest

from tests.smtpd.harness import body_of
from tests.support.server import MailwrightServer

pytestmark = pytest.mark.slow

SESSIONS = 20
ACKED_BEFORE_KILL = 80


def make_server(root: Path) -> MailwrightServer:
    server = MailwrightServer(root / "mw")
    if "[mailauth]" not in server.cfg.read_text():
        # No DNS here: authentication results are recorded as not checked.
        with server.cfg.open("a") as f:
            f.write("\n[mailauth]\nverify = false\n")
    server.add_user("bob@example.test", "pw")
    return server


def message(session: int, seq: int) -> bytes:
    filler = "".join(f"line {i} of message {session}.{seq}\r\n" for i in range(100))
    return (
        f"From: sender{session}@remote.test\r\nTo: bob@example.test\r\n"
        f"Subject: crash test {session}.{seq}\r\nMessage-ID: <{session}.{seq}@remote.test>\r\n"
        f"\r\n{filler}"
    ).encode()


def test_smtp_crash_loses_no_acknowledged_message(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    server.start()
    port = server.port("smtp")
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
    for raw in server.mailbox("bob@example.test"):
        body = body_of(raw)
        mid = body.split(b"Message-ID: <", 1)[1].split(b"@", 1)[0].decode()
        stored[mid] = body
    missing = sorted(set(promised) - set(stored))
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:10]}"
    for key, data in promised.items():
        assert stored[key] == data, f"message {key} differs"


FANOUT = 10  # recipients of every message of the fan-out test


def test_smtp_crash_fanout_in_every_mailbox_or_none(tmp_path: Path) -> None:
    """A message to 10 local recipients is one unit of work: after a SIGKILL, each message is
    in all 10 mailboxes or (if never acknowledged) in none, and every acknowledged one in all."""
    server = make_server(tmp_path)
    rcpts = [f"fan{i:02d}@example.test" for i in range(FANOUT)]
    for r in rcpts:
        server.add_user(r, "pw")
    server.start()
    port = server.port("smtp")
    acked: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()

    def sender(n: int) -> None:
        seq = 0
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                while True:
                    seq += 1
                    s.sendmail(f"sender{n}@remote.test", rcpts, message(n, seq))
                    with lock:
                        acked.add(f"{n}.{seq}")
                        if len(acked) >= ACKED_BEFORE_KILL // 4:
                            enough.set()
        except (smtplib.SMTPException, OSError):
            return  # the server died under us

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SESSIONS // 4)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(120), f"only {len(acked)} messages acknowledged"
        server.kill()
        for t in threads:
            t.join(60)
        with lock:
            promised = set(acked)
        server.start()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            assert s.noop()[0] == 250
    finally:
        server.stop()
    per_mailbox = []
    for r in rcpts:
        ids = [body_of(raw).split(b"Message-ID: <", 1)[1].split(b"@", 1)[0].decode()
               for raw in server.mailbox(r)]
        assert len(ids) == len(set(ids)), f"{r}: a message stored twice"
        per_mailbox.append(set(ids))
    assert all(ids == per_mailbox[0] for ids in per_mailbox), "a message reached only some"
    missing = sorted(promised - per_mailbox[0])
    assert not missing, f"{len(missing)} acknowledged fan-out messages lost: {missing[:10]}"
