"""In-process DNSSEC validation (RFC 4033-4035, NSEC3 RFC 5155, clarifications RFC 6840).

DANE (RFC 7672) may only use TLSA records whose signatures chain up to a trust anchor. With
``[dns] dnssec = "validate"`` Mailwright does not trust any resolver for that: it asks the
configured nameservers with the DO and CD bits (RFC 4035 3.2.1-3.2.2: give us the signatures,
and do not filter what you think is bogus, we decide) and checks everything itself:

* the chain of trust top-down (RFC 4035 5): from the closest configured trust anchor, each
  label below is asked for its DS RRset. A signed DS RRset is a secure zone cut, whose DNSKEY
  RRset must be signed by a key matching one of the DS records; a proven absence of DS at a
  delegation (NS bit, no SOA bit in the NSEC/NSEC3 bitmap, or an NSEC3 opt-out span) makes
  everything below *insecure*; a proven absence at a name that is no delegation goes on down;
* the answer's RRset must be signed by the deepest secure zone found, with a valid signature
  in its validity window; a wildcard-expanded answer also needs the proof that the name itself
  does not exist (RFC 4035 5.3.4, RFC 5155 8.8);
* NXDOMAIN and NODATA must be proven by signed NSEC (RFC 4035 5.4) or NSEC3 (RFC 5155 8.4-8.7)
  records of that zone.

Three outcomes, as RFC 4035 4.3 names them: *secure*, *insecure* (a proven unsigned
delegation, no trust anchor above the name, only unsupported algorithms, or NSEC3 with more
iterations than RFC 9276 3.2 lets a validator accept), *bogus* (anything else: a missing or
broken signature, an unproven absence). Bogus is an exception, ``Bogus``, so no caller can
mistake it for "no record". What the walk learned about each name (zone cut with its keys,
no cut, insecure) is cached for its TTL, at most one hour and ``cache_size`` names.

Only what DANE needs is validated (MX, A/AAAA and TLSA lookups through
``Resolver.authenticated``); other lookups (SPF, DKIM, DMARC) go through the plain resolver.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import dns.asyncquery
import dns.dnssec
import dns.dnssectypes
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zonefile

__all__ = [
    "ROOT_ANCHORS",
    "Bogus",
    "QueryFailed",
    "Security",
    "Validated",
    "Validator",
    "load_anchors",
]

# The IANA root zone KSKs (KSK-2017 and KSK-2024), as Debian's dns-root-data ships them in
# /usr/share/dns/root.ds; used when no anchor is configured and that file is absent.
ROOT_ANCHORS = (
    ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
)
DEBIAN_ROOT_DS = Path("/usr/share/dns/root.ds")

# RFC 8624 3.1 "MUST/RECOMMENDED validate" algorithms dnspython can check (RSASHA1 variants
# included: zones still use them). Anything else at a DS makes the zone insecure (RFC 4035 5.2).
_ALGORITHMS = frozenset({5, 7, 8, 10, 13, 14, 15, 16})
_DIGESTS = frozenset({1, 2, 4})  # RFC 8624 3.3
# RFC 9276 3.2: a validator may treat NSEC3 with many iterations as insecure; 150 is what
# BIND and Unbound settled on after it.
MAX_NSEC3_ITERATIONS = 150
_MAX_CNAMES = 8
_MAX_CACHE_TTL = 3600.0

_NOERROR = dns.rcode.NOERROR
_NXDOMAIN = dns.rcode.NXDOMAIN
_DS = dns.rdatatype.DS
_DNSKEY = dns.rdatatype.DNSKEY
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
_RRSIG = dns.rdatatype.RRSIG
_NSEC = dns.rdatatype.NSEC
_NSEC3 = dns.rdatatype.NSEC3


class Security(Enum):
    SECURE = "secure"
    INSECURE = "insecure"


class Bogus(Exception):
    """The answer should have been signed and provably is not (RFC 4035 4.3 "bogus")."""


class QueryFailed(Exception):
    """No nameserver gave a usable answer (timeout, SERVFAIL, REFUSED): try again later."""


@dataclass(frozen=True, slots=True)
class Validated:
    """One validated lookup: ``rrset`` is None for NXDOMAIN (``rcode``) and NODATA."""

    security: Security
    rcode: int
    rrset: dns.rrset.RRset | None


def load_anchors(records: Iterable[str] = (), file: str = "") -> list[dns.rrset.RRset]:
    """Trust anchors as RRsets of DS or DNSKEY records, from presentation-format lines
    (``"example. IN DS 12345 13 2 ABCD..."``) and/or a zone-format file (root.ds, root.key).
    Nothing given: the Debian root anchor file if present, else ``ROOT_ANCHORS``."""
    lines = [line for line in records if line.strip()]
    text = "\n".join(lines)
    if file:
        text += "\n" + Path(file).read_text(encoding="utf-8")
    if not text.strip():
        text = (DEBIAN_ROOT_DS.read_text(encoding="utf-8") if DEBIAN_ROOT_DS.is_file()
                else "\n".join(ROOT_ANCHORS))
    try:
        rrsets = dns.zonefile.read_rrsets(text, origin=dns.name.root, relativize=False,
                                          default_ttl=0, rdclass=None)
    except dns.exception.DNSException as exc:
        raise ValueError(f"invalid trust anchor ({exc})") from exc
    merged: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
    for rrset in rrsets:
        if rrset.rdtype not in (_DS, _DNSKEY):
            raise ValueError(f"trust anchor {rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}:"
                             " only DS and DNSKEY records can be anchors")
        key = (rrset.name, rrset.rdtype)
        if key in merged:
            for rd in rrset:
                merged[key].add(rd)
        else:
            merged[key] = rrset
    return list(merged.values())


@dataclass(frozen=True, slots=True)
class _Zone:
    """The deepest secure zone above a name (with its validated DNSKEY RRset), or insecure."""

    security: Security
    name: dns.name.Name
    keys: dns.rrset.RRset | None


@dataclass(frozen=True, slots=True)
class _Step:
    """What the walk learned about one name: a secure zone cut (with its keys), no cut, an
    insecure delegation, or that the name does not exist."""

    kind: str  # "cut" | "none" | "insecure" | "nxdomain"
    keys: dns.rrset.RRset | None
    ttl: float


class Validator:
    """Validates answers from ``nameservers`` against ``anchors`` (see the module docstring)."""

    def __init__(self, nameservers: Sequence[tuple[str, int]],
                 anchors: Sequence[dns.rrset.RRset], *, timeout: float = 5.0,
                 cache_size: int = 10_000) -> None:
        if not anchors:
            raise ValueError("DNSSEC validation needs at least one trust anchor")
        self._servers = list(nameservers)
        self._anchors: dict[dns.name.Name, list[dns.rdata.Rdata]] = {}
        for rrset in anchors:
            self._anchors.setdefault(rrset.name, []).extend(rrset)
        self._timeout = timeout
        self._cache_size = cache_size
        self._steps: dict[dns.name.Name, tuple[float, _Step]] = {}
        self.queries = 0  # for tests and figures

    # -- public ---------------------------------------------------------------------------

    async def lookup(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Validated:
        """Ask and validate. Raises ``Bogus`` or ``QueryFailed``."""
        try:
            return await self._lookup(qname, rdtype)
        except (Bogus, QueryFailed):
            raise
        except Exception as exc:  # noqa: BLE001 - a record that trips a parser proves nothing
            raise Bogus(f"{qname}: cannot validate ({type(exc).__name__}: {exc})") from exc

    async def _lookup(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Validated:
        security = Security.SECURE
        name = qname
        for _ in range(_MAX_CNAMES):
            msg = await self._ask(name, rdtype)
            rrset, sigs = _find(msg.answer, name, rdtype)
            if rrset is not None:
                found = await self._positive(msg, name, rrset, sigs)
                return Validated(_weakest(security, found), _NOERROR, rrset)
            cname, csigs = _find(msg.answer, name, _CNAME)
            if cname is None or rdtype == _CNAME:
                found = await self._negative(msg, name, rdtype)
                return Validated(_weakest(security, found), msg.rcode(), None)
            # RFC 4035 5.3: each CNAME of a chain is validated on its own, then its target.
            security = _weakest(security, await self._positive(msg, name, cname, csigs))
            name = cname[0].target  # type: ignore[attr-defined]
        raise Bogus(f"{qname}: CNAME chain longer than {_MAX_CNAMES}")

    # -- answers --------------------------------------------------------------------------

    async def _positive(self, msg: dns.message.Message, name: dns.name.Name,
                        rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None) -> Security:
        zone = await self._zone_of(name)
        if zone.security is Security.INSECURE:
            return Security.INSECURE
        assert zone.keys is not None
        _verify(rrset, sigs, zone.name, zone.keys)
        assert sigs is not None
        owner_labels = len(name) - 1  # without the root label
        expanded = [sig for sig in sigs if int(sig.labels) < owner_labels]  # type: ignore[attr-defined]
        if expanded:
            # RFC 4035 5.3.4 / RFC 5155 8.8: synthesised from a wildcard; the name itself must
            # be proven not to exist, else an attacker could replay the wildcard over a real name.
            labels = int(expanded[0].labels)  # type: ignore[attr-defined]
            proof = _Proof(msg, zone.name, zone.keys)
            proof.wildcard_answer(name, labels)
        return Security.SECURE

    async def _negative(self, msg: dns.message.Message, name: dns.name.Name,
                        rdtype: dns.rdatatype.RdataType) -> Security:
        zone = await self._zone_of(name)
        if zone.security is Security.INSECURE:
            return Security.INSECURE
        assert zone.keys is not None
        proof = _Proof(msg, zone.name, zone.keys)
        if msg.rcode() == _NXDOMAIN:
            return proof.nxdomain(name)
        return proof.nodata(name, rdtype)

    # -- the chain of trust ---------------------------------------------------------------

    def _closest_anchor(self, name: dns.name.Name) -> dns.name.Name | None:
        best: dns.name.Name | None = None
        for anchor in self._anchors:
            if name.is_subdomain(anchor) and (best is None or len(anchor) > len(best)):
                best = anchor
        return best

    async def _zone_of(self, name: dns.name.Name) -> _Zone:
        anchor = self._closest_anchor(name)
        if anchor is None:
            return _Zone(Security.INSECURE, name, None)  # RFC 4035 4.3: no anchor, no proof
        step = await self._step(anchor, None, None)
        if step.kind == "insecure":
            return _Zone(Security.INSECURE, anchor, None)
        zone, keys = anchor, step.keys
        assert keys is not None
        below = name.relativize(anchor).labels if name != anchor else ()
        for i in range(len(below) - 1, -1, -1):
            current = dns.name.Name(below[i:]).derelativize(anchor)
            step = await self._step(current, zone, keys)
            if step.kind == "insecure":
                return _Zone(Security.INSECURE, current, None)
            if step.kind == "nxdomain":
                break  # nothing exists below: the answer comes from `zone`
            if step.kind == "cut":
                zone, keys = current, step.keys
                assert keys is not None
        return _Zone(Security.SECURE, zone, keys)

    async def _step(self, name: dns.name.Name, parent: dns.name.Name | None,
                    parent_keys: dns.rrset.RRset | None) -> _Step:
        now = time.monotonic()
        cached = self._steps.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        if parent is None or parent_keys is None:
            step = await self._anchor_step(name)
        else:
            step = await self._cut_step(name, parent, parent_keys)
        if step.ttl > 0:
            if len(self._steps) >= self._cache_size:
                self._steps.clear()  # crude but bounded; the walk refills what is used
            self._steps[name] = (now + min(step.ttl, _MAX_CACHE_TTL), step)
        return step

    async def _anchor_step(self, name: dns.name.Name) -> _Step:
        anchors = self._anchors[name]
        msg = await self._ask(name, _DNSKEY)
        keys, sigs = _find(msg.answer, name, _DNSKEY)
        if keys is None:
            raise Bogus(f"{name}: no DNSKEY RRset at the trust anchor")
        if all(a.rdtype == _DS for a in anchors) and not _usable_ds(anchors):
            return _Step("insecure", None, 0)
        trusted = [k for k in keys if any(_anchor_matches(name, k, a) for a in anchors)]
        if not trusted:
            raise Bogus(f"{name}: no DNSKEY matches the configured trust anchor")
        _verify(keys, sigs, name, _rrset(name, keys.ttl, trusted, _DNSKEY))
        return _Step("cut", keys, _ttl(keys, sigs))

    async def _cut_step(self, name: dns.name.Name, parent: dns.name.Name,
                        parent_keys: dns.rrset.RRset) -> _Step:
        msg = await self._ask(name, _DS)
        ds, ds_sigs = _find(msg.answer, name, _DS)
        if ds is None:
            cname, csigs = _find(msg.answer, name, _CNAME)
            if cname is not None:  # an alias is no zone cut
                _verify(cname, csigs, parent, parent_keys)
                return _Step("none", None, _ttl(cname, csigs))
            proof = _Proof(msg, parent, parent_keys)
            if msg.rcode() == _NXDOMAIN:
                proof.nxdomain(name)
                return _Step("nxdomain", None, proof.ttl)
            return _Step(proof.no_ds(name), None, proof.ttl)
        # RFC 4035 5.2: the DS RRset is signed by the parent zone ...
        _verify(ds, ds_sigs, parent, parent_keys)
        usable = [d for d in ds if _usable_ds([d])]
        if not usable:
            return _Step("insecure", None, _ttl(ds, ds_sigs))  # only unknown algorithms
        # ... and authenticates a DNSKEY that signs the child's DNSKEY RRset.
        dk_msg = await self._ask(name, _DNSKEY)
        keys, sigs = _find(dk_msg.answer, name, _DNSKEY)
        if keys is None:
            raise Bogus(f"{name}: DS records in {parent} but no DNSKEY RRset")
        trusted = [k for k in keys if any(_anchor_matches(name, k, d) for d in usable)]
        if not trusted:
            raise Bogus(f"{name}: no DNSKEY matches the DS records in {parent}")
        _verify(keys, sigs, name, _rrset(name, keys.ttl, trusted, _DNSKEY))
        return _Step("cut", keys, min(_ttl(ds, ds_sigs), _ttl(keys, sigs)))

    # -- transport ------------------------------------------------------------------------

    async def _ask(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
                   ) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, want_dnssec=True, use_edns=0,
                                       payload=1232)
        # RFC 4035 3.2.2: CD, so that a validating upstream hands over what it finds bogus
        # instead of SERVFAIL; the decision is ours.
        query.flags |= dns.flags.RD | dns.flags.CD
        reasons: list[str] = []
        for host, port in self._servers:
            self.queries += 1
            try:
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, host, timeout=self._timeout, port=port)
            except dns.exception.Timeout:
                reasons.append(f"{host}: timed out")
                continue
            except (dns.exception.DNSException, OSError, EOFError, ValueError) as exc:
                reasons.append(f"{host}: {exc or type(exc).__name__}")
                continue
            if response.rcode() in (_NOERROR, _NXDOMAIN):
                return response
            reasons.append(f"{host}: {dns.rcode.to_text(response.rcode())}")
        shown = dns.rdatatype.to_text(rdtype)
        raise QueryFailed(f"{shown} {name.to_text(omit_final_dot=True)}: "
                          + ("; ".join(reasons) or "no nameserver"))


# -- signatures -----------------------------------------------------------------------------


def _find(section: Sequence[dns.rrset.RRset], name: dns.name.Name,
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


def _rrset(name: dns.name.Name, ttl: int, rdatas: Sequence[dns.rdata.Rdata],
           rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
    for rd in rdatas:
        rrset.add(rd, ttl)
    return rrset


def _verify(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None, signer: dns.name.Name,
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


def _ttl(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None) -> float:
    """How long a validated RRset may be used: its TTL, capped by the signatures' expiry
    (RFC 4035 5.3.3)."""
    ttl = float(rrset.ttl)
    if sigs is not None and len(sigs):
        expiry = max(float(sig.expiration) for sig in sigs)  # type: ignore[attr-defined]
        ttl = min(ttl, max(0.0, expiry - time.time()))
    return ttl


def _usable_ds(records: Iterable[dns.rdata.Rdata]) -> bool:
    return any(int(d.algorithm) in _ALGORITHMS and int(d.digest_type) in _DIGESTS  # type: ignore[attr-defined]
               for d in records if d.rdtype == _DS)


def _anchor_matches(name: dns.name.Name, key: dns.rdata.Rdata, anchor: dns.rdata.Rdata) -> bool:
    if int(key.protocol) != 3 or not int(key.flags) & 0x0100:  # type: ignore[attr-defined]
        return False  # RFC 4034 2.1.1-2.1.2: a zone key with protocol 3
    if anchor.rdtype == _DNSKEY:
        return key.to_digestable() == anchor.to_digestable()
    if int(anchor.algorithm) != int(key.algorithm):  # type: ignore[attr-defined]
        return False
    try:
        digest = dns.dnssectypes.DSDigest.make(int(anchor.digest_type))  # type: ignore[attr-defined]
        made = dns.dnssec.make_ds(name, key, digest)
    except (dns.exception.UnsupportedAlgorithm, ValueError):
        return False
    return bool(made.digest == anchor.digest)  # type: ignore[attr-defined]


def _weakest(a: Security, b: Security) -> Security:
    return Security.INSECURE if Security.INSECURE in (a, b) else Security.SECURE


# -- authenticated denial of existence ------------------------------------------------------


def _types(rd: dns.rdata.Rdata) -> set[int]:
    found: set[int] = set()
    for window, bitmap in rd.windows:  # type: ignore[attr-defined]
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    found.add(window * 256 + i * 8 + bit)
    return found


def _between(low: object, value: object, high: object) -> bool:
    """``low < value < high`` on a ring (the last NSEC/NSEC3 points back to the first)."""
    if low < high:  # type: ignore[operator]
        return bool(low < value < high)  # type: ignore[operator]
    return bool(value > low or value < high)  # type: ignore[operator]


def _common(a: dns.name.Name, b: dns.name.Name) -> dns.name.Name:
    labels = a.fullcompare(b)[2]
    return dns.name.Name(a.labels[len(a) - labels:])


class _Proof:
    """The signed NSEC or NSEC3 records of a negative answer's authority section, checked
    against the zone's keys at construction (a record that does not verify is bogus)."""

    def __init__(self, msg: dns.message.Message, zone: dns.name.Name,
                 keys: dns.rrset.RRset) -> None:
        self.zone = zone
        self.nsec: list[tuple[dns.name.Name, dns.rdata.Rdata]] = []
        self.nsec3: list[tuple[str, dns.rdata.Rdata]] = []
        self.ttl = _MAX_CACHE_TTL
        for rrset in msg.authority:
            if rrset.rdtype not in (_NSEC, _NSEC3):
                continue
            if not rrset.name.is_subdomain(zone):
                raise Bogus(f"{rrset.name} NSEC: outside the zone {zone}")
            _, sigs = _find(msg.authority, rrset.name, rrset.rdtype)
            _verify(rrset, sigs, zone, keys)
            self.ttl = min(self.ttl, _ttl(rrset, sigs))
            for rd in rrset:
                if rrset.rdtype == _NSEC:
                    self.nsec.append((rrset.name, rd))
                elif rrset.name.parent() == zone:
                    self.nsec3.append((rrset.name.labels[0].decode("ascii").upper(), rd))
        if not self.nsec and not self.nsec3:
            raise Bogus(f"negative answer from the signed zone {zone} without NSEC or NSEC3 "
                        "records")

    # ----- NSEC (RFC 4035 5.4, RFC 6840 4.1-4.4)

    def _nsec_at(self, name: dns.name.Name) -> dns.rdata.Rdata | None:
        return next((rd for owner, rd in self.nsec if owner == name), None)

    def _nsec_covering(self, name: dns.name.Name) -> tuple[dns.name.Name, dns.rdata.Rdata] | None:
        for owner, rd in self.nsec:
            if not _between(owner, name, rd.next):  # type: ignore[attr-defined]
                continue
            types = _types(rd)
            if name.is_subdomain(owner) and (_DNAME in types
                                            or (_NS in types and _SOA not in types)):
                continue  # RFC 6840 4.1: a delegation's or DNAME's NSEC proves nothing below
            return owner, rd
        return None

    def _nsec_name_absent(self, name: dns.name.Name) -> dns.name.Name | None:
        """The closest encloser when ``name`` is proven absent, else None."""
        found = self._nsec_covering(name)
        if found is None:
            return None
        owner, rd = found
        a, b = _common(name, owner), _common(name, rd.next)  # type: ignore[attr-defined]
        return a if len(a) >= len(b) else b

    # ----- NSEC3 (RFC 5155 8)

    def _hash(self, name: dns.name.Name) -> str:
        rd = self.nsec3[0][1]
        return dns.dnssec.nsec3_hash(name, rd.salt, int(rd.iterations),  # type: ignore[attr-defined]
                                     int(rd.algorithm)).upper()  # type: ignore[attr-defined]

    def _nsec3_params_ok(self) -> bool:
        """False when the zone's NSEC3 cannot be checked: the answer is then insecure
        (RFC 5155 8.1 unknown algorithm, RFC 9276 3.2 too many iterations)."""
        rd = self.nsec3[0][1]
        return int(rd.algorithm) == 1 and int(rd.iterations) <= MAX_NSEC3_ITERATIONS  # type: ignore[attr-defined]

    def _nsec3_matching(self, name: dns.name.Name) -> dns.rdata.Rdata | None:
        h = self._hash(name)
        return next((rd for owner, rd in self.nsec3 if owner == h), None)

    def _nsec3_covering(self, name: dns.name.Name) -> dns.rdata.Rdata | None:
        h = self._hash(name)
        for owner, rd in self.nsec3:
            nxt = base64.b32hexencode(rd.next).decode("ascii").rstrip("=").upper()  # type: ignore[attr-defined]
            if _between(owner, h, nxt):
                return rd
        return None

    def _closest_encloser(self, name: dns.name.Name
                          ) -> tuple[dns.name.Name, dns.rdata.Rdata] | None:
        """RFC 5155 8.3: the closest encloser (an ancestor with a matching NSEC3) and the
        NSEC3 covering the next closer name."""
        candidate = name
        while candidate != self.zone and candidate.is_subdomain(self.zone):
            parent = candidate.parent()
            match = self._nsec3_matching(parent)
            if match is not None:
                types = _types(match)
                if _DNAME in types or (_NS in types and _SOA not in types):
                    return None  # a delegation or DNAME cannot be a closest encloser here
                cover = self._nsec3_covering(candidate)
                return (parent, cover) if cover is not None else None
            candidate = parent
        return None

    def _wildcard_nodata(self, name: dns.name.Name, rdtype: int) -> bool:
        """RFC 4035 3.1.3.4 / RFC 5155 8.7: the name does not exist, the wildcard that would
        stand for it does, without the type."""
        if self.nsec:
            ce = self._nsec_name_absent(name)
            rd = None if ce is None else self._nsec_at(dns.name.Name((b"*", *ce.labels)))
        else:
            found = self._closest_encloser(name)
            rd = None if found is None else self._nsec3_matching(
                dns.name.Name((b"*", *found[0].labels)))
        if rd is None:
            return False
        types = _types(rd)
        return rdtype not in types and _CNAME not in types

    # ----- the proofs the validator asks for

    def nxdomain(self, name: dns.name.Name) -> Security:
        if self.nsec:
            ce = self._nsec_name_absent(name)
            if ce is not None and (self._nsec_covering(dns.name.Name((b"*", *ce.labels)))
                                   is not None):
                return Security.SECURE  # RFC 4035 5.4: name and wildcard both absent
            raise Bogus(f"{name}: NXDOMAIN not proven by NSEC")
        if not self._nsec3_params_ok():
            return Security.INSECURE
        found = self._closest_encloser(name)
        if found is not None:
            ce, cover = found
            if int(cover.flags) & 1:  # type: ignore[attr-defined]
                return Security.INSECURE  # RFC 5155 9.2: an opt-out span proves nothing
            if self._nsec3_covering(dns.name.Name((b"*", *ce.labels))) is not None:
                return Security.SECURE  # RFC 5155 8.4
        raise Bogus(f"{name}: NXDOMAIN not proven by NSEC3")

    def nodata(self, name: dns.name.Name, rdtype: int) -> Security:
        if self.nsec:
            rd = self._nsec_at(name)
            if rd is not None:
                types = _types(rd)
                if rdtype in types or _CNAME in types:
                    raise Bogus(f"{name}: NSEC says the type exists")
                if rdtype != _DS and _NS in types and _SOA not in types:
                    raise Bogus(f"{name}: parent-side NSEC used to deny {rdtype}")  # 6840 4.4
                return Security.SECURE
            covering = self._nsec_covering(name)
            if covering is not None and covering[1].next.is_subdomain(name):  # type: ignore[attr-defined]
                return Security.SECURE  # an empty non-terminal (RFC 4035 3.1.3.2)
            if self._wildcard_nodata(name, rdtype):
                return Security.SECURE
            raise Bogus(f"{name}: NODATA not proven by NSEC")
        if not self._nsec3_params_ok():
            return Security.INSECURE
        rd = self._nsec3_matching(name)
        if rd is not None:
            types = _types(rd)
            if rdtype in types or _CNAME in types:
                raise Bogus(f"{name}: NSEC3 says the type exists")
            return Security.SECURE  # RFC 5155 8.5
        if rdtype == _DS:
            found = self._closest_encloser(name)
            if found is not None and int(found[1].flags) & 1:  # type: ignore[attr-defined]
                return Security.INSECURE  # RFC 5155 8.6: opt-out, maybe an unsigned child
        if self._wildcard_nodata(name, rdtype):
            return Security.SECURE
        raise Bogus(f"{name}: NODATA not proven by NSEC3")

    def no_ds(self, name: dns.name.Name) -> str:
        """For the walk: "insecure" (a delegation without DS) or "none" (no zone cut here)."""
        if self.nsec:
            rd = self._nsec_at(name)
            if rd is None:
                covering = self._nsec_covering(name)
                if covering is not None and covering[1].next.is_subdomain(name):  # type: ignore[attr-defined]
                    return "none"  # empty non-terminal
                if self._wildcard_nodata(name, _DS):
                    return "none"  # only a wildcard stands for it: no zone cut
                raise Bogus(f"{name}: absence of DS not proven by NSEC")
            types = _types(rd)
        else:
            if not self._nsec3_params_ok():
                return "insecure"
            rd = self._nsec3_matching(name)
            if rd is None:
                found = self._closest_encloser(name)
                if found is not None and int(found[1].flags) & 1:  # type: ignore[attr-defined]
                    return "insecure"  # RFC 5155 8.6
                if self._wildcard_nodata(name, _DS):
                    return "none"
                raise Bogus(f"{name}: absence of DS not proven by NSEC3")
            types = _types(rd)
        if _DS in types or _CNAME in types:
            raise Bogus(f"{name}: the denial of DS lists DS")
        if _SOA in types:
            raise Bogus(f"{name}: DS denied by the child zone, not the parent")
        # RFC 4035 5.2: a proven delegation without DS is an insecure child.
        return "insecure" if _NS in types else "none"

    def wildcard_answer(self, name: dns.name.Name, labels: int) -> None:
        # The wildcard's parent is the closest encloser; the name (NSEC) or the next closer
        # name (NSEC3) must be proven absent.
        next_closer = dns.name.Name(name.labels[len(name) - 2 - labels:])
        if self.nsec:
            if self._nsec_covering(name) is None:
                raise Bogus(f"{name}: wildcard answer without proof that the name is absent")
            return
        if self._nsec3_covering(next_closer) is None:
            raise Bogus(f"{name}: wildcard answer without NSEC3 proof")
