"""Two Mailwright instances and a DNS server on loopback: DKIM/SPF/DMARC across the wire.

A serves sender.test and signs what alice submits; B serves recipient.test and verifies at its
MX. The DNS zone is what `mailwright dns-records` printed for each domain, parsed back with
dnspython and served by the test DNS server, so the operator's output is what makes mail pass.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from tests.support.dnsserver import DNSServer
from tests.support.server import PASSWORD, MailwrightServer, find, serving, wait_for

pytestmark = pytest.mark.slow

World = tuple[MailwrightServer, MailwrightServer]


def instance(root: Path, domain: str, dns_server: DNSServer) -> MailwrightServer:
    server = MailwrightServer(root / domain, domain)
    server.use_dns(dns_server.config_value)
    server.set_outbound(retry_schedule=("1s",))
    return server


def publish(dns_server: DNSServer, zone_text: str) -> None:
    """Serve what `mailwright dns-records` printed."""
    zone = dns.zone.from_text(zone_text, origin=".", relativize=False, check_origin=False)
    for name, node in zone.nodes.items():
        for rdataset in node:
            rdtype = dns.rdatatype.to_text(rdataset.rdtype)
            for rdata in rdataset:
                if rdtype == "TXT":
                    dns_server.add(str(name), "TXT", b"".join(rdata.strings).decode())
                else:
                    dns_server.add(str(name), rdtype, rdata.to_text())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("mailauth-e2e")
    with DNSServer() as dns_server:
        a = instance(root, "sender.test", dns_server)
        b = instance(root, "recipient.test", dns_server)
        a.set_outbound(port=b.port("smtp"))
        b.set_outbound(port=a.port("smtp"))
        a.cli("dkim", "generate", "sender.test")
        a.cli("dkim", "generate", "sender.test", "--algorithm", "ed25519")
        publish(dns_server, a.cli("dns-records", "sender.test"))
        publish(dns_server, b.cli("dns-records", "recipient.test"))
        for host in ("mail.sender.test", "mail.recipient.test"):
            dns_server.add(host, "A", "127.0.0.1")
        # Other senders, reaching B's MX straight from 127.0.0.1.
        dns_server.add("attacker.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
        dns_server.add("quarantined.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
        dns_server.add("_dmarc.quarantined.test", "TXT", "v=DMARC1; p=quarantine")
        a.add_user("alice@sender.test")
        b.add_user("bob@recipient.test")
        with serving(a, b):
            yield a, b


def results(msg: EmailMessage, authserv_id: str) -> str:
    ours = [str(v) for v in msg.get_all("Authentication-Results") or []
            if str(v).strip().lower().startswith(authserv_id)]
    assert len(ours) == 1, msg.get_all("Authentication-Results")
    return " ".join(ours[0].split())


def to_mx(b: MailwrightServer, mail_from: str, raw: str) -> None:
    with smtplib.SMTP("127.0.0.1", b.port("smtp"), local_hostname="client.attacker.test",
                      timeout=30) as client:
        client.sendmail(mail_from, ["bob@recipient.test"], raw.encode())


def test_e2e_signed_submission_passes_at_the_other_instance(
    world: World,
) -> None:
    a, b = world
    msg = EmailMessage()
    msg["From"] = "alice@sender.test"
    msg["To"] = "bob@recipient.test"
    msg["Subject"] = "signed across the wire"
    msg.set_content("Hello Bob, this is DKIM-signed.\n")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", a.port("submission"), timeout=30) as client:
        client.starttls(context=ctx)
        client.login("alice@sender.test", PASSWORD)
        client.send_message(msg)
    got = wait_for("the message in bob's INBOX",
                   lambda: find(b.messages("bob@recipient.test"), "signed across"))
    assert isinstance(got, EmailMessage)
    text = results(got, b.hostname)
    assert "spf=pass" in text
    assert "dkim=pass" in text and "header.a=rsa-sha256" in text
    assert "header.a=ed25519-sha256" in text
    assert "dmarc=pass" in text and "header.from=sender.test" in text


def test_e2e_forged_from_of_reject_domain_is_refused(world: World) -> None:
    _, b = world
    raw = ("From: alice@sender.test\r\nTo: bob@recipient.test\r\nSubject: forged\r\n\r\n"
           "Send me your password.\r\n")
    with pytest.raises(smtplib.SMTPDataError) as caught:
        to_mx(b, "eve@attacker.test", raw)
    assert caught.value.smtp_code == 550
    assert caught.value.smtp_error.startswith(b"5.7.1")
    assert find(b.messages("bob@recipient.test"), "Send me your password") is None


def test_e2e_quarantine_lands_in_junk(world: World) -> None:
    _, b = world
    raw = ("From: boss@quarantined.test\r\nTo: bob@recipient.test\r\n"
           "Subject: quarantine me\r\n\r\nUrgent wire transfer.\r\n")
    to_mx(b, "eve@attacker.test", raw)
    got = wait_for("the message in bob's Junk",
                   lambda: find(b.messages("bob@recipient.test", "Junk"), "quarantine me"))
    assert isinstance(got, EmailMessage)
    assert "dmarc=fail" in results(got, b.hostname)
    assert find(b.messages("bob@recipient.test"), "quarantine me") is None


def test_e2e_forged_authentication_results_removed(world: World) -> None:
    _, b = world
    raw = (f"Authentication-Results: {b.hostname}; dkim=pass header.d=bank.test\r\n"
           "From: eve@attacker.test\r\nTo: bob@recipient.test\r\n"
           "Subject: trust me\r\n\r\nI am your bank.\r\n")
    to_mx(b, "eve@attacker.test", raw)
    got = wait_for("the message in bob's INBOX",
                   lambda: find(b.messages("bob@recipient.test"), "trust me"))
    assert isinstance(got, EmailMessage)
    text = results(got, b.hostname)
    assert "bank.test" not in text and "dkim=none" in text and "spf=pass" in text
