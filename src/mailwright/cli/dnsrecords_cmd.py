"""`mailwright dns-records DOMAIN`: every DNS record to publish, ready for a zone file."""

from __future__ import annotations

import argparse
from typing import Any

from mailwright.cli.common import CLIError, load
from mailwright.mailauth.keys import DkimKeyError, normalize_domain
from mailwright.mailauth.records import render_zone
from mailwright.transport.zone import RecordsError, domain_records


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "dns-records",
        parents=[common],
        help="print the DNS records to publish",
        description="Print MX, SPF, DKIM, DMARC, RFC 6186 SRV, MTA-STS (RFC 8461), TLS-RPT "
        "(RFC 8460) and DANE TLSA (RFC 7672) records for DOMAIN in zone-file syntax.",
    )
    s.add_argument("domain")
    s.add_argument("--dmarc-policy", choices=["none", "quarantine", "reject"], default="reject",
                   help="p= of the DMARC record (default reject)")
    s.set_defaults(func=cmd_dns_records)


def cmd_dns_records(args: argparse.Namespace) -> int:
    config = load(args)
    try:
        domain = normalize_domain(args.domain)
        records, header = domain_records(config, domain, args.dmarc_policy)
    except DkimKeyError as exc:
        raise CLIError(str(exc), 2) from None
    except RecordsError as exc:
        raise CLIError(str(exc), 1) from None
    print(render_zone(records, header=header), end="")
    return 0
