"""DANE for SMTP (RFC 7672): TLSA records at ``_25._tcp.MXHOST`` pin the MX host's certificate.

Rules applied here:

* TLSA records count only when the answer is DNSSEC-authenticated (RFC 7672 2.2), which
  ``Resolver.authenticated`` reports (in-process validation, or a trusted validating resolver's
  AD bit); so must the MX RRset that named the host be (2.2.1), else the host name itself could
  be forged. A bogus answer is a temporary failure (``DNSBogus``), never "no records";
* usages DANE-EE(3) and DANE-TA(2) are used; PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP
  (3.1.3) and ignored. A secure RRset with no usable record means TLS without authentication
  (2.2: still encrypted, as the domain asked for TLS);
* DANE-EE(3) matches the server's own certificate, by full certificate (selector 0) or public
  key (SubjectPublicKeyInfo, selector 1), exact (0), SHA-256 (1) or SHA-512 (2); no name, expiry
  or chain check applies (3.1.1);
* DANE-TA(2) matches a certificate of the chain the server sent, that issues (directly or
  through the chain) the server's certificate, whose names must then include the MX host name
  (3.2.2) and which must be within its validity period.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailwright.dns.resolver import DNSError, DNSPermanentError, Resolver

__all__ = ["DaneLookup", "TLSARecord", "lookup_tlsa", "match_chain", "tlsa_for_certificate"]

DANE_TA = 2
DANE_EE = 3


@dataclass(frozen=True, slots=True)
class TLSARecord:
    usage: int
    selector: int
    mtype: int
    data: bytes

    @property
    def usable(self) -> bool:
        return (self.usage in (DANE_TA, DANE_EE) and self.selector in (0, 1)
                and self.mtype in (0, 1, 2))

    def text(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data.hex()}"


@dataclass(frozen=True, slots=True)
class DaneLookup:
    """``records``: the usable TLSA records (empty: DANE does not authenticate this host);
    ``secure``: the TLSA RRset was authenticated and present (TLS is then mandatory);
    ``error``: a temporary failure that must delay delivery (a secure zone that cannot answer,
    RFC 7672 2.2), with the TLS-RPT result type ``dnssec-invalid``."""

    records: tuple[TLSARecord, ...] = ()
    secure: bool = False
    error: str = ""


async def lookup_tlsa(resolver: Resolver, host: str, port: int = 25) -> DaneLookup:
    """The TLSA records for one MX host, if DNSSEC says they are genuine."""
    name = f"_{port}._tcp.{host}"
    try:
        rdatas, secure = await resolver.authenticated(name, "TLSA")
    except DNSPermanentError:
        return DaneLookup()  # no TLSA records: no DANE
    except DNSError as exc:
        # RFC 7672 2.2: a lookup failure for a host in a signed zone is not "no TLSA" (that
        # would let an attacker downgrade): delivery to this host waits.
        return DaneLookup(error=f"TLSA lookup for {name} failed: {exc.reason}")
    if not secure:
        return DaneLookup()
    records = tuple(
        TLSARecord(int(rd.usage), int(rd.selector), int(rd.mtype), bytes(rd.cert))  # type: ignore[attr-defined]
        for rd in rdatas
    )
    return DaneLookup(tuple(r for r in records if r.usable), True)


def _selected(cert: x509.Certificate, selector: int) -> bytes:
    if selector == 0:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def _digest(data: bytes, mtype: int) -> bytes:
    if mtype == 1:
        return hashlib.sha256(data).digest()
    if mtype == 2:
        return hashlib.sha512(data).digest()
    return data


def _matches(record: TLSARecord, cert: x509.Certificate) -> bool:
    return _digest(_selected(cert, record.selector), record.mtype) == record.data


def tlsa_for_certificate(cert: x509.Certificate, usage: int = DANE_EE, selector: int = 1,
                         mtype: int = 1) -> TLSARecord:
    """The TLSA record (by default "3 1 1") that pins ``cert``, for ``dns-records``."""
    return TLSARecord(usage, selector, mtype, _digest(_selected(cert, selector), mtype))


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [n.lower() for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(
            x509.oid.NameOID.COMMON_NAME)]


def _name_ok(cert: x509.Certificate, host: str) -> bool:
    host = host.lower().rstrip(".")
    for name in _names(cert):
        if name == host:
            return True
        if name.startswith("*.") and host.partition(".")[2] == name[2:] and "." in name[2:]:
            return True
    return False


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except Exception:  # noqa: BLE001 - any failure (signature, key type) means "not issued"
        return False
    return True


def match_chain(records: Sequence[TLSARecord], chain_der: Sequence[bytes], host: str,
                now: dt.datetime | None = None) -> str | None:
    """None when the server's chain satisfies one usable record, else why not (for the log and
    TLS-RPT). ``chain_der[0]`` is the server's certificate."""
    if not chain_der:
        return "the server sent no certificate"
    try:
        chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    except ValueError as exc:
        return f"unparseable certificate ({exc})"
    leaf = chain[0]
    when = now or dt.datetime.now(dt.UTC)
    for record in records:
        if record.usage == DANE_EE and _matches(record, leaf):
            return None  # RFC 7672 3.1.1: no further checks
    for record in records:
        if record.usage != DANE_TA:
            continue
        # Walk up from the leaf while each certificate is issued by the next one sent.
        path = [leaf]
        for candidate in chain[1:]:
            if not _issued_by(path[-1], candidate):
                break
            path.append(candidate)
        anchor = next((c for c in path[1:] if _matches(record, c)), None)
        if anchor is None:
            continue
        for cert in path[: path.index(anchor)]:
            if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
                return f"certificate {cert.subject.rfc4514_string()} is outside its validity"
        if not _name_ok(leaf, host):
            return f"the certificate does not name {host} (DANE-TA, RFC 7672 3.2.2)"
        return None
    shown = ", ".join(r.text()[:20] + "..." for r in records[:3])
    return f"no TLSA record ({shown}) matches the certificate chain"
