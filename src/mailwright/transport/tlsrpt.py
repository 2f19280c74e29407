"""SMTP TLS Reporting (RFC 8460): the daily aggregate report, out and in.

Out: the queue counts every outbound TLS session per policy domain (``TLSResult`` rows in the
store); once a day the results of the days before are taken, one report per policy domain is
built (RFC 8460 4.4 JSON), gzip-compressed, and sent to every ``rua`` of the domain's
``_smtp._tls`` TXT record (3): ``mailto:`` as a ``multipart/report; report-type="tlsrpt"``
message with an ``application/tlsrpt+gzip`` part through our own queue (5.3), ``https:`` as a
POST of the same bytes (5.4).

In: a report sent to us is such a message (or bare JSON, gzip or not); ``parse_report`` checks
its shape and sums it up for the store and ``mailwright tls reports``.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import gzip
import io
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from typing import Any

__all__ = [
    "MEDIA_TYPE",
    "RESULT_TYPES",
    "ParsedReport",
    "ReportError",
    "ResultRow",
    "build_report",
    "parse_record",
    "parse_report",
    "parse_report_message",
    "report_message",
]

MEDIA_TYPE = "application/tlsrpt+gzip"  # RFC 8460 6.4
MAX_REPORT_SIZE = 5 * 1024 * 1024  # a report bigger than this (inflated) is refused
# RFC 8460 4.3
RESULT_TYPES = frozenset({
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
    "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
})


class ReportError(ValueError):
    """A record or a report that does not follow RFC 8460."""


def parse_record(texts: list[bytes]) -> list[str]:
    """The ``rua`` URIs of the one ``v=TLSRPTv1`` record (RFC 8460 3); mailto: and https: only."""
    records = [t.decode("ascii", "replace").strip() for t in texts]
    found = [r for r in records if r.startswith("v=TLSRPTv1")]
    if len(found) != 1:
        raise ReportError("no single v=TLSRPTv1 record")
    uris: list[str] = []
    for item in found[0].split(";"):
        key, eq, value = item.strip().partition("=")
        if eq and key.strip() == "rua":
            for uri in value.split(","):
                uri = uri.strip()
                if uri.lower().startswith(("mailto:", "https:")):
                    uris.append(uri)
    if not uris:
        raise ReportError("no mailto: or https: rua")
    return uris


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One counted outcome, as the store keeps it (``mailwright.store.api.TLSResult``)."""

    day: str
    policy_domain: str
    policy_type: str
    policy_string: str  # JSON list
    result_type: str  # "" for success
    mx_host: str
    receiving_ip: str
    count: int
    info: str = ""


def build_report(rows: Sequence[ResultRow], *, organization: str, contact: str,
                 policy_domain: str, start: dt.date, end: dt.date,
                 report_id: str | None = None) -> dict[str, Any]:
    """The RFC 8460 4.4 report for one policy domain over whole UTC days ``start``..``end``."""
    by_policy: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for row in rows:
        if row.policy_domain == policy_domain:
            by_policy[(row.policy_type, row.policy_string)].append(row)
    policies: list[dict[str, Any]] = []
    for (ptype, pstring), group in sorted(by_policy.items()):
        policy: dict[str, Any] = {"policy-type": ptype, "policy-domain": policy_domain}
        strings = json.loads(pstring) if pstring else []
        if strings:
            policy["policy-string"] = strings
        mx_hosts = sorted({r.mx_host for r in group if r.mx_host})
        if ptype == "sts":
            policy["mx-host"] = [s.partition(":")[2].strip() for s in strings
                                 if s.startswith("mx:")] or mx_hosts
        successes = sum(r.count for r in group if not r.result_type)
        failures = [r for r in group if r.result_type]
        details: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in failures:
            key = (r.result_type, r.mx_host, r.receiving_ip)
            if key in details:
                details[key]["failed-session-count"] += r.count
                continue
            item: dict[str, Any] = {"result-type": r.result_type,
                                    "failed-session-count": r.count}
            if r.mx_host:
                item["receiving-mx-hostname"] = r.mx_host
            if r.receiving_ip:
                item["receiving-ip"] = r.receiving_ip
            if r.info:
                item["additional-information"] = r.info[:500]
            details[key] = item
        entry: dict[str, Any] = {
            "policy": policy,
            "summary": {"total-successful-session-count": successes,
                        "total-failure-session-count": sum(r.count for r in failures)},
        }
        if details:
            entry["failure-details"] = list(details.values())
        policies.append(entry)
    return {
        "organization-name": organization,
        "date-range": {
            "start-datetime": f"{start.isoformat()}T00:00:00Z",
            "end-datetime": f"{end.isoformat()}T23:59:59Z",
        },
        "contact-info": contact,
        "report-id": report_id or f"{start.isoformat()}.{policy_domain}.{uuid.uuid4().hex[:12]}",
        "policies": policies,
    }


def report_message(report: dict[str, Any], *, sender: str, to: str, submitter: str,
                   policy_domain: str) -> bytes:
    """The report as mail (RFC 8460 5.3): multipart/report; report-type="tlsrpt", with the
    gzipped JSON as ``application/tlsrpt+gzip`` and the TLS-Report-* header fields."""
    data = gzip.compress(json.dumps(report, indent=1).encode(), mtime=0)
    start = report["date-range"]["start-datetime"][:10]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = (f"Report Domain: {policy_domain} Submitter: {submitter} "
                      f"Report-ID: <{report['report-id']}>")
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(domain=submitter)
    msg["TLS-Report-Domain"] = policy_domain
    msg["TLS-Report-Submitter"] = submitter
    msg.set_content(f"This is an aggregate TLS report from {submitter} for {policy_domain} "
                    f"(RFC 8460), day {start}.\n")
    msg.add_attachment(data, maintype="application", subtype="tlsrpt+gzip",
                       filename=f"{submitter}!{policy_domain}!{start}!{report['report-id']}"
                                f".json.gz")
    # EmailMessage makes multipart/mixed; RFC 8460 5.3 asks for multipart/report.
    msg.set_type("multipart/report")
    msg.set_param("report-type", "tlsrpt")
    return msg.as_bytes(policy=email.policy.SMTP)


@dataclass(frozen=True, slots=True)
class ParsedReport:
    organization: str
    report_id: str
    start: str
    end: str
    policy_domains: tuple[str, ...]
    successes: int
    failures: int
    raw: dict[str, Any]


def parse_report(data: bytes) -> ParsedReport:
    """A report's JSON (gzip-compressed or not), checked for the fields RFC 8460 4.4 requires."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
                data = fh.read(MAX_REPORT_SIZE + 1)
        except (OSError, EOFError) as exc:
            raise ReportError(f"bad gzip data ({exc})") from exc
        if len(data) > MAX_REPORT_SIZE:
            raise ReportError("report too large")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ReportError("the report is not a JSON object")
    try:
        organization = str(doc["organization-name"])
        report_id = str(doc["report-id"])
        start = str(doc["date-range"]["start-datetime"])
        end = str(doc["date-range"]["end-datetime"])
        policies = doc["policies"]
        if not isinstance(policies, list):
            raise TypeError("policies is not a list")
        domains: list[str] = []
        successes = failures = 0
        for item in policies:
            domains.append(str(item["policy"]["policy-domain"]))
            summary = item["summary"]
            successes += int(summary["total-successful-session-count"])
            failures += int(summary["total-failure-session-count"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"missing or malformed field ({exc})") from exc
    return ParsedReport(organization, report_id, start, end, tuple(dict.fromkeys(domains)),
                        successes, failures, doc)


def parse_report_message(message: bytes) -> ParsedReport:
    """The report inside a TLS-RPT mail (RFC 8460 5.3): its tlsrpt part, gzip or JSON."""
    msg = BytesParser(policy=email.policy.default).parsebytes(message)
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in (MEDIA_TYPE, "application/tlsrpt+json"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return parse_report(payload)
    raise ReportError("no application/tlsrpt+gzip or +json part")
