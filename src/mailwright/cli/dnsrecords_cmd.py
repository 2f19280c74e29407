"""`mailwright dns-records DOMAIN`: every DNS record to publish, ready for a zone file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cryptography import x509

from mailwright.cli.common import CLIError, load
from mailwright.mailauth.keys import DkimKeyError, KeyStore, normalize_domain
from mailwright.mailauth.records import DNSRecord, dns_records, render_zone
from mailwright.transport.dane import tlsa_for_certificate
from mailwright.transport.mtasts import configured_policy, policy_id


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
    records = [*records, *transport_records(domain, host, config.tls.cert,
                                              config.mtasts.mode, config.mtasts.max_age)]
    print(render_zone(records, header=header), end="")
    return 0


def transport_records(domain: str, host: str, cert_path: Path | None, mode: str = "testing",
                      max_age: float = 7 * 86400.0) -> list[DNSRecord]:
    """MTA-STS, TLS-RPT and TLSA records: how other servers must send TLS to us. The
    `_mta-sts` id is derived from the very policy the https listener serves (`[mtasts]`)."""
    policy = configured_policy(host, mode, max_age)
    records = [
        DNSRecord(f"_mta-sts.{domain}", "TXT", f'"v=STSv1; id={policy_id(policy)}"',
                  f"MTA-STS (RFC 8461): the policy is served at https://mta-sts.{domain}/"
                  ".well-known/mta-sts.txt (mta-sts." + domain + " must resolve to this "
                  "server and be in its certificate); mode " + mode + ", mx " + host),
        DNSRecord(f"_smtp._tls.{domain}", "TXT",
                  f'"v=TLSRPTv1; rua=mailto:postmaster@{domain}"',
                  "TLS-RPT (RFC 8460): where other servers send their daily TLS reports"),
    ]
    if cert_path is None or not cert_path.exists():
        return records  # no certificate yet: no TLSA record to print
    try:
        cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    except (OSError, ValueError) as exc:
        raise CLIError(f"{cert_path}: cannot read the certificate ({exc})", 1) from None
    tlsa = tlsa_for_certificate(cert)
    records.append(DNSRecord(
        f"_25._tcp.{host}", "TLSA", tlsa.text(),
        "DANE (RFC 7672): DANE-EE, public key, SHA-256; only in a DNSSEC-signed zone; "
        "before a key change publish the new key's record too (docs/transport.md)"))
    return records
