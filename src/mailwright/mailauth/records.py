"""The DNS records an operator publishes for a mail domain, in zone-file syntax.

MX (RFC 5321 5.1), SPF for the domain and for the server's HELO name (RFC 7208), one DKIM key
record per active key (RFC 6376 3.6.2), DMARC (RFC 7489 6.1), and the client autodiscovery SRV
records of RFC 6186 (plus _submissions from RFC 8314 3.3): a service we do not listen for is
published with target "." (RFC 6186 3.4 / RFC 2782: decidedly not available).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .keys import DkimKey, txt_strings

__all__ = ["SRV_SERVICES", "DNSRecord", "dns_records", "render_zone"]

TTL = 3600

#: SRV service label -> (listener protocol key, default port)
SRV_SERVICES: tuple[tuple[str, str, int], ...] = (
    ("_submission._tcp", "submission", 587),
    ("_submissions._tcp", "submissions", 465),
    ("_imap._tcp", "imap", 143),
    ("_imaps._tcp", "imaps", 993),
    ("_pop3._tcp", "pop3", 110),
    ("_pop3s._tcp", "pop3s", 995),
)


@dataclass(frozen=True, slots=True)
class DNSRecord:
    """One resource record: absolute owner name (no final dot), type, rdata in zone syntax."""

    name: str
    rdtype: str
    rdata: str
    comment: str = ""

    def line(self) -> str:
        return f"{self.name}. {TTL} IN {self.rdtype} {self.rdata}"


def dns_records(
    domain: str,
    hostname: str,
    keys: Sequence[DkimKey],
    listening: Iterable[tuple[str, int]] = (),
    *,
    dmarc_policy: str = "reject",
) -> list[DNSRecord]:
    """Every record to publish for ``domain`` served by ``hostname``.

    ``listening`` holds (protocol key, port) of the configured listeners; SRV records point at
    ``hostname`` on those ports.
    """
    domain = domain.lower().rstrip(".")
    host = hostname.lower().rstrip(".")
    ports: dict[str, int] = {}
    for proto, port in listening:
        ports.setdefault(proto, port)
    records = [
        DNSRecord(domain, "MX", f"10 {host}.", "mail for the domain goes to this server"),
        DNSRecord(
            domain,
            "TXT",
            txt_strings("v=spf1 mx -all"),
            "SPF: only the domain's MX hosts send its mail",
        ),
    ]
    if host != domain:
        records.append(
            DNSRecord(host, "TXT", txt_strings("v=spf1 a -all"), "SPF for the server's HELO name")
        )
    for key in keys:
        records.append(
            DNSRecord(
                key.dns_name,
                "TXT",
                txt_strings(key.txt_record()),
                f"DKIM {key.algorithm} key, selector {key.selector}",
            )
        )
    records.append(
        DNSRecord(
            f"_dmarc.{domain}",
            "TXT",
            txt_strings(f"v=DMARC1; p={dmarc_policy}; adkim=r; aspf=r"),
            "DMARC: receivers refuse mail that fails SPF and DKIM alignment",
        )
    )
    for label, proto, _default in SRV_SERVICES:
        srv_port = ports.get(proto)
        if srv_port is None:
            records.append(
                DNSRecord(f"{label}.{domain}", "SRV", "0 0 0 .", f"{proto}: not offered")
            )
        else:
            records.append(
                DNSRecord(f"{label}.{domain}", "SRV", f"0 1 {srv_port} {host}.", f"{proto} for clients")
            )
    return records


def render_zone(records: Sequence[DNSRecord], *, header: Sequence[str] = ()) -> str:
    """Zone-file text (RFC 1035 5.1): comments with ';', absolute names, one record a line."""
    lines = [f"; {text}" for text in header]
    for record in records:
        if record.comment:
            lines.append(f"; {record.comment}")
        lines.append(record.line())
    return "\n".join(lines) + "\n"
