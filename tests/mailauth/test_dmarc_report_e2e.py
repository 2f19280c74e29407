"""DMARC aggregate reports across two instances: recorded at A's MX, sent through A's queue,
received and parsed at B's report address, shown by `mailwright dmarc reports`.

brand.test publishes p=quarantine with rua to B's report address (an external destination for
brand.test, which B's domain allows under RFC 7489 7.1) and to elsewhere.test (which does not
allow it, so it must get nothing).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.mailauth.test_e2e_instances import instance, publish
from tests.support.dnsserver import DNSServer
from tests.support.server import MailwrightServer, find, serving, wait_for

pytestmark = pytest.mark.slow

World = tuple[MailwrightServer, MailwrightServer, DNSServer]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("dmarc-e2e")
    with DNSServer() as dns_server:
        a = instance(root, "reporter.test", dns_server)
        b = instance(root, "recipient.test", dns_server)
        a.set_outbound(port=b.port("smtp"))
        b.set_outbound(port=a.port("smtp"))
        a.cli("dkim", "generate", "reporter.test")
        publish(dns_server, a.cli("dns-records", "reporter.test"))
        publish(dns_server, b.cli("dns-records", "recipient.test"))
        for host in ("mail.reporter.test", "mail.recipient.test"):
            dns_server.add(host, "A", "127.0.0.1")
        b.edit_config("[server]", '[dmarc]\nreport_address = "dmarc@recipient.test"\n\n[server]')
        dns_server.add("brand.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
        dns_server.add("_dmarc.brand.test", "TXT", "v=DMARC1; p=quarantine; "
                       "rua=mailto:dmarc@recipient.test,mailto:dmarc@elsewhere.test")
        dns_server.add("brand.test._report._dmarc.recipient.test", "TXT", "v=DMARC1")
        dns_server.add("elsewhere.test", "MX", "10 mail.recipient.test.")
        dns_server.add("attacker.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
        a.add_user("alice@reporter.test")
        b.add_user("bob@recipient.test")
        with serving(a, b):
            yield a, b, dns_server


def send(server: MailwrightServer, mail_from: str, author: str, subject: str) -> None:
    raw = (f"From: {author}\r\nTo: alice@reporter.test\r\nSubject: {subject}\r\n\r\n"
           f"{subject}\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), local_hostname="mail.brand.test",
                      timeout=30) as client:
        client.sendmail(mail_from, ["alice@reporter.test"], raw.encode())


def test_aggregate_report_recorded_sent_through_queue_received_and_shown(
    world: World, tmp_path: Path
) -> None:
    a, b, _ = world
    send(a, "news@brand.test", "news@brand.test", "aligned one")
    send(a, "news@brand.test", "news@brand.test", "aligned two")
    send(a, "eve@attacker.test", "ceo@brand.test", "spoofed")  # DMARC fails: quarantined
    wait_for("the spoofed message in Junk",
             lambda: find(a.messages("alice@reporter.test", "Junk"), "spoofed"))
    assert a.cli("dmarc", "send").strip() == "no reports due"  # today is not over yet
    tomorrow = time.time() + 86400
    out = a.cli("dmarc", "send", "--now", str(tomorrow))
    assert "queued brand.test." in out and "3 messages to dmarc@recipient.test" in out
    assert "elsewhere.test" not in out  # RFC 7489 7.1: never agreed to take them
    assert a.cli("dmarc", "send", "--now", str(tomorrow)).strip() == "no reports due"

    listing = wait_for("the report stored at B", lambda: (
        lambda text: text if "brand.test" in text else None)(b.cli("dmarc", "reports")))
    assert isinstance(listing, str)
    line = next(ln for ln in listing.splitlines() if "brand.test" in ln)
    assert a.hostname in line
    fields = line.split()
    assert fields[-2:] == ["3", "2"]  # messages, passed
    report_no = fields[0]
    shown = b.cli("dmarc", "show", report_no)
    assert "127.0.0.1" in shown and "count 2" in shown and "count 1" in shown
    assert "quarantine" in shown and "dkim=fail spf=pass" in shown and "spf=fail" in shown
    # One report per policy domain and period.
    assert len([ln for ln in b.cli("dmarc", "reports").splitlines() if "brand.test" in ln]) == 1


def test_import_a_report_file(world: World, tmp_path: Path) -> None:
    _, b, _ = world
    from tests.mailauth.test_dmarc_report import SAMPLE

    path = tmp_path / "google.com!forwarder.test!1796083200!1796169599.xml"
    path.write_bytes(SAMPLE)
    assert "stored report 12345678901234567890" in b.cli("dmarc", "import", str(path))
    assert "already stored" in b.cli("dmarc", "import", str(path))
    assert "google.com" in b.cli("dmarc", "reports", "--domain", "forwarder.test")
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<nope/>")
    b.cli("dmarc", "import", str(bad), expect=1)
