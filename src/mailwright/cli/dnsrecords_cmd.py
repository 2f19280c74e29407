"""`mailwright dns-records DOMAIN`: every DNS record to publish, ready for a zone file."""

from __future__ import annotations

import argparse
from typing import Any

from mailwright.cli.common import CLIError, load
from mailwright.mailauth.keys import DkimKeyError, KeyStore, normalize_domain
from mailwright.mailauth.records import dns_records, render_zone


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "dns-records",
        parents=[common],
        help="print the DNS records to publish",
        description="Print MX, SPF, DKIM, DMARC and RFC 6186 SRV records for DOMAIN in "
        "zone-file syntax.",
    )
    s.add_argument("domain")
    s.add_argument("--dmarc-policy", choices=["none", "quarantine", "reject"], default="reject",
                   help="p= of the DMARC record (default reject)")
    s.set_defaults(func=cmd_dns_records)


def cmd_dns_records(args: argparse.Namespace) -> int:
    config = load(args)
    try:
        domain = normalize_domain(args.domain)
        keys = KeyStore(config.server.data_dir).keys(domain)
    except DkimKeyError as exc:
        raise CLIError(str(exc), 2) from None
    listening = [(lst.protocol, lst.port) for lst in config.listeners]
    host = config.server.hostname
    header = [
        f"DNS records for {domain}, served by {host}",
        f"also publish address records for the server itself, e.g. {host}. IN A <public IPv4>",
        f"and ask the address owner for reverse DNS (PTR) naming {host} (RFC 5321 4.1.4)",
    ]
    if not keys:
        header.append(f"no DKIM key yet: run `mailwright dkim generate {domain}` and print again")
    records = dns_records(
        domain, config.server.hostname, keys, listening, dmarc_policy=args.dmarc_policy
    )
    print(render_zone(records, header=header), end="")
    return 0
