"""DMARC aggregate reports between the MX, the store and the outbound queue (RFC 7489 7.2).

- `record_verdict`: the MX counts each DMARC-evaluated message whose domain asks for reports.
- `send_reports`: once a day, every policy domain's rows of the finished days become one report
  per domain, queued to its verified rua destinations like any other outbound mail, then the
  rows are forgotten (so the table holds at most the current day plus unsent days).
- `receive_report`: a report sent to our report address is parsed and kept for
  `mailwright dmarc reports`.

The report formats themselves are in `mailwright.mailauth.dmarcreport` (pure).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mailwright.delivery.roles import ReportSending
from mailwright.log import event as log_event
from mailwright.mailauth import KeyStore, sign_outbound_async
from mailwright.mailauth.dmarcreport import (
    DAY,
    ReportError,
    build_report_xml,
    destinations,
    extract_report,
    parse_policy,
    parse_report_xml,
    report_message,
    result_fields,
)
from mailwright.mailauth.dnsquery import AuthDNS, DNSTempError
from mailwright.mailauth.inbound import InboundVerdict
from mailwright.store.api import (
    DmarcResultRow,
    ReceivedDmarcReport,
    ReportData,
    StagedBlob,
)

from .ingest import stage_bytes

log = logging.getLogger("mailwright.dmarc")


class Enqueue(Protocol):
    async def enqueue(
        self, blob: StagedBlob, sender: str, recipients: Sequence[Any], **kw: Any
    ) -> Any: ...


async def record_verdict(
    store: ReportData, verdict: InboundVerdict, *, client_ip: str, mail_from: str,
    now: float | None = None,
) -> bool:  # fmt: skip
    """Count one message into the report rows; False when its domain asks for no report."""
    fields = result_fields(
        verdict, client_ip=client_ip, mail_from=mail_from, now=time.time() if now is None else now
    )
    if fields is None:
        return False
    await store.record_dmarc_result(DmarcResultRow(**fields))  # type: ignore[arg-type]
    return True


async def receive_report(store: ReportData, message: bytes) -> ReceivedDmarcReport | None:
    """Parse and keep a report another receiver sent us; None when it is not one we can read."""
    try:
        parsed = parse_report_xml(extract_report(message))
    except ReportError as exc:
        log_event(log, "dmarc report unreadable", reason=str(exc))
        return None
    except Exception as exc:  # whatever a hostile attachment trips in a parser: not our 451
        log_event(log, "dmarc report unreadable", reason=f"{type(exc).__name__}: {exc}")
        return None
    report = ReceivedDmarcReport(
        parsed.org_name, parsed.report_id, parsed.domain, parsed.begin, parsed.end,
        parsed.email, parsed.messages, parsed.passed, parsed.records,
    )  # fmt: skip
    stored = await store.add_dmarc_report(report)
    log_event(log, "dmarc report received", org=parsed.org_name, domain=parsed.domain,
              report_id=parsed.report_id, messages=parsed.messages, duplicate=not stored)  # fmt: skip
    return report


@dataclass(frozen=True, slots=True)
class SentReport:
    policy_domain: str
    report_id: str
    recipients: tuple[str, ...]
    records: int
    messages: int


async def send_reports(
    store: ReportSending,
    outbound: Enqueue,
    dns: AuthDNS,
    *,
    receiver: str,
    org_name: str,
    from_address: str,
    keys: KeyStore | None = None,
    now: float | None = None,
) -> list[SentReport]:
    """Queue the reports for every day before today; returns what was queued.

    Rows of a domain with no usable destination are dropped all the same (nobody will ever
    take them); a DNS failure during the RFC 7489 7.1 check keeps them for the next run.
    """
    now = time.time() if now is None else now
    today = int(now // DAY)
    by_domain: dict[str, list[DmarcResultRow]] = {}
    for row in await store.dmarc_results(today):
        by_domain.setdefault(row.policy_domain, []).append(row)
    sent: list[SentReport] = []
    for domain, rows in sorted(by_domain.items()):
        record = parse_policy(rows[-1].policy)
        try:
            targets = await destinations(dns, domain, record) if record is not None else []
        except DNSTempError:
            continue  # kept: the next pass tries again
        if record is None or not targets:
            await store.delete_dmarc_results(domain, today)
            continue
        begin = min(r.day for r in rows) * DAY
        end = (max(r.day for r in rows) + 1) * DAY - 1
        report_id = f"{domain}.{begin}.{end}@{receiver}"
        xml = build_report_xml(
            org_name=org_name, email_address=from_address, report_id=report_id,
            policy_domain=domain, record=record, begin=begin, end=end, rows=rows,
        )  # fmt: skip
        recipients: list[str] = []
        for address, limit in targets:
            if limit is None or len(xml) <= limit:  # RFC 7489 6.2: respect the size limit
                recipients.append(address)
        if recipients:
            message = report_message(
                from_address=from_address, to=recipients, receiver=receiver,
                policy_domain=domain, report_id=report_id, begin=begin, end=end, xml=xml,
                now=now,
            )  # fmt: skip
            sign_domain = from_address.rpartition("@")[2]
            if keys is not None and sign_domain:
                try:
                    message = await sign_outbound_async(message, sign_domain, keys) + message
                except ValueError:
                    pass
            blob = await stage_bytes(store, message)
            await outbound.enqueue(blob, from_address, recipients)
            sent.append(SentReport(domain, report_id, tuple(recipients), len(rows),
                                   sum(r.count for r in rows)))  # fmt: skip
            log_event(log, "dmarc report queued", domain=domain, report_id=report_id,
                      to=",".join(recipients), messages=sent[-1].messages)  # fmt: skip
        await store.delete_dmarc_results(domain, today)
    return sent
