"""TLS-RPT reports addressed to us (RFC 8460), taken out of the mail stream at local delivery.

``dns-records`` publishes ``_smtp._tls.DOMAIN TXT "v=TLSRPTv1; rua=mailto:postmaster@DOMAIN"``,
so other domains' reports about their sessions to our MX arrive as mail to the postmaster.
A message delivered to ``postmaster@`` one of our domains that is a TLS report (RFC 8460 5.3:
``multipart/report; report-type="tlsrpt"``, or the ``TLS-Report-Domain`` field it must carry)
has its ``application/tlsrpt+gzip`` (or ``+json``) part parsed and stored, as ``mailwright tls
import`` does from a file; the message itself is delivered as any other. A report that cannot
be read is logged and not stored: it never costs the delivery.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import logging
from datetime import UTC, datetime
from email.parser import BytesHeaderParser

from mailwright.log import event as log_event
from mailwright.store.api import BlobStore, ReportData, StagedBlob, StoreError, TLSReport
from mailwright.transport.tlsrpt import ParsedReport, ReportError, parse_report_message

__all__ = ["RUA_LOCAL_PART", "is_tls_report", "read_tls_report", "store_tls_report", "to_record"]

log = logging.getLogger("mailwright.tlsrpt")

RUA_LOCAL_PART = "postmaster"  # the rua dns-records publishes
_HEAD_LIMIT = 64 * 1024  # the header section we look at to decide
MAX_REPORT_MESSAGE = 8 * 1024 * 1024  # a report mail is a few kB; bigger ones are not parsed


def is_tls_report(head: bytes) -> bool:
    """Whether a message's header section says it is a TLS report (RFC 8460 5.3)."""
    fields = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    if fields.get("TLS-Report-Domain") is not None:
        return True
    return (fields.get_content_type() == "multipart/report"
            and str(fields.get_param("report-type", "")).lower() == "tlsrpt")


def to_record(parsed: ParsedReport) -> TLSReport:
    return TLSReport(0, datetime.now(UTC), parsed.organization, parsed.report_id, parsed.start,
                     parsed.end, ",".join(parsed.policy_domains), parsed.successes,
                     parsed.failures, json.dumps(parsed.raw))


async def _read(store: BlobStore, blob: StagedBlob) -> ParsedReport | None:
    head = await store.read_staged(blob, limit=_HEAD_LIMIT)
    if not is_tls_report(head.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]):
        return None
    if blob.size > MAX_REPORT_MESSAGE:
        raise ReportError(f"report message too large ({blob.size} bytes)")
    data = await store.read_staged(blob, limit=MAX_REPORT_MESSAGE)
    return await asyncio.to_thread(parse_report_message, data)


async def read_tls_report(store: BlobStore, blob: StagedBlob) -> ParsedReport | None:
    """The report in a staged message, None when the message is no TLS report (or an
    unreadable one, which is logged)."""
    try:
        return await _read(store, blob)
    except ReportError as exc:
        log_event(log, "tls report unreadable", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - whatever a hostile attachment trips in a parser
        log_event(log, "tls report unreadable", reason=f"{type(exc).__name__}: {exc}")
    return None


async def store_tls_report(store: ReportData, parsed: ParsedReport) -> int | None:
    """Keep a report (once per organisation and report id); never raises."""
    try:
        new_id = await store.tls_report_add(to_record(parsed))
    except (StoreError, OSError) as exc:
        log.warning("tls report from %s not stored: %s", parsed.organization, exc)
        return None
    log_event(log, "tls report received", org=parsed.organization, report_id=parsed.report_id,
              domains=",".join(parsed.policy_domains), successes=parsed.successes,
              failures=parsed.failures, duplicate=new_id is None)
    return new_id
