"""DMARC aggregate reports: rows from verdicts, the XML, destinations, parsing, both stores."""

from __future__ import annotations

import email
import email.policy
import gzip
import io
import json
import xml.etree.ElementTree as ET
import zipfile

import pytest
from tests.support.dnsserver import Behaviour, DNSServer

from mailwright.dns.resolver import Resolver
from mailwright.mailauth import verify_inbound
from mailwright.mailauth.dmarc import parse_record
from mailwright.mailauth.dmarcreport import (
    ReportError,
    build_report_xml,
    destinations,
    extract_report,
    parse_report_xml,
    report_filename,
    report_message,
    result_fields,
)
from mailwright.mailauth.dnsquery import DNSTempError, ResolverDNS
from mailwright.store.api import DmarcResultRow, ReceivedDmarcReport, Store

DAY = 86400
T0 = 1_796_083_200  # a UTC midnight


def row(**kw: object) -> DmarcResultRow:
    base: dict[str, object] = dict(
        day=T0 // DAY, header_from="brand.test", source_ip="192.0.2.7", disposition="none",
        dkim_aligned="pass", spf_aligned="fail", envelope_from="bounce.test",
        dkim="brand.test sel pass", spf="bounce.test mfrom pass",
        policy="v=DMARC1; p=quarantine; adkim=r; aspf=s; pct=100; fo=0; "
               "rua=mailto:dmarc@brand.test",
        count=1, policy_domain="brand.test",
    )
    base.update(kw)
    return DmarcResultRow(**base)  # type: ignore[arg-type]


def test_report_xml_round_trips_through_xml_etree() -> None:
    record = parse_record("v=DMARC1; p=quarantine; sp=reject; aspf=s; pct=50; "
                          "rua=mailto:dmarc@brand.test")
    rows = [row(count=3), row(day=T0 // DAY + 1, count=2),  # same outcome, two days: merged
            row(source_ip="2001:db8::1", disposition="quarantine", dkim_aligned="fail",
                dkim="", spf="", envelope_from="")]
    xml = build_report_xml(org_name="mx.reporter.test", email_address="dmarc@reporter.test",
                           report_id="r1", policy_domain="brand.test", record=record,
                           begin=T0, end=T0 + 2 * DAY - 1, rows=rows)
    assert xml.startswith(b"<?xml")
    root = ET.fromstring(xml)
    assert root.tag == "feedback"
    assert root.findtext("report_metadata/org_name") == "mx.reporter.test"
    assert root.findtext("report_metadata/email") == "dmarc@reporter.test"
    assert root.findtext("report_metadata/report_id") == "r1"
    assert root.findtext("report_metadata/date_range/begin") == str(T0)
    assert root.findtext("report_metadata/date_range/end") == str(T0 + 2 * DAY - 1)
    pub = root.find("policy_published")
    assert pub is not None
    assert [pub.findtext(t) for t in ("domain", "adkim", "aspf", "p", "sp", "pct")] == [
        "brand.test", "r", "s", "quarantine", "reject", "50"]
    records = root.findall("record")
    assert len(records) == 2
    first, second = records
    assert first.findtext("row/source_ip") == "192.0.2.7"
    assert first.findtext("row/count") == "5"
    assert first.findtext("row/policy_evaluated/disposition") == "none"
    assert first.findtext("row/policy_evaluated/dkim") == "pass"
    assert first.findtext("row/policy_evaluated/spf") == "fail"
    assert first.findtext("identifiers/header_from") == "brand.test"
    assert first.findtext("identifiers/envelope_from") == "bounce.test"
    assert first.findtext("auth_results/dkim/domain") == "brand.test"
    assert first.findtext("auth_results/dkim/selector") == "sel"
    assert first.findtext("auth_results/dkim/result") == "pass"
    assert [first.findtext(f"auth_results/spf/{t}") for t in ("domain", "scope", "result")] == [
        "bounce.test", "mfrom", "pass"]
    assert second.findtext("row/source_ip") == "2001:db8::1"
    assert second.find("auth_results/dkim") is None
    assert second.findtext("auth_results/spf/result") == "none"  # the schema requires one
    # And our own reader reads what we write.
    parsed = parse_report_xml(xml)
    assert (parsed.domain, parsed.messages, parsed.passed, parsed.report_id) == (
        "brand.test", 6, 5, "r1")


def test_report_message_names_and_gzip_attachment() -> None:
    xml = b"<?xml version='1.0'?><feedback/>"
    raw = report_message(from_address="dmarc@reporter.test", to=["dmarc@brand.test"],
                         receiver="mx.reporter.test", policy_domain="brand.test",
                         report_id="r1", begin=T0, end=T0 + DAY - 1, xml=xml, now=T0 + DAY)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    # RFC 7489 7.2.1.1: the Subject and the filename name the domain, submitter and period.
    assert msg["Subject"] == "Report Domain: brand.test Submitter: mx.reporter.test Report-ID: <r1>"
    [part] = [p for p in msg.walk() if p.get_filename()]
    assert part.get_content_type() == "application/gzip"
    assert part.get_filename() == f"mx.reporter.test!brand.test!{T0}!{T0 + DAY - 1}!r1.xml.gz"
    assert report_filename("a", "b.test", 1, 2, "x") == "a!b.test!1!2!x.xml.gz"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes) and gzip.decompress(payload) == xml
    assert extract_report(raw) == xml


SAMPLE = b"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <version>1.0</version>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <report_id>12345678901234567890</report_id>
    <date_range><begin>1796083200</begin><end>1796169599</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>forwarder.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp>
    <pct>100</pct>
  </policy_published>
  <record>
    <row><source_ip>198.51.100.25</source_ip><count>7</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>
      </policy_evaluated></row>
    <identifiers><header_from>forwarder.test</header_from></identifiers>
    <auth_results><dkim><domain>forwarder.test</domain><result>pass</result>
      <selector>rsa202612</selector></dkim>
      <spf><domain>forwarder.test</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>203.0.113.9</source_ip><count>2</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf>
      </policy_evaluated></row>
    <identifiers><header_from>forwarder.test</header_from></identifiers>
    <auth_results><spf><domain>spoofer.test</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
"""


def test_parse_a_received_sample_report_in_every_wrapping() -> None:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("google.com!forwarder.test!1796083200!1796169599.xml", SAMPLE)
    for name, ctype, data in (
        ("r.xml.gz", "application/gzip", gzip.compress(SAMPLE)),
        ("r.zip", "application/zip", zipped.getvalue()),
        ("r.xml", "text/xml", SAMPLE),
    ):
        msg = email.message.EmailMessage()
        msg["Subject"] = "Report domain: forwarder.test Submitter: google.com"
        msg.set_content("report attached")
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        parsed = parse_report_xml(extract_report(msg.as_bytes()))
        assert (parsed.org_name, parsed.domain, parsed.report_id) == (
            "google.com", "forwarder.test", "12345678901234567890")
        assert (parsed.begin, parsed.end, parsed.messages, parsed.passed) == (
            1796083200, 1796169599, 9, 7)
        records = json.loads(parsed.records)
        assert records[1]["source_ip"] == "203.0.113.9"
        assert records[1]["disposition"] == "reject"
        assert records[0]["dkim_results"][0]["selector"] == "rsa202612"


def test_records_kept_in_detail_are_bounded_but_all_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mailwright.mailauth.dmarcreport as mod

    monkeypatch.setattr(mod, "MAX_RECORDS", 1)
    parsed = parse_report_xml(SAMPLE)
    assert parsed.messages == 9 and len(json.loads(parsed.records)) == 1


def test_corrupt_archives_are_report_errors() -> None:
    good = gzip.compress(SAMPLE)
    corrupt_gzip = good[:12] + b"\xff" * 20 + good[32:]
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("r.xml", SAMPLE)
    data = bytearray(zipped.getvalue())
    data[40:60] = b"\xff" * 20  # inside the compressed member
    for name, blob in (("r.xml.gz", corrupt_gzip), ("r.zip", bytes(data))):
        msg = email.message.EmailMessage()
        msg.set_content("report attached")
        msg.add_attachment(blob, maintype="application", subtype="octet-stream", filename=name)
        with pytest.raises(ReportError):
            extract_report(msg.as_bytes())


@pytest.mark.parametrize("bad", [
    b"not xml",
    b"<other/>",
    b"<feedback><report_metadata/></feedback>",
    b'<!DOCTYPE feedback [<!ENTITY a "aaaa">]><feedback>&a;</feedback>',
])
def test_unreadable_reports_are_refused(bad: bytes) -> None:
    with pytest.raises(ReportError):
        parse_report_xml(bad)
    with pytest.raises(ReportError):
        extract_report(b"Subject: no attachment\r\n\r\nhello\r\n")


async def test_destinations_check_external_domains(zone: DNSServer, dns: ResolverDNS) -> None:
    record = parse_record(
        "v=DMARC1; p=none; rua=mailto:dmarc@brand.test,mailto:agg@vendor.test!10m,"
        "mailto:victim@elsewhere.test,https://x.test/r")
    # RFC 7489 7.1: vendor.test agreed to take brand.test's reports; elsewhere.test did not.
    zone.add("brand.test._report._dmarc.vendor.test", "TXT", "v=DMARC1")
    got = await destinations(dns, "brand.test", record)
    assert got == [("dmarc@brand.test", None), ("agg@vendor.test", 10 * 1024 * 1024)]


async def test_destination_check_dns_failure_defers(zone: DNSServer, dns: ResolverDNS) -> None:
    record = parse_record("v=DMARC1; p=none; rua=mailto:agg@vendor.test")
    zone.set_behaviour("brand.test._report._dmarc.vendor.test", Behaviour.SERVFAIL)
    with pytest.raises(DNSTempError):
        await destinations(dns, "brand.test", record)


async def test_result_fields_from_a_real_verdict(zone: DNSServer, resolver: Resolver) -> None:
    zone.add("brand.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.add("_dmarc.brand.test", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@brand.test")
    zone.add("_dmarc.quiet.test", "TXT", "v=DMARC1; p=reject")
    message = b"From: a@brand.test\r\nSubject: x\r\n\r\nbody\r\n"
    verdict = await verify_inbound(resolver, hostname="mx.test", client_ip="192.0.2.7",
                                   helo="mail.brand.test", mail_from="a@brand.test",
                                   message_bytes=message)
    fields = result_fields(verdict, client_ip="192.0.2.7", mail_from="a@brand.test", now=T0 + 5)
    assert fields is not None
    assert fields["day"] == T0 // DAY and fields["policy_domain"] == "brand.test"
    assert (fields["disposition"], fields["spf_aligned"], fields["dkim_aligned"]) == (
        "none", "pass", "fail")
    assert fields["spf"] == "brand.test mfrom pass" and fields["dkim"] == ""
    assert "rua=mailto:dmarc@brand.test" in str(fields["policy"])
    forged = await verify_inbound(resolver, hostname="mx.test", client_ip="203.0.113.9",
                                  helo="evil.test", mail_from="a@brand.test",
                                  message_bytes=message)
    f2 = result_fields(forged, client_ip="203.0.113.9", mail_from="a@brand.test", now=T0)
    assert f2 is not None and f2["disposition"] == "reject" and f2["spf_aligned"] == "fail"
    # A domain without rua= asked for no report: nothing is recorded.
    quiet = await verify_inbound(resolver, hostname="mx.test", client_ip="192.0.2.7",
                                 helo="h", mail_from="a@quiet.test",
                                 message_bytes=message.replace(b"brand", b"quiet"))
    assert result_fields(quiet, client_ip="192.0.2.7", mail_from="a@quiet.test", now=T0) is None


async def test_store_counts_rows_and_keeps_received_reports(store: Store) -> None:
    day = T0 // DAY
    await store.record_dmarc_result(row())
    await store.record_dmarc_result(row())
    await store.record_dmarc_result(row(source_ip="192.0.2.8"))
    await store.record_dmarc_result(row(day=day + 1))
    await store.record_dmarc_result(row(header_from="sub.other.test", policy_domain="other.test"))
    rows = await store.dmarc_results(day + 1)
    counted = {(r.header_from, r.source_ip): r.count for r in rows}
    assert counted == {("brand.test", "192.0.2.7"): 2, ("brand.test", "192.0.2.8"): 1,
                       ("sub.other.test", "192.0.2.7"): 1}
    assert rows[0].policy.startswith("v=DMARC1") and rows[0].policy_domain == "brand.test"
    assert len(await store.dmarc_results(day + 2)) == 4
    assert await store.delete_dmarc_results("brand.test", day + 1) == 2
    left = await store.dmarc_results(day + 2)
    assert sorted((r.policy_domain, r.day) for r in left) == [
        ("brand.test", day + 1), ("other.test", day)]

    report = ReceivedDmarcReport("google.com", "123", "forwarder.test", T0, T0 + DAY - 1,
                                 "noreply@google.com", 9, 7, "[]")
    assert await store.add_dmarc_report(report) is True
    assert await store.add_dmarc_report(report) is False  # the same report mailed twice
    await store.add_dmarc_report(ReceivedDmarcReport(
        "yahoo.com", "9", "other.test", T0 + DAY, T0 + 2 * DAY, "x@yahoo.com", 1, 0, "[]"))
    got = await store.list_dmarc_reports()
    assert [(r.org_name, r.domain, r.messages) for r in got] == [
        ("yahoo.com", "other.test", 1), ("google.com", "forwarder.test", 9)]
    assert got[0].id > 0 and got[0].received is not None
    only = await store.list_dmarc_reports("forwarder.test")
    assert [(r.report_id, r.passed, r.begin, r.end) for r in only] == [
        ("123", 7, T0, T0 + DAY - 1)]
