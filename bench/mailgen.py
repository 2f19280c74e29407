"""Deterministic test messages and Maildir folders shared by every server.

Every server gets the same bytes: the Maildir written here is handed to Dovecot as it is and
imported into Mailwright, so that mailbox contents are identical on both sides.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from bench.common import DOMAIN

_WORDS = ["mail", "server", "message", "queue", "delivery", "mailbox", "header", "body", "sender", "recipient", "relay", "folder", "index", "flag", "search", "fetch", "store", "append", "expunge", "select", "idle", "session", "report", "invoice", "meeting", "agenda", "project", "update", "release", "weekly", "notes", "travel", "budget", "draft"]


def message(i: int, size: int, *, sender: str = f"sender@{DOMAIN}",
            rcpt: str = f"alice@{DOMAIN}", subject: str | None = None,
            eol: bytes = b"\r\n") -> bytes:
    """A plain-text message of about ``size`` bytes (headers included), number ``i``."""
    rng = random.Random(i * 7919 + size)
    date = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
    subj = subject or f"bench message {i} {rng.choice(_WORDS)} {rng.choice(_WORDS)}"
    head = (
        f"From: Sender {i % 97} <sender{i % 97}@{DOMAIN}>\n"
        f"To: <{rcpt}>\n"
        f"Subject: {subj}\n"
        f"Date: {format_datetime(date)}\n"
        f"Message-ID: <bench.{i}.{size}@{DOMAIN}>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        f"X-Envelope-Sender: {sender}\n"
        "\n"
    )
    lines = [head.rstrip("\n").replace("\n", "\r\n").encode() + b"\r\n\r\n"]
    total = len(lines[0])
    while total < size:
        words: list[str] = []
        n = 0
        while n < 64:
            w = rng.choice(_WORDS)
            words.append(w)
            n += len(w) + 1
        line = (" ".join(words)).encode() + b"\r\n"
        lines.append(line)
        total += len(line)
    data = b"".join(lines)
    if eol != b"\r\n":
        data = data.replace(b"\r\n", eol)
    return data


def write_maildir(root: Path, messages: Iterable[bytes], *, flags: str = "S") -> int:
    """Write messages (LF line ends) into ``root/cur`` the way Dovecot names them.

    The ``S=`` (size) and ``W=`` (CRLF size) fields in the names let Dovecot index the folder
    without reading each file, which is how a Maildir written by Dovecot itself looks.
    """
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    base = int(time.time()) - 86400
    pid = os.getpid()
    n = 0
    for n, data in enumerate(messages, 1):
        vsize = len(data) + data.count(b"\n")
        name = f"{base + n}.M{n}P{pid}.mwbench,S={len(data)},W={vsize}:2,{flags}"
        (root / "cur" / name).write_bytes(data)
    return n


def maildir_count(root: Path) -> int:
    """Messages in a Maildir (new and cur), without opening any of them."""
    total = 0
    for sub in ("new", "cur"):
        try:
            with os.scandir(root / sub) as it:
                total += sum(1 for e in it if not e.name.startswith("."))
        except FileNotFoundError:
            pass
    return total
