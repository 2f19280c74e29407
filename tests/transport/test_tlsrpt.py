"""TLS-RPT (RFC 8460): counting in the store (both backends), the daily report built, sent by
mail through the queue and by HTTPS POST to a real server, parsed back, imported and shown."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from mailwright.cli.main import main
from mailwright.delivery.ingest import stage_bytes
from mailwright.store.api import Store, TLSReport, TLSResult
from mailwright.transport.tlsrpt import (
    ReportError,
    parse_record,
    parse_report,
    parse_report_message,
)
from tests.queue.peer import Peer
from tests.support.dnsserver import DNSServer
from tests.transport.conftest import HTTPSServer, PrivateCA
from tests.transport.helpers import FAST, MESSAGE, make_outbound, publish_policy

STS = json.dumps(["version: STSv1", "mode: testing", "mx: mx.dest.test", "max_age: 604800"])


def result(day: str, outcome: str = "", count: int = 1, domain: str = "dest.test") -> TLSResult:
    return TLSResult(day, domain, "sts", STS, outcome, "mx.dest.test", "127.0.0.1", count,
                     "why" if outcome else "")


async def test_tlsrpt_store_counts_takes_and_keeps_reports(store: Store) -> None:
    await store.tls_result_add(result("2026-12-05"))
    await store.tls_result_add(result("2026-12-05", count=2))
    await store.tls_result_add(result("2026-12-05", "certificate-expired"))
    await store.tls_result_add(result("2026-12-06"))
    rows = await store.tls_results()
    assert sorted((r.day, r.result_type, r.count) for r in rows) == [
        ("2026-12-05", "", 3), ("2026-12-05", "certificate-expired", 1), ("2026-12-06", "", 1)]
    taken = await store.tls_results_take("2026-12-06")
    assert sorted((r.day, r.result_type, r.count) for r in taken) == [
        ("2026-12-05", "", 3), ("2026-12-05", "certificate-expired", 1)]
    assert await store.tls_results_take("2026-12-06") == []
    assert [r.day for r in await store.tls_results()] == ["2026-12-06"]

    report = TLSReport(0, dt.datetime.now(dt.UTC), "Org", "r-1", "a", "b", "dest.test", 5, 1,
                       "{}")
    first = await store.tls_report_add(report)
    assert first is not None
    assert await store.tls_report_add(report) is None  # the same report twice: kept once
    [kept] = await store.tls_reports()
    assert (kept.id, kept.organization, kept.report_id, kept.successes, kept.failures) == (
        first, "Org", "r-1", 5, 1)


def test_tlsrpt_record_parsing() -> None:
    assert parse_record([b"v=TLSRPTv1; rua=mailto:a@x.test,https://r.test/p"]) == [
        "mailto:a@x.test", "https://r.test/p"]
    for bad in ([b"v=TLSRPTv1;"], [b"v=TLSRPTv1; rua=ftp://x"], [],
                [b"v=TLSRPTv1; rua=mailto:a@x", b"v=TLSRPTv1; rua=mailto:b@x"]):
        with pytest.raises(ReportError):
            parse_record(bad)


async def test_tlsrpt_daily_report_by_mail_and_https(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    """A testing-mode failure counted by a real delivery, then the report sent to both rua."""
    wrong = ca.issue("not-the-mx.test")
    async with Peer(ssl_context=wrong.server_context()) as peer:
        out = await make_outbound(store, dns_server, ca, peer.port, https_server.port)
        publish_policy(dns_server, https_server, "testing")
        await out.enqueue(await stage_bytes(store, MESSAGE), "alice@sender.test",
                          ["bob@dest.test"])
        await out.run_once()
        assert len(peer.messages) == 1
    await store.tls_result_add(result("2000-01-01", domain="quiet.test"))  # asks for nothing
    dns_server.set("_smtp._tls.dest.test", "TXT",
                   f"v=TLSRPTv1; rua=mailto:tlsrpt@reports.test,"
                   f"https://reports.test:{https_server.port}/tlsrpt")
    today = dt.datetime.now(dt.UTC).date()
    assert await out.send_tls_reports(today.isoformat()) == 0  # today is not over yet
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    assert await out.send_tls_reports(tomorrow) == 2
    assert await store.tls_results() == []  # reported once, by whichever node took them

    # by mail (RFC 8460 5.3): queued from the null sender to the rua address
    [entry] = await store.queue_list()
    assert (entry.sender, entry.domain, [r.address for r in entry.recipients]) == (
        "", "reports.test", ["tlsrpt@reports.test"])
    mail = await store.read_blob(entry.blob_id)
    msg = email.message_from_bytes(mail, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "tlsrpt"
    assert msg["TLS-Report-Domain"] == "dest.test"
    assert msg["TLS-Report-Submitter"] == "mail.sender.test"
    assert msg["Subject"].startswith("Report Domain: dest.test Submitter: mail.sender.test ")
    parsed = parse_report_message(mail)
    assert (parsed.organization, parsed.policy_domains, parsed.successes, parsed.failures) == (
        "mail.sender.test", ("dest.test",), 0, 1)
    [policy] = parsed.raw["policies"]
    assert policy["policy"]["policy-type"] == "sts"
    assert policy["policy"]["mx-host"] == ["mx.dest.test"]
    assert "mode: testing" in policy["policy"]["policy-string"]
    [detail] = policy["failure-details"]
    assert detail["result-type"] == "certificate-host-mismatch"
    assert detail["receiving-mx-hostname"] == "mx.dest.test"
    assert detail["receiving-ip"] == "127.0.0.1" and detail["failed-session-count"] == 1
    assert parsed.start == parsed.end[:10] + "T00:00:00Z"

    # by HTTPS POST (RFC 8460 5.4)
    [posted] = https_server.posted
    assert posted.path == "/tlsrpt"
    assert posted.headers["content-type"] == "application/tlsrpt+gzip"
    assert json.loads(gzip.decompress(posted.body))["report-id"] == parsed.report_id


def test_tlsrpt_parse_refuses_malformed_reports() -> None:
    for bad in (b"not json", b"[]", b'{"organization-name": "x"}',
                gzip.compress(b'{"policies": 1}'), b"\x1f\x8bnot gzip"):
        with pytest.raises(ReportError):
            parse_report(bad)
    with pytest.raises(ReportError):
        parse_report_message(b"Subject: hi\r\n\r\nno report here\r\n")


REPORT = {
    "organization-name": "Example Inc.",
    "date-range": {"start-datetime": "2026-12-06T00:00:00Z",
                   "end-datetime": "2026-12-06T23:59:59Z"},
    "contact-info": "tls@example.net",
    "report-id": "2026-12-06T00:00:00Z_sender.test",
    "policies": [{
        "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce"],
                   "policy-domain": "sender.test"},
        "summary": {"total-successful-session-count": 41, "total-failure-session-count": 2},
        "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 2}],
    }],
}


def test_tlsrpt_cli_imports_and_shows_reports(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "a"), "--domain", "sender.test",
                 "--port-base", "30000"]) == 0
    cfg = str(tmp_path / "a" / "mailwright.toml")
    report_file = tmp_path / "report.json.gz"
    report_file.write_bytes(gzip.compress(json.dumps(REPORT).encode()))
    assert main(["-c", cfg, "tls", "import", str(report_file)]) == 0
    assert "Example Inc. 2026-12-06T00:00:00Z_sender.test: stored as" in capsys.readouterr().out
    assert main(["-c", cfg, "tls", "import", str(report_file)]) == 0
    assert "already stored" in capsys.readouterr().out
    assert main(["-c", cfg, "tls", "reports"]) == 0
    out = capsys.readouterr().out
    assert "from=Example Inc." in out and "domains=sender.test" in out
    assert "successes=41 failures=2" in out and out.rstrip().endswith("1 report")
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"Subject: x\r\n\r\nnothing\r\n")
    assert main(["-c", cfg, "tls", "import", str(bad)]) == 1


async def test_tlsrpt_the_running_queue_reports_the_days_before(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    out = await make_outbound(store, dns_server, ca, 9, https_server.port,
                              settings=replace(FAST, tls_reports=True))
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    await store.tls_result_add(result(yesterday, "starttls-not-supported", 3))
    await store.tls_result_add(result(dt.datetime.now(dt.UTC).date().isoformat()))
    dns_server.set("_smtp._tls.dest.test", "TXT",
                   f"v=TLSRPTv1; rua=https://reports.test:{https_server.port}/r")
    await out.start()
    try:
        for _ in range(250):  # bounded wait for the background run
            if https_server.posted:
                break
            await asyncio.sleep(0.02)
    finally:
        await out.stop()
    [posted] = https_server.posted
    report = parse_report(posted.body)
    assert report.failures == 3 and report.start.startswith(yesterday)
    assert [r.day for r in await store.tls_results()] == [
        dt.datetime.now(dt.UTC).date().isoformat()]  # today's count waits for tomorrow
