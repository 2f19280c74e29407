"""Outbound delivery end to end: two Mailwright instances and a DNS server on loopback.

Instance A serves sender.test, instance B serves recipient.test and backup.test. The test DNS
server publishes their MX records (and a dead, a null-MX and a two-MX domain); A's
``[outbound] port`` is B's MX port, so "the Internet" is 127.0.0.1 (B) and 127.0.0.2 (nobody).
alice@sender.test submits to A with smtplib over implicit TLS + AUTH; the tests then look into the
stores (read-only) and run the operator's ``queue`` commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import importlib.util
import io
import os
import random
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailwright.cli.common import opened_store
from mailwright.cli.main import main
from mailwright.config import load_config
from tests.support.dnsserver import DNSServer

pytestmark = pytest.mark.slow
needs_smtpd = pytest.mark.skipif(
    importlib.util.find_spec("mailwright.smtpd.listener") is None,
    reason="needs the SMTP server (mailwright.smtpd.listener, issue 3), not built yet",
)

PASSWORD = "correct horse battery staple"
OFFSETS = (25, 587, 465, 143, 993, 110, 995)
DEADLINE = 40.0


_TAKEN: list[int] = []


def free_port_base() -> int:
    # Below Linux's ephemeral range (32768+), so no outgoing connection can take one of them
    # between this check and the bind; bases of one test run never overlap.
    for _ in range(500):
        base = random.randrange(20000, 31700, 10)
        if any(abs(base - other) < 1000 for other in _TAKEN):
            continue
        try:
            for off in OFFSETS:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + off))
                with socket.socket() as s:  # the dead MX address must be free too
                    s.bind(("127.0.0.2", base + off))
        except OSError:
            continue
        _TAKEN.append(base)
        return base
    raise RuntimeError("no free port range")


class Instance:
    """One `mailwright init` directory and its `serve` process."""

    def __init__(self, root: Path, domain: str, dns: DNSServer) -> None:
        self.domain = domain
        self.base = free_port_base()
        self.dir = root / domain
        self.cfg = self.dir / "mailwright.toml"
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        self.mailwright("init", str(self.dir), "--domain", domain,
                        "--port-base", str(self.base), config=False)
        self.dns = dns

    @property
    def smtp_port(self) -> int:
        return self.base + 25

    @property
    def submissions_port(self) -> int:
        return self.base + 465

    def configure(self, outbound_port: int, *, max_age: str = "4s") -> None:
        text = self.cfg.read_text()
        text = text.replace("nameservers = []", f'nameservers = ["{self.dns.config_value}"]')
        text = text.replace("\nport = 25\n", f"\nport = {outbound_port}\n")
        text = text.replace('retry_schedule = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]',
                            'retry_schedule = ["1s"]')
        text = text.replace('max_age = "5d"', f'max_age = "{max_age}"')
        self.cfg.write_text(text)

    def mailwright(self, *args: str, stdin: str | None = None, config: bool = True) -> str:
        """Run an operator command in-process (no interpreter start-up); its standard output."""
        argv = [*args, "-c", str(self.cfg)] if config else list(args)
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            sys.stdin = saved
        assert code == 0, (argv, out.getvalue(), err.getvalue())
        return out.getvalue()

    def add_user(self, address: str) -> None:
        self.mailwright("user", "add", address, "--password-stdin", stdin=PASSWORD + "\n")

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailwright", "serve", "-c", str(self.cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        ready = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line)
                if "ready" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(30)
        if self.proc.poll() is not None or not any("ready" in line for line in self.stderr):
            raise RuntimeError(f"{self.domain} did not start:\n{''.join(self.stderr)}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def inbox(self, address: str) -> list[EmailMessage]:
        async def read() -> list[EmailMessage]:
            async with opened_store(load_config(self.cfg)) as store:
                account = await store.find_account(address)
                assert account is not None
                box = await store.get_mailbox(account.id, "INBOX")
                assert box is not None
                out: list[EmailMessage] = []
                for rec in await store.list_messages(box.id):
                    raw = await store.read_blob(rec.blob_id)
                    msg = email.message_from_bytes(raw, policy=email.policy.default)
                    assert isinstance(msg, EmailMessage)
                    out.append(msg)
                return out

        return asyncio.run(read())


def wait_for(what: str, check: Callable[[], object]) -> object:
    """Poll until ``check()`` is truthy; fail with ``what`` after a generous deadline."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Instance]]:
    root = tmp_path_factory.mktemp("outbound")
    with DNSServer() as dns:
        a = Instance(root, "sender.test", dns)
        b = Instance(root, "recipient.test", dns)
        dns.add("sender.test", "MX", "10 mail.sender.test.")
        dns.add("mail.sender.test", "A", "127.0.0.1")
        dns.add("recipient.test", "MX", "10 mail.recipient.test.")
        dns.add("mail.recipient.test", "A", "127.0.0.1")
        # backup.test: the primary MX refuses connections, the secondary is B.
        dns.add("backup.test", "MX", "10 mx1.backup.test.", "20 mx2.backup.test.")
        dns.add("mx1.backup.test", "A", "127.0.0.2")
        dns.add("mx2.backup.test", "A", "127.0.0.1")
        dns.add("dead.test", "MX", "10 mx.dead.test.")
        dns.add("mx.dead.test", "A", "127.0.0.2")
        dns.add("nullmx.test", "MX", "0 .")
        a.configure(b.smtp_port)
        b.configure(a.smtp_port)
        a.add_user("alice@sender.test")
        b.add_user("bob@recipient.test")
        b.mailwright("domain", "add", "backup.test")
        b.add_user("carol@backup.test")
        try:
            a.start()
            b.start()
            yield a, b
        finally:
            a.stop()
            b.stop()


def submit(a: Instance, to: str, subject: str, body: str = "Hello from alice.\n") -> None:
    msg = EmailMessage()
    msg["From"] = "alice@sender.test"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Implicit TLS (submissions, RFC 8314): these tests are about the outbound path.
    with smtplib.SMTP_SSL("127.0.0.1", a.submissions_port, timeout=30, context=ctx) as client:
        client.login("alice@sender.test", PASSWORD)
        client.send_message(msg, from_addr="alice@sender.test", to_addrs=[to])


def find(messages: list[EmailMessage], needle: str) -> EmailMessage | None:
    for msg in messages:
        if needle in msg.as_string():
            return msg
    return None


def dsn_blocks(msg: EmailMessage) -> list[EmailMessage]:
    assert msg.get_content_type() == "multipart/report"
    parts = list(msg.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks: list[EmailMessage] = parts[1].get_payload()  # type: ignore[assignment]
    return blocks


@needs_smtpd
def test_outbound_journey_alice_to_bob(world: tuple[Instance, Instance]) -> None:
    a, b = world
    submit(a, "bob@recipient.test", "lunch at noon")
    msg = wait_for("the message in bob's INBOX on B",
                   lambda: find(b.inbox("bob@recipient.test"), "lunch at noon"))
    assert isinstance(msg, EmailMessage)
    assert msg["From"] == "alice@sender.test"
    assert "Hello from alice." in msg.get_body().get_content()  # type: ignore[union-attr]
    received = msg.get_all("Received") or []
    assert len(received) >= 2, received  # A's submission hop and B's MX hop
    wait_for("A's queue to empty", lambda: "0 entries" in a.mailwright("queue", "list"))


@needs_smtpd
def test_outbound_secondary_mx_when_primary_refuses(world: tuple[Instance, Instance]) -> None:
    a, b = world
    submit(a, "carol@backup.test", "via the backup MX")
    wait_for("the message in carol's INBOX",
             lambda: find(b.inbox("carol@backup.test"), "via the backup MX"))


@needs_smtpd
def test_outbound_unknown_remote_user_bounces(world: tuple[Instance, Instance]) -> None:
    a, _ = world
    submit(a, "nobody@recipient.test", "to a ghost")
    dsn = wait_for("a DSN in alice's INBOX",
                   lambda: find(a.inbox("alice@sender.test"), "nobody@recipient.test"))
    assert isinstance(dsn, EmailMessage)
    block = dsn_blocks(dsn)[1]
    assert block["Final-Recipient"] == "rfc822; nobody@recipient.test"
    assert block["Action"] == "failed"
    assert str(block["Status"]).startswith("5.")
    assert str(block["Diagnostic-Code"]).startswith("smtp; 5")
    assert "to a ghost" in dsn.as_string()  # the original headers are attached


@needs_smtpd
def test_outbound_null_mx_bounces_at_once(world: tuple[Instance, Instance]) -> None:
    a, _ = world
    submit(a, "someone@nullmx.test", "to a null MX")
    dsn = wait_for("a null MX DSN", lambda: find(a.inbox("alice@sender.test"),
                                                 "someone@nullmx.test"))
    assert isinstance(dsn, EmailMessage)
    assert dsn_blocks(dsn)[1]["Status"] == "5.1.10"


@needs_smtpd
def test_outbound_dead_mx_retries_then_bounces(world: tuple[Instance, Instance]) -> None:
    a, _ = world
    submit(a, "x@dead.test", "into the void")
    line = wait_for(
        "a queued entry with a connection error and a retry",
        lambda: next((ln for ln in a.mailwright("queue", "list").splitlines()
                      if "domain=dead.test" in ln and "attempts=0" not in ln
                      and "last_error" in ln), None))
    assert "connect to mx.dead.test" in str(line)
    dsn = wait_for("the bounce after max_age",
                   lambda: find(a.inbox("alice@sender.test"), "x@dead.test"))
    assert isinstance(dsn, EmailMessage)
    block = dsn_blocks(dsn)[1]
    assert block["Action"] == "failed" and block["Status"] == "4.4.7"
    assert "connect to mx.dead.test" in str(block["Diagnostic-Code"])


@needs_smtpd
def test_outbound_remote_down_and_sender_killed(tmp_path: Path) -> None:
    """The remote instance is down: mail waits in the queue with its error. The sender is then
    killed (SIGKILL) and restarted, the remote comes up: everything arrives, nothing twice."""
    with DNSServer() as dns:
        a = Instance(tmp_path, "sender.test", dns)
        b = Instance(tmp_path, "far.test", dns)
        dns.add("far.test", "MX", "10 mail.far.test.")
        dns.add("mail.far.test", "A", "127.0.0.1")
        a.configure(b.smtp_port, max_age="10m")
        b.configure(a.smtp_port)
        a.add_user("alice@sender.test")
        b.add_user("bob@far.test")
        subjects = [f"while you were down {i}" for i in range(8)]
        try:
            a.start()
            for subject in subjects:
                submit(a, "bob@far.test", subject)

            def waiting() -> list[str]:
                lines = [ln for ln in a.mailwright("queue", "list").splitlines()
                         if "domain=far.test" in ln and "attempts=0" not in ln]
                return lines if len(lines) == len(subjects) else []

            lines = wait_for("every message queued with a connection error", waiting)
            assert all("connect to mail.far.test" in ln for ln in lines)  # type: ignore[union-attr]
            assert a.proc is not None
            a.proc.kill()
            a.proc.wait()
            a.proc = None
            b.start()
            a.start()

            def arrived() -> list[str]:
                got = [str(m["Subject"]) for m in b.inbox("bob@far.test")]
                done = len(got) >= len(subjects) and "0 entries" in a.mailwright("queue", "list")
                return got if done else []

            got = wait_for("every message in bob's INBOX and an empty queue", arrived)
        finally:
            a.stop()
            b.stop()
    assert sorted(got) == sorted(subjects)  # type: ignore[arg-type]  # all of them, none twice
