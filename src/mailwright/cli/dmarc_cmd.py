"""`mailwright dmarc reports|show|send|import`: DMARC aggregate reports (RFC 7489 7.2).

`reports` lists the reports other receivers sent about our domains; `show` prints one report's
records; `send` queues the reports of the finished days now (the server does it by itself every
`[dmarc] interval`); `import` reads a report file or message that arrived some other way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailwright.cli.common import CLIError, load, with_store
from mailwright.mailauth.dmarcreport import (
    MAX_REPORT_BYTES,
    ReportError,
    extract_report,
    parse_report_xml,
    unpack,
)
from mailwright.store.api import ReceivedDmarcReport, ReportData


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("dmarc", parents=[common], help="DMARC aggregate reports")
    dsub = s.add_subparsers(dest="action", required=True)
    r = dsub.add_parser("reports", parents=[common],
                        help="list the aggregate reports received about our domains")
    r.add_argument("--domain", help="only reports about this domain")
    r.set_defaults(func=cmd_reports)
    sh = dsub.add_parser("show", parents=[common], help="the records of one received report")
    sh.add_argument("id", type=int, help="the report number `dmarc reports` shows")
    sh.set_defaults(func=cmd_show)
    se = dsub.add_parser("send", parents=[common],
                         help="queue the reports of the finished days now")
    se.add_argument("--now", type=float, default=None, help=argparse.SUPPRESS)  # tests: a date
    se.set_defaults(func=cmd_send)
    im = dsub.add_parser("import", parents=[common],
                         help="store a report from a file (XML, .xml.gz, .zip or a message)")
    im.add_argument("path")
    im.set_defaults(func=cmd_import)


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def cmd_reports(args: argparse.Namespace) -> int:
    config = load(args)
    domain = args.domain.lower().rstrip(".") if args.domain else None
    reports = with_store(config, lambda s: s.list_dmarc_reports(domain))
    if not reports:
        print("no reports")
        return 0
    print(f"{'id':>5}  {'domain':<24} {'from':<24} {'period':<23} {'messages':>8} {'passed':>7}")
    for rep in reports:
        period = f"{_day(rep.begin)}..{_day(rep.end)}"
        print(f"{rep.id:>5}  {rep.domain:<24} {rep.org_name[:24]:<24} {period:<23}"
              f" {rep.messages:>8} {rep.passed:>7}")  # fmt: skip
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    config = load(args)
    found = [r for r in with_store(config, lambda s: s.list_dmarc_reports()) if r.id == args.id]
    if not found:
        raise CLIError(f"no report {args.id}", 1)
    rep = found[0]
    print(f"report {rep.report_id} from {rep.org_name} <{rep.email}> about {rep.domain}")
    print(f"period {_day(rep.begin)} .. {_day(rep.end)}: {rep.messages} messages,"
          f" {rep.passed} passed DMARC")  # fmt: skip
    for rec in json.loads(rep.records):
        print(f"  {rec['source_ip']:<40} count {rec['count']:<6} {rec['disposition'] or '-':<10}"
              f" dkim={rec['dkim'] or '-'} spf={rec['spf'] or '-'}"
              f" from={rec['header_from']}")  # fmt: skip
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from mailwright.app import build_context, send_dmarc_reports

    config = load(args)

    async def go() -> list[Any]:
        ctx = await build_context(config)
        try:
            if ctx.outbound is None:
                raise CLIError("no outbound queue in this build", 1)
            return await send_dmarc_reports(ctx, now=args.now if args.now else time.time())
        finally:
            await ctx.store.close()

    sent = asyncio.run(go())
    for report in sent:
        print(f"queued {report.report_id}: {report.messages} messages to"
              f" {', '.join(report.recipients)}")  # fmt: skip
    if not sent:
        print("no reports due")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.path)
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise CLIError(f"{path}: larger than {MAX_REPORT_BYTES} bytes", 1)
        data = path.read_bytes()
    except OSError as exc:
        raise CLIError(f"{path}: {exc.strerror}", 1) from None
    try:
        if data[:2] == b"\x1f\x8b" or data[:4] == b"PK\x03\x04":
            xml = unpack(path.name, "", data) or b""
        elif data.lstrip()[:1] == b"<":
            xml = data
        else:
            xml = extract_report(data)
        parsed = parse_report_xml(xml)
    except ReportError as exc:
        raise CLIError(f"{path}: {exc}", 1) from None
    config = load(args)
    report = ReceivedDmarcReport(
        parsed.org_name, parsed.report_id, parsed.domain, parsed.begin, parsed.end,
        parsed.email, parsed.messages, parsed.passed, parsed.records,
    )  # fmt: skip

    async def add(store: ReportData) -> bool:
        return await store.add_dmarc_report(report)

    new = with_store(config, add)
    print(("stored" if new else "already stored") + f" report {parsed.report_id} about"
          f" {parsed.domain}: {parsed.messages} messages")  # fmt: skip
    return 0
