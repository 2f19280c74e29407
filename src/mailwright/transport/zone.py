"""Every DNS record a domain served by this server should publish, from the configuration:
what `mailwright dns-records` prints and the web interface's DNS check looks up."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from mailwright.config import Config
from mailwright.mailauth.keys import KeyStore
from mailwright.mailauth.records import DNSRecord, dns_records
from mailwright.transport.dane import tlsa_for_certificate
from mailwright.transport.mtasts import configured_policy, policy_id


class RecordsError(Exception):
    """A record cannot be derived (the certificate is unreadable); `str()` says why."""


def domain_records(config: Config, domain: str,
                   dmarc_policy: str = "reject") -> tuple[list[DNSRecord], list[str]]:
    """The records for `domain` (normalized), and notes for the operator.

    Raises `mailauth.keys.DkimKeyError` for a bad domain name, `RecordsError` as above.
    """
    keys = KeyStore(config.server.data_dir).keys(domain)
    host = config.server.hostname
    notes = [
        f"DNS records for {domain}, served by {host}",
        f"also publish address records for the server itself, e.g. {host}. IN A <public IPv4>",
        f"and ask the address owner for reverse DNS (PTR) naming {host} (RFC 5321 4.1.4)",
    ]
    if not keys:
        notes.append(f"no DKIM key yet: run `mailwright dkim generate {domain}` and print again")
    listening = [(lst.protocol, lst.port) for lst in config.listeners]
    records = dns_records(domain, host, keys, listening, dmarc_policy=dmarc_policy)
    records += transport_records(domain, host, config.tls.cert, config.mtasts.mode,
                                 config.mtasts.max_age)
    return records, notes


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
        raise RecordsError(f"{cert_path}: cannot read the certificate ({exc})") from None
    tlsa = tlsa_for_certificate(cert)
    records.append(DNSRecord(
        f"_25._tcp.{host}", "TLSA", tlsa.text(),
        "DANE (RFC 7672): DANE-EE, public key, SHA-256; only in a DNSSEC-signed zone; "
        "before a key change publish the new key's record too (docs/transport.md)"))
    return records
