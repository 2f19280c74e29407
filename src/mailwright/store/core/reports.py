"""Data kept for the reports a mail domain sends and receives: DMARC aggregate reports
(RFC 7489 7.2) and SMTP TLS reports (RFC 8460).

Our own results are counted, not listed: one row per distinct (day, domain, outcome...) key,
whose count grows, so the tables grow with the variety of traffic, not its volume. Received
reports are kept once per (organisation, report id).
"""

from __future__ import annotations

from mailwright.store.api import DmarcResultRow, ReceivedDmarcReport, TLSReport, TLSResult
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Row, Tx, as_time

_DMARC_COLS = (
    "day, header_from, source_ip, disposition, dkim_aligned, spf_aligned, envelope_from,"
    " dkim, spf, policy, count, policy_domain"
)
_DMARC_KEY = (
    "header_from, day, source_ip, disposition, dkim_aligned, spf_aligned, envelope_from,"
    " dkim, spf"
)
_TLS_COLS = (
    "day, policy_domain, policy_type, policy_string, result_type, mx_host, receiving_ip,"
    " count, info"
)


def _dmarc_row(r: Row) -> DmarcResultRow:
    return DmarcResultRow(
        int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), str(r[7]),
        str(r[8]), str(r[9]), int(r[10]), str(r[11]),
    )  # fmt: skip


def _tls_result(r: Row) -> TLSResult:
    return TLSResult(
        str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), int(r[7]),
        str(r[8]),
    )  # fmt: skip


class DmarcData(CoreBase):
    async def record_dmarc_result(self, row: DmarcResultRow) -> None:
        """Count one evaluated message into its row (created with `row.count`); the policy
        seen last is kept."""
        values = (
            row.day, row.header_from, row.source_ip, row.disposition, row.dkim_aligned,
            row.spf_aligned, row.envelope_from, row.dkim, row.spf, row.policy, row.count,
            row.policy_domain,
        )  # fmt: skip

        async def op(tx: Tx) -> None:
            await tx.run(
                f"INSERT INTO dmarc_results({_DMARC_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT ({_DMARC_KEY}) DO UPDATE"
                " SET count = dmarc_results.count + excluded.count, policy = excluded.policy,"
                " policy_domain = excluded.policy_domain",
                values,
            )

        await self._unit(op)

    async def dmarc_results(self, before_day: int) -> list[DmarcResultRow]:
        """Every recorded row of a day before `before_day`, ordered by domain and day."""

        async def op(tx: Tx) -> list[DmarcResultRow]:
            rows = await tx.rows(
                f"SELECT {_DMARC_COLS} FROM dmarc_results WHERE day < ?"
                " ORDER BY header_from, day, source_ip",
                (before_day,),
            )
            return [_dmarc_row(r) for r in rows]

        return await self._view(op)

    async def delete_dmarc_results(self, policy_domain: str, before_day: int) -> int:
        """Forget a policy domain's rows before `before_day` (its report went out); how many."""

        async def op(tx: Tx) -> int:
            return await tx.run(
                "DELETE FROM dmarc_results WHERE policy_domain = ? AND day < ?",
                (policy_domain, before_day),
            )

        return await self._unit(op)

    async def add_dmarc_report(self, report: ReceivedDmarcReport) -> bool:
        """Keep a received report; False when (org_name, report_id) was already stored."""
        r = report

        async def op(tx: Tx) -> bool:
            row = await tx.row(
                "INSERT INTO dmarc_reports(org_name, report_id, domain, begin_ts, end_ts, email,"
                " messages, passed, records, received)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, mw_clock())"
                " ON CONFLICT (org_name, report_id) DO NOTHING RETURNING id",
                (r.org_name, r.report_id, r.domain, r.begin, r.end, r.email, r.messages,
                 r.passed, r.records),
            )  # fmt: skip
            return row is not None

        return await self._single(op)

    async def list_dmarc_reports(self, domain: str | None = None) -> list[ReceivedDmarcReport]:
        """Received reports, newest date range first (one domain's, or all)."""
        where, params = ("WHERE domain = ?", (domain,)) if domain else ("", ())

        async def op(tx: Tx) -> list[ReceivedDmarcReport]:
            rows = await tx.rows(
                "SELECT org_name, report_id, domain, begin_ts, end_ts, email, messages, passed,"
                f" records, received, id FROM dmarc_reports {where}"
                " ORDER BY begin_ts DESC, id DESC",
                params,
            )
            return [
                ReceivedDmarcReport(
                    str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), str(r[5]), int(r[6]),
                    int(r[7]), str(r[8]), received=as_time(r[9]), id=int(r[10]),
                )
                for r in rows
            ]

        return await self._view(op)


class TlsReporting(CoreBase):
    async def tls_result_add(self, result: TLSResult) -> None:
        """Add ``result.count`` to the matching day/domain/policy/outcome/host row."""

        async def op(tx: Tx) -> None:
            await tx.run(
                f"INSERT INTO tls_results({_TLS_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (day, policy_domain, policy_type, policy_string, result_type,"
                " mx_host, receiving_ip) DO UPDATE SET count = tls_results.count + excluded.count",
                (result.day, result.policy_domain, result.policy_type, result.policy_string,
                 result.result_type, result.mx_host, result.receiving_ip, result.count,
                 result.info),
            )  # fmt: skip

        await self._unit(op)

    async def tls_results_take(self, before_day: str) -> list[TLSResult]:
        """Remove and return every result of days before ``before_day`` (a report is built from
        them), by day and domain; atomic."""

        async def op(tx: Tx) -> list[TLSResult]:
            rows = await tx.rows(
                f"DELETE FROM tls_results WHERE day < ? RETURNING {_TLS_COLS}", (before_day,)
            )
            return sorted(map(_tls_result, rows), key=lambda t: (t.day, t.policy_domain))

        return await self._unit(op)

    async def tls_results(self) -> list[TLSResult]:
        """Every result not yet reported, oldest day first."""

        async def op(tx: Tx) -> list[TLSResult]:
            rows = await tx.rows(f"SELECT {_TLS_COLS} FROM tls_results ORDER BY day, policy_domain")
            return [_tls_result(r) for r in rows]

        return await self._view(op)

    async def tls_report_add(self, report: TLSReport) -> int | None:
        """Store a received report: its id, or None when the same organisation's report id is
        known."""

        async def op(tx: Tx) -> int | None:
            row = await tx.row(
                "INSERT INTO tls_reports(received, organization, report_id, start_time, end_time,"
                " policy_domains, successes, failures, report_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (organization, report_id) DO NOTHING RETURNING id",
                (report.received, report.organization, report.report_id, report.start,
                 report.end, report.policy_domains, report.successes, report.failures,
                 report.report_json),
            )  # fmt: skip
            return None if row is None else int(row[0])

        return await self._unit(op)

    async def tls_reports(self, limit: int = 100) -> list[TLSReport]:
        """The newest received reports first, at most `limit`."""

        async def op(tx: Tx) -> list[TLSReport]:
            rows = await tx.rows(
                "SELECT id, received, organization, report_id, start_time, end_time,"
                " policy_domains, successes, failures, report_json FROM tls_reports"
                " ORDER BY received DESC, id DESC LIMIT ?",
                (limit,),
            )
            return [
                TLSReport(
                    int(r[0]), as_time(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]),
                    str(r[6]), int(r[7]), int(r[8]), str(r[9]),
                )
                for r in rows
            ]

        return await self._view(op)
