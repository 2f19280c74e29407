"""Crash safety under a mixed load (issue 10, item 1): the harness shared by
tests/robustness/test_crash_mixed.py (a few rounds in CI) and bench/crash_soak.py (many).

One round: start `mailwright serve`; real clients run at once (SMTP to the MX, submission to a
local and a remote recipient, IMAP APPEND, IMAP UID EXPUNGE, POP3 DELE); SIGKILL the server at a
random moment; restart it and check every promise made so far:

* every acknowledged message is in its mailbox, byte for byte (after the trace headers the
  server adds), unless its removal was acknowledged too;
* no message is twice in one mailbox;
* a UID, once seen holding a message, never holds another (UIDVALIDITY unchanged), and an
  APPENDUID answer names the UID the message really has;
* `mailwright check` finds the store consistent;
* at the end, every acknowledged remote message reached the remote MX (an aiosmtpd server
  found through the test DNS server); the queue is at-least-once, so duplicates there are
  counted, not failed.

A client records an acknowledgement only after the server's final positive answer, and an
intent (removal may have happened) before it asks for a removal, so the checker knows what
was promised when the kill landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import poplib
import random
import re
import smtplib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from mailwright.cli.common import opened_store
from mailwright.config import load_config
from tests.support.dnsserver import DNSServer
from tests.support.server import PASSWORD, MailwrightServer

from .netclients import no_verify

ALICE = "alice@example.test"
BOB = "bob@example.test"
CAROL = "carol@remote.test"
_MID = re.compile(rb"^Message-ID: <([^>]+)>", re.M | re.I)
_TRACE = (b"Return-Path:", b"Received:", b"X-Spam-", b"Authentication-Results:",
          b"DKIM-Signature:", b"ARC-", b"\t", b" ")  # fmt: skip
CLIENT_ERRORS = (OSError, EOFError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto)


def message(
    kind: str, rnd: int, n: int, rng: random.Random, to: str = ALICE,
    sender: str = "sender@crash.test",
) -> tuple[str, bytes]:
    """A complete message (with Date: and Message-ID:, so submission adds nothing to it);
    submitted ones are from the submitting user (RFC 6409 8.1, enforced)."""
    mid = f"{kind}.{rnd}.{n}@crash.test"
    lines = rng.randint(1, 600)
    body = "".join(
        f"{kind} {rnd}.{n} line {i} {rng.getrandbits(64):016x}\r\n" for i in range(lines)
    )
    data = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {kind} {rnd}.{n}\r\n"
            "Date: Mon, 7 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{mid}>\r\n\r\n{body}").encode()  # fmt: skip
    return mid, data


def strip_trace(stored: bytes) -> bytes:
    lines = stored.split(b"\r\n")
    i = 0
    while i < len(lines) and lines[i].startswith(_TRACE):
        i += 1
    return b"\r\n".join(lines[i:])


class _Sink:
    """The remote MX: records every message it is given."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.messages.append(bytes(envelope.content))
        return "250 2.0.0 ok"

    def mids(self) -> Counter[str]:
        with self.lock:
            return Counter(m.group(1).decode() for d in self.messages if (m := _MID.search(d)))


@dataclass
class Ledger:
    """What the server promised, across rounds."""

    # (address, mailbox) -> message-id -> the bytes the client gave
    acked: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    appenduid: dict[str, int] = field(default_factory=dict)  # message-id -> UID (Archive)
    removed: set[str] = field(default_factory=set)  # removal acknowledged
    maybe_removed: set[str] = field(default_factory=set)  # removal asked for
    remote: set[str] = field(default_factory=set)  # acknowledged for carol@remote.test
    # (address, mailbox, uidvalidity, uid) -> message-id ever seen there
    uids: dict[tuple[str, str, int, int], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)

    def ack(self, box: tuple[str, str], mid: str, data: bytes, kind: str) -> None:
        with self.lock:
            self.acked.setdefault(box, {})[mid] = data
            self.counts[kind] += 1


@dataclass
class Stats:
    rounds: int = 0
    kills: int = 0
    acked: Counter[str] = field(default_factory=Counter)
    checked_messages: int = 0
    remote_duplicates: int = 0
    pop3_locked_out: int = 0
    seconds: float = 0.0


class MixedCrashWorld:
    """A server under test, its DNS, the remote MX, and the ledger of promises."""

    def __init__(self, root: Path, seed: int = 1, workers: int = 1) -> None:
        self.rng = random.Random(seed)
        self.dns = DNSServer().start()
        self.dns.add("remote.test", "MX", "10 mx.remote.test.")
        self.dns.add("mx.remote.test", "A", "127.0.0.1")
        self.sink = _Sink()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            sink_port = probe.getsockname()[1]
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=sink_port)
        self.controller.start()
        self.srv = MailwrightServer(root / "mw", workers=workers)
        self.srv.edit_config("nameservers = []", f'nameservers = ["{self.dns.config_value}"]')
        self.srv.edit_config("port = 25\n", f"port = {sink_port}\n")
        self.srv.edit_config('retry_schedule = ["1m",', 'retry_schedule = ["1s", "2s",')
        with self.srv.cfg.open("a") as f:
            f.write("\n[mailauth]\nverify = false\n")
        self.srv.add_user(ALICE)
        self.srv.add_user(BOB)
        self.ledger = Ledger()
        self.stats = Stats()
        self.round = 0
        self._seq: Counter[str] = Counter()
        self.errors: list[str] = []

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.srv.stop()
        with contextlib.suppress(Exception):
            self.controller.stop()
        with contextlib.suppress(Exception):
            self.dns.stop()

    # -- one round ---------------------------------------------------------------------------

    def run_round(self, min_acks: int = 15, max_load: float = 3.0) -> None:
        """Start, load, kill at a random moment; the next start or `finish` verifies."""
        started = time.monotonic()
        self.round += 1
        self.srv.start()
        self.verify()
        stop = threading.Event()
        before = sum(self.ledger.counts.values())
        first = {k: self.ledger.counts[k] for k in ("smtp-mx", "submission", "imap-append")}
        if self.ledger.appenduid:
            first["imap-expunge"] = self.ledger.counts["imap-expunge"]
        workers = [
            threading.Thread(target=fn, args=(stop, i), daemon=True)
            for i, fn in enumerate(
                [
                    self._mx_in,
                    self._mx_in,
                    self._submission,
                    self._append,
                    self._expunge,
                    self._pop3_dele,
                ]
            )
        ]
        for w in workers:
            w.start()
        # Kill at a random moment, once every client has had something acknowledged.
        deadline = time.monotonic() + 60
        while sum(self.ledger.counts.values()) - before < min_acks or any(
            self.ledger.counts[k] <= first[k] for k in first
        ):
            assert time.monotonic() < deadline, (
                f"no progress: {self.ledger.counts} {self.errors[-5:]}"
            )
            time.sleep(0.05)
        time.sleep(self.rng.uniform(0.0, max_load))
        self.srv.kill()
        self.stats.kills += 1
        stop.set()
        for w in workers:
            w.join(60)
        self.srv.cli("check")  # the store as the crash left it
        self.stats.rounds += 1
        self.stats.seconds += time.monotonic() - started

    def finish(self, drain_timeout: float = 90.0) -> Stats:
        """Restart, verify, wait for the queue to hand every remote message over, stop."""
        self.srv.start()
        try:
            self.verify()
            deadline = time.monotonic() + drain_timeout
            while missing := self.ledger.remote - set(self.sink.mids()):
                assert time.monotonic() < deadline, f"{len(missing)} remote messages never sent"
                time.sleep(0.2)
        finally:
            self.srv.stop()
        self.srv.cli("check")
        self.stats.acked = Counter(self.ledger.counts)
        self.stats.remote_duplicates = sum(n - 1 for n in self.sink.mids().values() if n > 1)
        return self.stats

    # -- the checks --------------------------------------------------------------------------

    def verify(self) -> None:
        stored = asyncio.run(self._read_store())
        led = self.ledger
        for box, messages in stored.items():
            mids = Counter(mid for _uid, mid, _data in messages["list"])
            twice = [m for m, n in mids.items() if n > 1 and m]
            assert not twice, f"delivered twice to {box}: {twice[:5]}"
            validity = messages["uidvalidity"]
            for uid, mid, _data in messages["list"]:
                key = (box[0], box[1], validity, uid)
                old = led.uids.setdefault(key, mid)
                assert old == mid, f"UID {uid} of {box} reused: {old} then {mid}"
        for box, promised in led.acked.items():
            present = {mid: data for _uid, mid, data in stored[box]["list"]}
            for mid, data in promised.items():
                if mid in led.removed:
                    assert mid not in present, f"{mid} removed (acknowledged) but back in {box}"
                    continue
                if mid not in present:
                    assert mid in led.maybe_removed, f"acknowledged {mid} lost from {box}"
                    continue
                got = present[mid]
                if box[1] == "INBOX":
                    got = strip_trace(got)
                assert got == data, f"{mid} in {box} differs"
                self.stats.checked_messages += 1
        for mid, uid in led.appenduid.items():
            if mid in led.removed or mid in led.maybe_removed:
                continue
            uids = [u for u, m, _d in stored[(ALICE, "Archive")]["list"] if m == mid]
            assert uids == [uid], f"APPENDUID said {uid} for {mid}, the store has {uids}"

    async def _read_store(self) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        async with opened_store(load_config(self.srv.cfg)) as store:
            for address, name in ((ALICE, "INBOX"), (ALICE, "Archive"), (BOB, "INBOX")):
                account = await store.find_account(address)
                assert account is not None
                box = await store.get_mailbox(account.id, name)
                assert box is not None
                items = []
                for rec in await store.list_messages(box.id):
                    data = await store.read_blob(rec.blob_id)
                    m = _MID.search(data)
                    items.append((rec.uid, m.group(1).decode() if m else "", data))
                out[(address, name)] = {"uidvalidity": box.uidvalidity, "list": items}
        return out

    # -- the clients -------------------------------------------------------------------------

    def _next(self, kind: str) -> int:
        with self.ledger.lock:
            self._seq[kind] += 1
            return self._seq[kind]

    def _mx_in(self, stop: threading.Event, i: int) -> None:
        rng = random.Random(self.rng.random())
        with (
            contextlib.suppress(*CLIENT_ERRORS),
            smtplib.SMTP("127.0.0.1", self.srv.port("smtp"), timeout=30) as s,
        ):
            while not stop.is_set():
                mid, data = message("mx", self.round, self._next("mx"), rng)
                s.sendmail("sender@crash.test", [ALICE], data)
                self.ledger.ack((ALICE, "INBOX"), mid, data, "smtp-mx")

    def _submission(self, stop: threading.Event, i: int) -> None:
        rng = random.Random(self.rng.random())
        with (
            contextlib.suppress(*CLIENT_ERRORS),
            smtplib.SMTP("127.0.0.1", self.srv.port("submission"), timeout=30) as s,
        ):
            s.starttls(context=no_verify())
            s.login(ALICE, PASSWORD)
            while not stop.is_set():
                mid, data = message("sub", self.round, self._next("sub"), rng, to=BOB,
                                    sender=ALICE)
                s.sendmail(ALICE, [BOB, CAROL], data)
                self.ledger.ack((BOB, "INBOX"), mid, data, "submission")
                with self.ledger.lock:
                    self.ledger.remote.add(mid)

    def _append(self, stop: threading.Event, i: int) -> None:
        rng = random.Random(self.rng.random())
        with contextlib.suppress(*CLIENT_ERRORS):
            imap = imaplib.IMAP4("127.0.0.1", self.srv.port("imap"), timeout=30)
            imap.login(ALICE, PASSWORD)
            while not stop.is_set():
                mid, data = message("app", self.round, self._next("app"), rng)
                typ, resp = imap.append("Archive", None, None, data)
                if typ != "OK":
                    continue
                m = re.search(rb"APPENDUID \d+ (\d+)", resp[0] or b"")
                self.ledger.ack((ALICE, "Archive"), mid, data, "imap-append")
                if m:
                    with self.ledger.lock:
                        self.ledger.appenduid[mid] = int(m.group(1))

    def _expunge(self, stop: threading.Event, i: int) -> None:
        rng = random.Random(self.rng.random())
        try:
            imap = imaplib.IMAP4("127.0.0.1", self.srv.port("imap"), timeout=30)
            imap.login(ALICE, PASSWORD)
            imap.select("Archive")
            while not stop.is_set():
                with self.ledger.lock:
                    candidates = [(m, u) for m, u in self.ledger.appenduid.items()
                                  if m not in self.ledger.maybe_removed]  # fmt: skip
                if not candidates:
                    time.sleep(0.05)
                    continue
                mid, uid = rng.choice(candidates)
                with self.ledger.lock:
                    self.ledger.maybe_removed.add(mid)  # intent first
                imap.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
                typ, _ = imap.uid("EXPUNGE", str(uid))
                if typ == "OK":
                    with self.ledger.lock:
                        self.ledger.removed.add(mid)
                        self.ledger.counts["imap-expunge"] += 1
                time.sleep(0.05)
        except CLIENT_ERRORS as e:
            self.errors.append(f"expunge: {e!r}")

    def _pop3_dele(self, stop: threading.Event, i: int) -> None:
        while not stop.is_set():
            try:
                pop = poplib.POP3("127.0.0.1", self.srv.port("pop3"), timeout=30)
            except CLIENT_ERRORS:
                return
            try:
                pop.user(BOB)
                try:
                    pop.pass_(PASSWORD)
                except poplib.error_proto as e:
                    if b"IN-USE" in str(e).encode():
                        # the lock of a session killed with the server lasts its TTL
                        self.stats.pop3_locked_out += 1
                    return
                count = pop.stat()[0]
                doomed = []
                for n in range(1, min(count, 3) + 1):
                    head = b"\r\n".join(pop.top(n, 0)[1])
                    m = _MID.search(head)
                    if m:
                        doomed.append(m.group(1).decode())
                        pop.dele(n)
                with self.ledger.lock:
                    self.ledger.maybe_removed.update(doomed)  # intent first
                pop.quit()  # the deletions happen in the UPDATE state (RFC 1939 6)
                with self.ledger.lock:
                    self.ledger.removed.update(doomed)
                    self.ledger.counts["pop3-dele"] += len(doomed)
            except CLIENT_ERRORS:
                return
            time.sleep(0.3)
