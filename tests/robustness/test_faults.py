"""Faults at the protocol level (issue 10, item 2), with real servers and real clients.

* Disk full (a small tmpfs data directory; needs root to mount, skipped otherwise): SMTP
  answers 452 4.3.1, IMAP APPEND a clear NO, POP3 keeps serving what is stored, nothing stored
  is damaged, and service comes back as soon as space does, without a restart.
* A DNS server that never answers, or answers garbage: submission still accepts (the queue
  owns the problem), the queue records temporary failures and retries, inbound mail is
  answered without a crash, and everything is delivered once DNS is healthy again.
* A remote MX that stalls in the middle of DATA, or after the final dot: the attempt times
  out, the entry stays queued as a temporary failure, and the retry delivers it once.
  (tests/queue/test_smtp.py covers a silent greeting and a dropped connection; these are the
  mid-transfer cases.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import imaplib
import os
import poplib
import shutil
import smtplib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from mailwright.accounts.directory import Directory
from mailwright.cli.common import opened_store
from mailwright.config import load_config
from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.local import LocalDelivery
from mailwright.dns.resolver import Resolver
from mailwright.queue.service import Outbound, QueueSettings
from mailwright.queue.smtp import OutboundClient, Timeouts
from mailwright.store.api import QueueEntry
from mailwright.store.sqlite import SQLiteStore
from tests.support.dnsserver import Behaviour, DNSServer
from tests.support.server import PASSWORD, MailwrightServer

from .mixedload import _Sink, strip_trace
from .netclients import no_verify
from .test_disk_full import small_fs

pytestmark = pytest.mark.slow

ALICE = "alice@example.test"


def wait_for(what: str, cond: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def queue_entries(srv: MailwrightServer) -> list[QueueEntry]:
    async def read() -> list[QueueEntry]:
        async with opened_store(load_config(srv.cfg)) as store:
            return await store.queue_list()

    return asyncio.run(read())


# -- disk full ------------------------------------------------------------------------------


def _message(i: int) -> bytes:
    body = "".join(f"line {j} of message {i} {os.urandom(8).hex()}\r\n" for j in range(900))
    return (f"From: <x@remote.test>\r\nTo: <{ALICE}>\r\nSubject: fill {i}\r\n"
            f"Message-ID: <fill.{i}@remote.test>\r\n\r\n{body}").encode()  # fmt: skip


def test_faults_disk_full_over_smtp_imap_pop3(tmp_path: Path) -> None:
    srv = MailwrightServer(tmp_path / "mw")
    with small_fs(tmp_path / "small", "24m") as small:
        shutil.copytree(srv.dir / "data", small / "data")
        srv.edit_config('data_dir = "data"', f'data_dir = "{small / "data"}"')
        srv.edit_config('dsn = ""', 'dsn = ""\nmin_free = "4M"')
        with srv.cfg.open("a") as f:
            f.write("\n[mailauth]\nverify = false\n")
        srv.add_user(ALICE)
        # another process has eaten most of the disk: about 9 MB are left above the reserve
        st = os.statvfs(small)
        with open(small / "ballast", "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 13 * 1024 * 1024))
        srv.start()
        try:
            acked: list[bytes] = []
            refusal: tuple[int, bytes | str] | None = None
            with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as s:
                for i in range(400):
                    data = _message(i)
                    try:
                        s.sendmail("x@remote.test", [ALICE], data)
                    except smtplib.SMTPSenderRefused as e:
                        refusal = (e.smtp_code, e.smtp_error)
                        break
                    except smtplib.SMTPDataError as e:
                        refusal = (e.smtp_code, e.smtp_error)
                        break
                    acked.append(data)
            assert refusal is not None, "the disk never filled"
            code, text = refusal
            assert code == 452, refusal
            assert (text if isinstance(text, bytes) else text.encode()).startswith(b"4.3.1"), (
                refusal
            )
            assert acked

            imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=60)
            imap.login(ALICE, PASSWORD)
            typ, resp = imap.append("INBOX", None, None, _message(1000))
            assert typ == "NO", (typ, resp)
            assert b"LIMIT" in resp[0] or b"OVERQUOTA" in resp[0] or b"full" in resp[0], (
                resp,
                "".join(srv.stderr[-30:]),
            )
            # reading still works over IMAP and POP3
            typ, count = imap.select("INBOX")
            assert typ == "OK" and int(count[0] or 0) == len(acked)
            imap.logout()
            pop = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=60)
            pop.user(ALICE)
            pop.pass_(PASSWORD)
            assert pop.stat()[0] == len(acked)
            lines = pop.retr(1)[1]
            assert strip_trace(b"\r\n".join(lines) + b"\r\n") == acked[0]
            pop.quit()
            # nothing stored is damaged
            stored = [strip_trace(m) for m in srv.mailbox(ALICE)]
            assert stored == acked

            # space returns: service resumes without a restart
            (small / "ballast").unlink()
            with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as s:
                assert s.sendmail("x@remote.test", [ALICE], _message(2000)) == {}
            imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=60)
            imap.login(ALICE, PASSWORD)
            typ, resp = imap.append("INBOX", None, None, _message(2001))
            assert typ == "OK", resp
            imap.logout()
        finally:
            srv.stop()
        srv.cli("check")
        assert len(srv.mailbox(ALICE)) == len(acked) + 2


# -- DNS that times out or answers garbage -------------------------------------------------


def test_faults_dns_timeouts_and_garbage_are_temporary(tmp_path: Path) -> None:
    dns = DNSServer().start()
    sink = _Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        sink_port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    controller.start()
    srv = MailwrightServer(tmp_path / "mw")
    try:
        for domain, behaviour in (
            ("slow.test", Behaviour.TIMEOUT),
            ("junk.test", Behaviour.GARBAGE),
        ):
            dns.set_behaviour(domain, behaviour)
            dns.set_behaviour(f"_dmarc.{domain}", behaviour)
        srv.edit_config("nameservers = []", f'nameservers = ["{dns.config_value}"]\ntimeout = "1s"')
        srv.edit_config("port = 25\n", f"port = {sink_port}\n")
        srv.edit_config('retry_schedule = ["1m",', 'retry_schedule = ["1s", "2s",')
        srv.add_user(ALICE)
        srv.start()
        # Outbound: accepted, then temporary failures in the queue.
        with smtplib.SMTP("127.0.0.1", srv.port("submission"), timeout=60) as s:
            s.starttls(context=no_verify())
            s.login(ALICE, PASSWORD)
            for rcpt in ("bob@slow.test", "bob@junk.test"):
                msg = f"From: <{ALICE}>\r\nTo: <{rcpt}>\r\nMessage-ID: <{rcpt}>\r\n\r\nhi\r\n"
                assert s.sendmail(ALICE, [rcpt], msg.encode()) == {}

        def attempted() -> bool:
            entries = queue_entries(srv)
            return len(entries) == 2 and all(e.attempts >= 1 for e in entries)

        wait_for("two failed attempts", attempted)
        for e in queue_entries(srv):
            assert e.last_error, e
            assert all(r.status in ("scheduled", "tempfail") for r in e.recipients), e
        # Inbound from domains whose SPF/DKIM/DMARC lookups time out or are garbage: an
        # answer (accepted with a temperror, or a 4xx), never a crash or a 5xx.
        for sender in ("a@slow.test", "a@junk.test"):
            with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=120) as s:
                s.ehlo("mx.slow.test")
                code, _ = s.mail(sender)
                if code == 250:
                    assert s.rcpt(ALICE)[0] == 250
                    code, _ = s.data(f"From: <{sender}>\r\nSubject: in\r\n\r\nhello\r\n".encode())
                assert code == 250 or 400 <= code < 500, code
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as s:
            assert s.noop()[0] == 250  # still serving
        # DNS heals: the retries deliver everything.
        for domain in ("slow.test", "junk.test"):
            dns.clear_behaviour(domain)
            dns.clear_behaviour(f"_dmarc.{domain}")
            dns.add(domain, "MX", "10 mx.remote.test.")
        dns.add("mx.remote.test", "A", "127.0.0.1")
        wait_for("delivery after DNS healed", lambda: len(sink.mids()) == 2, timeout=90)
        wait_for("the queue empties", lambda: not queue_entries(srv))
    finally:
        srv.stop()
        controller.stop()
        dns.stop()
    assert "Traceback" not in "".join(srv.stderr), "".join(srv.stderr)[-3000:]


# -- a remote MX that stalls mid-transfer ---------------------------------------------------


class StallingMX:
    """Scripted remote MX: stalls the first connections (mid-DATA or after the dot)."""

    def __init__(self, stalls: list[str]) -> None:
        self.stalls = list(stalls)  # one mode per connection: "mid-data", "after-dot"
        self.received: list[bytes] = []
        self.stalled: list[str] = []  # the stalls the remote really reached, in order
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.stalls.pop(0) if self.stalls else "healthy"
        try:
            writer.write(b"220 mx.dest.test ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-mx.dest.test\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    if mode == "mid-data":
                        self.stalled.append(mode)
                        await reader.read(64 * 1024)
                        await asyncio.sleep(3600)  # stop reading: the sender's writes block
                    data = bytearray()
                    while (chunk := await reader.readline()) != b".\r\n":
                        if not chunk:
                            return
                        data += chunk
                    if mode == "after-dot":
                        self.stalled.append(mode)
                        await asyncio.sleep(3600)  # never answer the end of data
                    self.received.append(bytes(data))
                    writer.write(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()


async def test_faults_remote_mx_stalls_mid_transfer_then_retry_delivers_once(
    tmp_path: Path,
) -> None:
    mx = StallingMX(["mid-data", "after-dot"])
    await mx.start()
    store = SQLiteStore(tmp_path / "data")
    await store.open()
    dns = DNSServer().start()
    try:
        await store.add_domain("sender.test")
        await store.add_account("alice@sender.test", "x")
        dns.set("dest.test", "MX", "10 mx.dest.test.")
        dns.set("mx.dest.test", "A", "127.0.0.1")
        # The stalls are unambiguous: the remote stops reading, or withholds the final reply,
        # for an hour. Each attempt gets a short timeout only for the step that stalls, started
        # once the remote has stopped (the 354 to DATA, or the final dot fully written), and
        # generous ones everywhere else: a short timeout on a step that merely runs slowly on a
        # loaded machine would race the machine (and, after the dot, send the message twice).
        generous = Timeouts(connect=120, greeting=120, command=120, data_init=120,
                            data_block=120, data_end=120, quit=10)  # fmt: skip
        timeouts_for = {
            "mid-data": dataclasses.replace(generous, data_block=0.5),
            "after-dot": dataclasses.replace(generous, data_end=0.5),
            "healthy": generous,
        }
        client = OutboundClient(Resolver(dns.nameservers, timeout=5, lifetime=30),
                                "mail.sender.test", port=mx.port,
                                timeouts=timeouts_for["mid-data"])  # fmt: skip
        settings = QueueSettings(retry_schedule=(0.2,), max_age=3600, delay_warning=3600,
                                 poll_interval=0.05)  # fmt: skip
        out = Outbound(store, client, hostname="mail.sender.test", owner="node-a",
                       settings=settings, local=LocalDelivery(store, Directory(store)))  # fmt: skip
        # large enough that the loopback socket buffers cannot swallow it whole
        body = b"".join(b"%08d %s\r\n" % (i, b"x" * 90) for i in range(160_000))
        blob = await stage_bytes(
            store, b"Subject: big\r\nMessage-ID: <big@sender.test>\r\n\r\n" + body
        )
        await out.enqueue(blob, "alice@sender.test", ["bob@dest.test"])

        async def attempt_until(attempts: int) -> QueueEntry | None:
            """Run the queue until the entry has had ``attempts`` attempts (retries are due
            0.2 s after a failure); a hard bound far beyond any machine's slowness."""
            deadline = time.monotonic() + 120
            while True:
                await out.run_once()
                entries = await store.queue_list()
                if not entries or entries[0].attempts >= attempts:
                    return entries[0] if entries else None
                assert time.monotonic() < deadline, f"no attempt {attempts}: {entries}"
                await asyncio.sleep(0.05)

        for attempt, stall in ((1, "mid-data"), (2, "after-dot")):
            client.timeouts = timeouts_for[stall]
            entry = await attempt_until(attempt)
            assert entry is not None, "delivered through a stalled remote"
            assert entry.attempts == attempt, entry
            assert entry.last_error, entry
            assert not mx.received
            # the attempt failed at the stall itself, not earlier: the remote reached it
            deadline = time.monotonic() + 120
            while len(mx.stalled) < attempt:
                assert time.monotonic() < deadline, f"the remote never reached {stall}"
                await asyncio.sleep(0.05)
            assert mx.stalled[attempt - 1] == stall, mx.stalled
        client.timeouts = timeouts_for["healthy"]  # the remote is healthy now
        deadline = time.monotonic() + 300
        while await store.queue_list():
            assert time.monotonic() < deadline, await store.queue_list()
            await out.run_once()
            await asyncio.sleep(0.05)
        assert mx.stalled == ["mid-data", "after-dot"]
        assert len(mx.received) == 1
        assert mx.received[0].endswith(body)
    finally:
        dns.stop()
        await store.close()
        assert mx.server is not None
        mx.server.close()
