"""TLS reports addressed to us (RFC 8460 5.3) are imported as they are delivered: through a
real ``mailwright serve`` MX over SMTP, and at local delivery on both store backends."""

from __future__ import annotations

import datetime as dt
import smtplib
import time
from pathlib import Path

from mailwright.accounts.directory import Directory
from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.local import LocalDelivery
from mailwright.store.api import Store
from mailwright.transport.tlsrpt import ResultRow, build_report, report_message
from tests.support.dnsserver import DNSServer
from tests.support.server import MailwrightServer

DAY = dt.date(2026, 12, 6)


def report_mail(to: str, report_id: str, *, policy_domain: str = "example.test",
                garbage: bool = False) -> bytes:
    rows = [ResultRow(DAY.isoformat(), policy_domain, "sts", '["version: STSv1"]', "",
                      "mx.example.test", "127.0.0.1", 41),
            ResultRow(DAY.isoformat(), policy_domain, "sts", '["version: STSv1"]',
                      "certificate-expired", "mx.example.test", "127.0.0.1", 2)]
    report = build_report(rows, organization="Reporter Inc.", contact="tls@reporter.test",
                          policy_domain=policy_domain, start=DAY, end=DAY, report_id=report_id)
    mail = report_message(report, sender="noreply@reporter.test", to=to,
                          submitter="mx.reporter.test", policy_domain=policy_domain)
    if garbage:
        # the same mail with its gzip attachment cut short (a truncated gzip stream)
        head, _, _ = mail.partition(b"Content-Transfer-Encoding: base64\r\n")
        boundary = mail.split(b'boundary="', 1)[1].split(b'"', 1)[0]
        mail = (head + b"Content-Transfer-Encoding: base64\r\n\r\nH4sIAAAAAAAAA2Jh\r\n--"
                + boundary + b"--\r\n")
    return mail


def test_tlsrpt_report_mailed_to_the_mx_is_imported(tmp_path: Path,
                                                     dns_server: DNSServer) -> None:
    srv = MailwrightServer(tmp_path / "srv")
    srv.use_dns(dns_server.config_value)
    postmaster = f"postmaster@{srv.domain}"
    srv.add_user(postmaster)
    srv.add_user(f"bob@{srv.domain}")
    with srv:
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
            s.ehlo("mx.reporter.test")
            s.sendmail("noreply@reporter.test", [postmaster], report_mail(postmaster, "r-1"))
            # malformed: accepted and delivered as mail, never stored as a report
            s.sendmail("noreply@reporter.test", [postmaster],
                       report_mail(postmaster, "r-bad", garbage=True))
            # a report to another address is only mail (our rua is the postmaster)
            s.sendmail("noreply@reporter.test", [f"bob@{srv.domain}"],
                       report_mail(f"bob@{srv.domain}", "r-2"))
            # the same report twice is kept once
            s.sendmail("noreply@reporter.test", [postmaster], report_mail(postmaster, "r-1"))
        for _ in range(200):
            if len(srv.mailbox(postmaster)) == 3 and srv.mailbox(f"bob@{srv.domain}"):
                break
            time.sleep(0.05)
        assert len(srv.mailbox(postmaster)) == 3
        out = srv.cli("tls", "reports")
    lines = out.strip().splitlines()
    assert lines[-1] == "1 report", out
    assert "from=Reporter Inc." in lines[0] and "report-id=r-1" in lines[0]
    assert "domains=example.test" in lines[0] and "successes=41 failures=2" in lines[0]


async def test_tlsrpt_imported_at_local_delivery_only_for_the_postmaster(store: Store) -> None:
    await store.add_domain("example.test")
    await store.add_account("postmaster@example.test", "x")
    await store.add_account("bob@example.test", "x")
    delivery = LocalDelivery(store, Directory(store))

    async def deliver(data: bytes, rcpt: str) -> None:
        report = await delivery.deliver(await stage_bytes(store, data), [rcpt],
                                        sender="noreply@reporter.test")
        assert report.records  # delivered as mail in every case

    await deliver(report_mail("bob@example.test", "r-0"), "bob@example.test")
    await deliver(report_mail("postmaster@example.test", "r-bad", garbage=True),
                  "postmaster@example.test")
    await deliver(b"From: a@b.test\r\nSubject: hello\r\n\r\nnot a report\r\n",
                  "postmaster@example.test")
    assert await store.tls_reports(10) == []
    await deliver(report_mail("postmaster@example.test", "r-1"), "Postmaster@example.test")
    [stored] = await store.tls_reports(10)
    assert (stored.organization, stored.report_id, stored.successes, stored.failures) == (
        "Reporter Inc.", "r-1", 41, 2)
