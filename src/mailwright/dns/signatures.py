"""DNSSEC signature checks shared by the validator (``dns.dnssec``) and the denial-of-existence
proofs (``dns.denial``): finding an RRset and its RRSIGs in a response section, verifying them
with a zone's keys (RFC 4035 5.3), how long a validated RRset may be used, and the two verdicts
a check can give besides "insecure": secure, or ``Bogus`` raised."""

from __future__ import annotations

import time
from collections.abc import Sequence
from enum import Enum

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset

__all__ = ["MAX_CACHE_TTL", "Bogus", "Security", "find", "make_rrset", "usable_ttl", "verify"]

MAX_CACHE_TTL = 3600.0
_RRSIG = dns.rdatatype.RRSIG


class Security(Enum):
    SECURE = "secure"
    INSECURE = "insecure"


class Bogus(Exception):
    """The answer should have been signed and provably is not (RFC 4035 4.3 "bogus")."""



def find(section: Sequence[dns.rrset.RRset], name: dns.name.Name,
          rdtype: dns.rdatatype.RdataType) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]:
    found = sigs = None
    for rrset in section:
        if rrset.name != name:
            continue
        if rrset.rdtype == rdtype:
            found = rrset
        elif rrset.rdtype == _RRSIG and rrset.covers == rdtype:
            sigs = rrset
    return found, sigs


def make_rrset(name: dns.name.Name, ttl: int, rdatas: Sequence[dns.rdata.Rdata],
           rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
    for rd in rdatas:
        rrset.add(rd, ttl)
    return rrset


def verify(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None, signer: dns.name.Name,
            keys: dns.rrset.RRset) -> None:
    shown = f"{rrset.name.to_text(omit_final_dot=True)} {dns.rdatatype.to_text(rrset.rdtype)}"
    if sigs is None or not len(sigs):
        raise Bogus(f"{shown}: no signature (RRSIG) from the signed zone {signer}")
    if not any(sig.signer == signer for sig in sigs):  # type: ignore[attr-defined]
        raise Bogus(f"{shown}: signed by {sigs[0].signer}, not by its zone {signer}")  # type: ignore[attr-defined]
    # RFC 4034 2.1.1: only zone keys (flag bit 7, protocol 3) may sign the zone's data.
    zone_keys = [k for k in keys if int(k.flags) & 0x0100 and int(k.protocol) == 3]  # type: ignore[attr-defined]
    if not zone_keys:
        raise Bogus(f"{shown}: {signer} has no zone key")
    keyset = dns.rdataset.from_rdata_list(keys.ttl, zone_keys)
    try:
        # RFC 4035 5.3: one valid RRSIG by a key of the zone, within its validity period.
        dns.dnssec.validate(rrset, sigs, {signer: keyset}, now=time.time())
    except (dns.exception.ValidationFailure, dns.exception.UnsupportedAlgorithm) as exc:
        raise Bogus(f"{shown}: {exc}") from exc


def usable_ttl(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None) -> float:
    """How long a validated RRset may be used: its TTL, capped by the signatures' expiry
    (RFC 4035 5.3.3)."""
    ttl = float(rrset.ttl)
    if sigs is not None and len(sigs):
        expiry = max(float(sig.expiration) for sig in sigs)  # type: ignore[attr-defined]
        ttl = min(ttl, max(0.0, expiry - time.time()))
    return ttl
