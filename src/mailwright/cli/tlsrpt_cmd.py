"""`mailwright tls reports|import|results`: SMTP TLS Reporting (RFC 8460) for the operator.

These actions hang under the ``tls`` command of ``cli/tls_cmd.py`` (``add_actions``).

* ``tls reports [--id N]``: the reports other domains sent us, newest first (one line each),
  or one report's JSON;
* ``tls import FILE...``: parse TLS-RPT report mails (or their ``.json``/``.json.gz``
  attachments) and store them; a report already stored (same organisation and report id) is
  skipped. "-" reads one message from standard input;
* ``tls results``: our own outbound TLS results not yet reported, per day and policy domain.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mailwright.cli.common import CLIError, load, with_store
from mailwright.delivery.tlsreports import to_record
from mailwright.store.api import ReportData
from mailwright.transport.tlsrpt import (
    ParsedReport,
    ReportError,
    parse_report,
    parse_report_message,
)


def add_actions(tsub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``reports``, ``import`` and ``results`` under ``mailwright tls``."""
    x = tsub.add_parser("reports", parents=[common], help="TLS reports other domains sent us")
    x.add_argument("--id", type=int, help="print this report's JSON")
    x.add_argument("--limit", type=int, default=100)
    x.set_defaults(func=cmd_tls)
    x = tsub.add_parser("import", parents=[common], help="store TLS report mails or files")
    x.add_argument("files", nargs="+")
    x.set_defaults(func=cmd_tls)
    x = tsub.add_parser("results", parents=[common], help="our TLS results not yet reported")
    x.set_defaults(func=cmd_tls)


def parse_any(data: bytes) -> ParsedReport:
    """A report mail, or the report itself (JSON, gzip or not)."""
    head = data.lstrip()[:1]
    if data[:2] == b"\x1f\x8b" or head in (b"{", b"["):
        return parse_report(data)
    return parse_report_message(data)


def cmd_tls(args: argparse.Namespace) -> int:
    config = load(args)
    if args.action == "reports":
        reports = with_store(config, lambda s: s.tls_reports(max(1, args.limit) if args.id is None
                                                            else 100_000))
        if args.id is not None:
            found = [r for r in reports if r.id == args.id]
            if not found:
                raise CLIError(f"no TLS report {args.id}", 1)
            print(json.dumps(json.loads(found[0].report_json), indent=2))
            return 0
        for r in reports:
            print(f"{r.id} from={r.organization} report-id={r.report_id} "
                  f"range={r.start}..{r.end} domains={r.policy_domains} "
                  f"successes={r.successes} failures={r.failures}")
        print(f"{len(reports)} report{'' if len(reports) == 1 else 's'}")
        return 0
    if args.action == "import":
        parsed: list[ParsedReport] = []
        for name in args.files:
            try:
                data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
                parsed.append(parse_any(data))
            except (OSError, ReportError) as exc:
                raise CLIError(f"{name}: {exc}", 1) from None

        async def store_all(store: ReportData) -> list[int | None]:
            return [await store.tls_report_add(to_record(p)) for p in parsed]

        for p, new_id in zip(parsed, with_store(config, store_all), strict=True):
            state = f"stored as {new_id}" if new_id is not None else "already stored"
            print(f"{p.organization} {p.report_id}: {state}")
        return 0
    results = with_store(config, lambda s: s.tls_results())
    for t in results:
        outcome = t.result_type or "success"
        print(f"{t.day} {t.policy_domain} {t.policy_type} {outcome} mx={t.mx_host or '-'} "
              f"ip={t.receiving_ip or '-'} count={t.count}")
    print(f"{len(results)} row{'' if len(results) == 1 else 's'}")
    return 0
