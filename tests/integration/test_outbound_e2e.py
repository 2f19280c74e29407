"""Outbound delivery end to end: two Mailwright instances and a DNS server on loopback.

Instance A serves sender.test, instance B serves recipient.test and backup.test. The test DNS
server publishes their MX records (and a dead, a null-MX and a two-MX domain); A's
``[outbound] port`` is B's MX port, so "the Internet" is 127.0.0.1 (B) and 127.0.0.2 (nobody).
alice@sender.test submits to A with smtplib over implicit TLS + AUTH; the tests then look into the
stores (read-only) and run the operator's ``queue`` commands.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support.dnsserver import DNSServer
from tests.support.server import (
    PASSWORD,
    MailwrightServer,
    find,
    free_port_base,
    serving,
    wait_for,
)

pytestmark = pytest.mark.slow


World = tuple[MailwrightServer, MailwrightServer]


def instance(root: Path, domain: str, dns: DNSServer) -> MailwrightServer:
    """One `mailwright init` directory resolving through ``dns``. Its protocol ports stay below
    the ephemeral range (they are unbound while the other instance connects out) and are free
    on 127.0.0.2 too, the dead MX address."""
    server = MailwrightServer(root / domain, domain,
                              port_base=free_port_base(extra_hosts=("127.0.0.2",), below=31700))
    server.use_dns(dns.config_value)
    return server


def configure(server: MailwrightServer, outbound_port: int, *, max_age: str = "4s") -> None:
    server.set_outbound(port=outbound_port, retry_schedule=("1s",), max_age=max_age)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("outbound")
    with DNSServer() as dns:
        a = instance(root, "sender.test", dns)
        b = instance(root, "recipient.test", dns)
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
        configure(a, b.port("smtp"))
        configure(b, a.port("smtp"))
        a.add_user("alice@sender.test")
        b.add_user("bob@recipient.test")
        b.cli("domain", "add", "backup.test")
        b.add_user("carol@backup.test")
        with serving(a, b):
            yield a, b


def submit(a: MailwrightServer, to: str, subject: str, body: str = "Hello from alice.\n") -> None:
    msg = EmailMessage()
    msg["From"] = "alice@sender.test"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Implicit TLS (submissions, RFC 8314): these tests are about the outbound path.
    with smtplib.SMTP_SSL("127.0.0.1", a.port("submissions"), timeout=30, context=ctx) as client:
        client.login("alice@sender.test", PASSWORD)
        client.send_message(msg, from_addr="alice@sender.test", to_addrs=[to])


def dsn_blocks(msg: EmailMessage) -> list[EmailMessage]:
    assert msg.get_content_type() == "multipart/report"
    parts = list(msg.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks: list[EmailMessage] = parts[1].get_payload()  # type: ignore[assignment]
    return blocks


def test_outbound_journey_alice_to_bob(world: World) -> None:
    a, b = world
    submit(a, "bob@recipient.test", "lunch at noon")
    msg = wait_for("the message in bob's INBOX on B",
                   lambda: find(b.messages("bob@recipient.test"), "lunch at noon"))
    assert isinstance(msg, EmailMessage)
    assert msg["From"] == "alice@sender.test"
    assert "Hello from alice." in msg.get_body().get_content()  # type: ignore[union-attr]
    received = msg.get_all("Received") or []
    assert len(received) >= 2, received  # A's submission hop and B's MX hop
    wait_for("A's queue to empty", lambda: "0 entries" in a.cli("queue", "list"))


def test_outbound_secondary_mx_when_primary_refuses(world: World) -> None:
    a, b = world
    submit(a, "carol@backup.test", "via the backup MX")
    wait_for("the message in carol's INBOX",
             lambda: find(b.messages("carol@backup.test"), "via the backup MX"))


def test_outbound_unknown_remote_user_bounces(world: World) -> None:
    a, _ = world
    submit(a, "nobody@recipient.test", "to a ghost")
    dsn = wait_for("a DSN in alice's INBOX",
                   lambda: find(a.messages("alice@sender.test"), "nobody@recipient.test"))
    assert isinstance(dsn, EmailMessage)
    block = dsn_blocks(dsn)[1]
    assert block["Final-Recipient"] == "rfc822; nobody@recipient.test"
    assert block["Action"] == "failed"
    assert str(block["Status"]).startswith("5.")
    assert str(block["Diagnostic-Code"]).startswith("smtp; 5")
    assert "to a ghost" in dsn.as_string()  # the original headers are attached


def test_outbound_null_mx_bounces_at_once(world: World) -> None:
    a, _ = world
    submit(a, "someone@nullmx.test", "to a null MX")
    dsn = wait_for("a null MX DSN", lambda: find(a.messages("alice@sender.test"),
                                                 "someone@nullmx.test"))
    assert isinstance(dsn, EmailMessage)
    assert dsn_blocks(dsn)[1]["Status"] == "5.1.10"


def test_outbound_dead_mx_retries_then_bounces(world: World) -> None:
    a, _ = world
    submit(a, "x@dead.test", "into the void")
    line = wait_for(
        "a queued entry with a connection error and a retry",
        lambda: next((ln for ln in a.cli("queue", "list").splitlines()
                      if "domain=dead.test" in ln and "attempts=0" not in ln
                      and "last_error" in ln), None))
    assert "connect to mx.dead.test" in str(line)
    dsn = wait_for("the bounce after max_age",
                   lambda: find(a.messages("alice@sender.test"), "x@dead.test"))
    assert isinstance(dsn, EmailMessage)
    block = dsn_blocks(dsn)[1]
    assert block["Action"] == "failed" and block["Status"] == "4.4.7"
    assert "connect to mx.dead.test" in str(block["Diagnostic-Code"])


def test_outbound_remote_down_and_sender_killed(tmp_path: Path) -> None:
    """The remote instance is down: mail waits in the queue with its error. The sender is then
    killed (SIGKILL) and restarted, the remote comes up: everything arrives, nothing twice."""
    with DNSServer() as dns:
        a = instance(tmp_path, "sender.test", dns)
        b = instance(tmp_path, "far.test", dns)
        dns.add("far.test", "MX", "10 mail.far.test.")
        dns.add("mail.far.test", "A", "127.0.0.1")
        configure(a, b.port("smtp"), max_age="10m")
        configure(b, a.port("smtp"))
        a.add_user("alice@sender.test")
        b.add_user("bob@far.test")
        subjects = [f"while you were down {i}" for i in range(8)]
        try:
            a.start()
            for subject in subjects:
                submit(a, "bob@far.test", subject)

            def waiting() -> list[str]:
                lines = [ln for ln in a.cli("queue", "list").splitlines()
                         if "domain=far.test" in ln and "attempts=0" not in ln]
                return lines if len(lines) == len(subjects) else []

            lines = wait_for("every message queued with a connection error", waiting)
            assert all("connect to mail.far.test" in ln for ln in lines)
            assert a.proc is not None
            a.kill()
            b.start()
            a.start()

            def arrived() -> list[str]:
                got = [str(m["Subject"]) for m in b.messages("bob@far.test")]
                done = len(got) >= len(subjects) and "0 entries" in a.cli("queue", "list")
                return got if done else []

            got = wait_for("every message in bob's INBOX and an empty queue", arrived)
        finally:
            a.stop()
            b.stop()
    assert sorted(got) == sorted(subjects)  # all of them, none twice
