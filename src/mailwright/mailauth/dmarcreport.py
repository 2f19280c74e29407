"""DMARC aggregate reports, RFC 7489 7.2 (XML of RFC 7489 Appendix C / DMARCbis): made and read.

Our MX records, for each message whose From domain publishes a DMARC record with ``rua=``, one
counted row per (day, source IP, From domain, disposition, aligned results, raw SPF/DKIM
results) (`result_row`). Once a day the rows of the days gone by become one report per policy
domain (`build_report_xml`), gzip'ed into a message (`report_message`, RFC 7489 7.2.1.1 naming)
for every ``rua`` mailto: destination that accepts reports about that domain (`destinations`,
with the RFC 7489 7.1 check for a destination outside the domain). Reports others send about our
domains are taken apart by `extract_report` and `parse_report_xml`.

This module is pure apart from the DNS check: the store side (rows, received reports) and the
queueing live in `mailwright.delivery.dmarcreports`.
"""

from __future__ import annotations

import datetime as _dt
import email
import email.policy
import gzip
import io
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from .dmarc import DMARCRecord, DMARCRecordError, organizational_domain, parse_record
from .dnsquery import AuthDNS, DNSTempError
from .inbound import InboundVerdict
from .policy import Action

if TYPE_CHECKING:
    from mailwright.store.api import DmarcResultRow

__all__ = [
    "MAX_REPORT_BYTES",
    "ParsedReport",
    "ReportError",
    "build_report_xml",
    "destinations",
    "extract_report",
    "parse_report_xml",
    "record_text",
    "report_filename",
    "report_message",
    "result_fields",
    "unpack",
]

DAY = 86400
# Reports we accept: a large provider's daily report for a busy domain is a few MB of XML;
# anything beyond this is refused rather than parsed (bounded memory).
MAX_REPORT_BYTES = 16 * 1024 * 1024
MAX_RECORDS = 10000  # records of one received report kept in detail (all are counted)
_DISPOSITION = {Action.QUARANTINE: "quarantine", Action.REJECT: "reject"}


class ReportError(ValueError):
    """Not a DMARC aggregate report we can read."""


def record_text(record: DMARCRecord) -> str:
    """The record in its TXT form, so the store keeps what was published (and its rua)."""
    parts = [
        "v=DMARC1",
        f"p={record.policy.value}",
        f"adkim={record.adkim}",
        f"aspf={record.aspf}",
        f"pct={record.pct}",
        f"fo={record.fo}",
    ]
    if record.subdomain_policy is not None:
        parts.insert(2, f"sp={record.subdomain_policy.value}")
    if record.rua:
        parts.append("rua=" + ",".join(record.rua))
    return "; ".join(parts)


def result_fields(
    verdict: InboundVerdict, *, client_ip: str, mail_from: str, now: float
) -> dict[str, str | int] | None:
    """The report row (as `DmarcResultRow` keyword arguments) for one evaluated message.

    None when nobody asked for a report: no single From domain, no record, or no rua=.
    ``verdict`` is judged as our MX applied it (its action is the disposition).
    """
    dmarc = verdict.dmarc
    if dmarc is None or dmarc.record is None or not dmarc.record.rua or not dmarc.from_domain:
        return None
    dkim = ";".join(
        f"{d.domain} {d.selector or '-'} {d.result}" for d in verdict.dkim if d.domain
    )
    spf = verdict.spf
    spf_text = ""
    if spf is not None and spf.domain:
        spf_text = f"{spf.domain} {'helo' if spf.identity == 'helo' else 'mfrom'} {spf.result.value}"
    return {
        "day": int(now // DAY),
        "header_from": dmarc.from_domain,
        "source_ip": client_ip,
        "disposition": _DISPOSITION.get(verdict.action, "none"),
        "dkim_aligned": "pass" if dmarc.aligned_dkim else "fail",
        "spf_aligned": "pass" if dmarc.aligned_spf else "fail",
        "envelope_from": mail_from.rpartition("@")[2].lower(),
        "dkim": dkim,
        "spf": spf_text,
        "policy": record_text(dmarc.record),
        "policy_domain": dmarc.record_domain or dmarc.from_domain,
    }


# -- sending ------------------------------------------------------------------------------------


def _mailto(uri: str) -> tuple[str, int | None] | None:
    """A rua URI's address and size limit (RFC 7489 6.2: "mailto:a@b!10m"); None if not mailto."""
    if not uri.lower().startswith("mailto:"):
        return None
    body = uri[len("mailto:") :]
    limit: int | None = None
    m = re.match(r"^(.*)!(\d+)([kmgt]?)$", body, re.IGNORECASE)
    if m is not None:
        body = m.group(1)
        unit = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
        limit = int(m.group(2)) * unit[m.group(3).lower()]
    address = urllib.parse.unquote(body).strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c in address for c in "<>\r\n ,"):
        return None
    return f"{local}@{domain.lower()}", limit


async def destinations(
    dns: AuthDNS, policy_domain: str, record: DMARCRecord
) -> list[tuple[str, int | None]]:
    """The rua mailto: addresses allowed to receive reports about `policy_domain`.

    RFC 7489 7.1: a destination whose organizational domain differs from the policy domain's
    must publish ``<policy-domain>._report._dmarc.<destination-domain>`` TXT "v=DMARC1";
    otherwise anyone could have us mail reports to a victim. A DNS failure skips that
    destination; when it leaves none, `DNSTempError` is raised so the rows wait for a retry.
    """
    out: list[tuple[str, int | None]] = []
    deferred = False
    own_org = organizational_domain(policy_domain)
    for uri in record.rua:
        parsed = _mailto(uri)
        if parsed is None:
            continue
        domain = parsed[0].rpartition("@")[2]
        if organizational_domain(domain) != own_org:
            try:
                answers = await dns.txt(f"{policy_domain}._report._dmarc.{domain}")
            except DNSTempError:
                deferred = True
                continue
            if not any(re.match(rb"^\s*v\s*=\s*DMARC1\s*(;|$)", a) for a in answers):
                continue
        if parsed not in out:
            out.append(parsed)
    if deferred and not out:
        raise DNSTempError(f"{policy_domain}: report destination check failed, try later")
    return out


def _sub(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = str(text)
    return el


def build_report_xml(
    *,
    org_name: str,
    email_address: str,
    report_id: str,
    policy_domain: str,
    record: DMARCRecord,
    begin: int,
    end: int,
    rows: Sequence[DmarcResultRow],
) -> bytes:
    """The aggregate report document (RFC 7489 Appendix C; DMARCbis aggregate format)."""
    root = ET.Element("feedback")
    _sub(root, "version", "1.0")
    meta = _sub(root, "report_metadata")
    _sub(meta, "org_name", org_name)
    _sub(meta, "email", email_address)
    _sub(meta, "report_id", report_id)
    rng = _sub(meta, "date_range")
    _sub(rng, "begin", begin)
    _sub(rng, "end", end)
    pub = _sub(root, "policy_published")
    _sub(pub, "domain", policy_domain)
    _sub(pub, "adkim", record.adkim)
    _sub(pub, "aspf", record.aspf)
    _sub(pub, "p", record.policy.value)
    _sub(pub, "sp", (record.subdomain_policy or record.policy).value)
    _sub(pub, "pct", record.pct)
    _sub(pub, "fo", record.fo)
    merged: dict[tuple[str, str, str, str, str, str, str, str], int] = {}
    for row in rows:  # several days in one report: the same outcome is one record
        key = (row.source_ip, row.disposition, row.dkim_aligned, row.spf_aligned,
               row.envelope_from, row.header_from, row.dkim, row.spf)  # fmt: skip
        merged[key] = merged.get(key, 0) + row.count
    for key, count in merged.items():
        source_ip, disposition, dkim_aligned, spf_aligned, env_from, header_from, dkim, spf = key
        rec = _sub(root, "record")
        row_el = _sub(rec, "row")
        _sub(row_el, "source_ip", source_ip)
        _sub(row_el, "count", count)
        evaluated = _sub(row_el, "policy_evaluated")
        _sub(evaluated, "disposition", disposition)
        _sub(evaluated, "dkim", dkim_aligned)
        _sub(evaluated, "spf", spf_aligned)
        ids = _sub(rec, "identifiers")
        if env_from:
            _sub(ids, "envelope_from", env_from)
        _sub(ids, "header_from", header_from)
        results = _sub(rec, "auth_results")
        for item in filter(None, dkim.split(";")):
            domain, selector, result = [*item.split(" "), "", ""][:3]
            d = _sub(results, "dkim")
            _sub(d, "domain", domain)
            if selector and selector != "-":
                _sub(d, "selector", selector)
            _sub(d, "result", result)
        if spf:
            domain, scope, result = [*spf.split(" "), "", ""][:3]
        else:  # RFC 7489 Appendix C: one spf element is required
            domain, scope, result = env_from or header_from, "mfrom", "none"
        s = _sub(results, "spf")
        _sub(s, "domain", domain)
        _sub(s, "scope", scope)
        _sub(s, "result", result)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def report_filename(receiver: str, policy_domain: str, begin: int, end: int, unique: str) -> str:
    """RFC 7489 7.2.1.1: receiver "!" policy-domain "!" begin "!" end ["!" unique-id] "." ext."""
    return f"{receiver}!{policy_domain}!{begin}!{end}!{unique}.xml.gz"


def report_message(
    *,
    from_address: str,
    to: Sequence[str],
    receiver: str,
    policy_domain: str,
    report_id: str,
    begin: int,
    end: int,
    xml: bytes,
    now: float,
) -> bytes:
    """The report mail (RFC 7489 7.2.1.1): the Subject names domain, submitter and report id."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_address
    msg["To"] = ", ".join(to)
    msg["Subject"] = (
        f"Report Domain: {policy_domain} Submitter: {receiver} Report-ID: <{report_id}>"
    )
    msg["Date"] = format_datetime(_dt.datetime.fromtimestamp(now, _dt.UTC))
    msg["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or receiver)
    msg.set_content(
        f"This is a DMARC aggregate report (RFC 7489) from {receiver} about mail claiming to\n"
        f"be from {policy_domain}, for {_day_text(begin)} to {_day_text(end)} (UTC).\n"
    )
    msg.add_attachment(
        gzip.compress(xml, mtime=0),
        maintype="application",
        subtype="gzip",
        filename=report_filename(receiver, policy_domain, begin, end, report_id),
    )
    return msg.as_bytes()


def _day_text(ts: int) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- receiving ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedReport:
    """The parts of a received aggregate report we keep and show."""

    org_name: str
    email: str
    report_id: str
    domain: str
    begin: int
    end: int
    messages: int
    passed: int
    records: str  # JSON list of dicts


def unpack(name: str, ctype: str, data: bytes) -> bytes | None:
    """The XML inside a report attachment (gzip, zip, plain), None for other parts."""
    name = name.lower()
    if name.endswith(".gz") or ctype in ("application/gzip", "application/x-gzip"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
                out = f.read(MAX_REPORT_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReportError(f"bad gzip: {exc}") from None
        if len(out) > MAX_REPORT_BYTES:
            raise ReportError("report too large")
        return out
    if name.endswith(".zip") or ctype in ("application/zip", "application/x-zip-compressed"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for info in z.infolist():
                    if info.filename.lower().endswith(".xml"):
                        if info.file_size > MAX_REPORT_BYTES:
                            raise ReportError("report too large")
                        with z.open(info) as f:
                            return f.read(MAX_REPORT_BYTES + 1)[:MAX_REPORT_BYTES]
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError,
                NotImplementedError) as exc:  # corrupt, encrypted, unknown compression
            raise ReportError(f"bad zip: {exc}") from None
        return None
    if name.endswith(".xml") or ctype in ("text/xml", "application/xml"):
        return data
    return None


def extract_report(message: bytes) -> bytes:
    """The XML of the aggregate report a message carries (gzip, zip or plain XML part)."""
    msg = email.message_from_bytes(message, policy=email.policy.default)
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            continue
        found = unpack(part.get_filename() or "", part.get_content_type(), payload)
        if found is not None:
            return found
    raise ReportError("no report attachment")


def _text(el: ET.Element | None, path: str, default: str = "") -> str:
    if el is None:
        return default
    found = el.find(path)
    return (found.text or "").strip() if found is not None and found.text else default


def parse_report_xml(data: bytes) -> ParsedReport:
    """Read an aggregate report (RFC 7489 Appendix C); `ReportError` when it is not one."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError("report too large")
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        # No document type in the schema; refusing it keeps entity expansion out entirely.
        raise ReportError("DTDs are not allowed in reports")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportError(f"not XML: {exc}") from None
    if root.tag.rpartition("}")[2] != "feedback":
        raise ReportError("root element is not <feedback>")
    # DMARCbis documents carry a namespace; strip it so one reader serves both.
    for el in root.iter():
        el.tag = el.tag.rpartition("}")[2]
    meta = root.find("report_metadata")
    pub = root.find("policy_published")
    report_id = _text(meta, "report_id")
    domain = _text(pub, "domain").lower().rstrip(".")
    if not report_id or not domain:
        raise ReportError("report_id or policy_published/domain missing")
    try:
        begin = int(_text(meta, "date_range/begin", "0"))
        end = int(_text(meta, "date_range/end", "0"))
    except ValueError:
        raise ReportError("bad date_range") from None
    records: list[dict[str, object]] = []
    messages = passed = 0
    for rec in root.findall("record"):
        try:
            count = int(_text(rec, "row/count", "0"))
        except ValueError:
            raise ReportError("bad count") from None
        dkim = _text(rec, "row/policy_evaluated/dkim")
        spf = _text(rec, "row/policy_evaluated/spf")
        messages += count
        if "pass" in (dkim, spf):
            passed += count
        if len(records) >= MAX_RECORDS:
            continue  # counted, not kept: the store holds a bounded summary per report
        records.append({
            "source_ip": _text(rec, "row/source_ip"),
            "count": count,
            "disposition": _text(rec, "row/policy_evaluated/disposition"),
            "dkim": dkim,
            "spf": spf,
            "header_from": _text(rec, "identifiers/header_from"),
            "envelope_from": _text(rec, "identifiers/envelope_from"),
            "dkim_results": [
                {"domain": _text(d, "domain"), "selector": _text(d, "selector"),
                 "result": _text(d, "result")}
                for d in rec.findall("auth_results/dkim")
            ],
            "spf_results": [
                {"domain": _text(s, "domain"), "scope": _text(s, "scope"),
                 "result": _text(s, "result")}
                for s in rec.findall("auth_results/spf")
            ],
        })  # fmt: skip
    return ParsedReport(
        org_name=_text(meta, "org_name"),
        email=_text(meta, "email"),
        report_id=report_id,
        domain=domain,
        begin=begin,
        end=end,
        messages=messages,
        passed=passed,
        records=json.dumps(records, separators=(",", ":")),
    )


def parse_policy(text: str) -> DMARCRecord | None:
    """The record stored with the rows (`record_text`), None if it no longer parses."""
    try:
        return parse_record(text)
    except DMARCRecordError:
        return None
