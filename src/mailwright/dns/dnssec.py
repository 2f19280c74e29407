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

The signature checks are in ``dns.signatures``, the NSEC/NSEC3 proofs in ``dns.denial``.
Only what DANE needs is validated (MX, A/AAAA and TLSA lookups through
``Resolver.authenticated``); other lookups (SPF, DKIM, DMARC) go through the plain resolver.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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

from mailwright.dns.denial import Proof
from mailwright.dns.signatures import (
    MAX_CACHE_TTL,
    Bogus,
    Security,
    find,
    make_rrset,
    usable_ttl,
    verify,
)

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
_MAX_CNAMES = 8

_NOERROR = dns.rcode.NOERROR
_NXDOMAIN = dns.rcode.NXDOMAIN
_DS = dns.rdatatype.DS
_DNSKEY = dns.rdatatype.DNSKEY
_CNAME = dns.rdatatype.CNAME


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
            rrset, sigs = find(msg.answer, name, rdtype)
            if rrset is not None:
                found = await self._positive(msg, name, rrset, sigs)
                return Validated(_weakest(security, found), _NOERROR, rrset)
            cname, csigs = find(msg.answer, name, _CNAME)
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
        verify(rrset, sigs, zone.name, zone.keys)
        assert sigs is not None
        owner_labels = len(name) - 1  # without the root label
        expanded = [sig for sig in sigs if int(sig.labels) < owner_labels]  # type: ignore[attr-defined]
        if expanded:
            # RFC 4035 5.3.4 / RFC 5155 8.8: synthesised from a wildcard; the name itself must
            # be proven not to exist, else an attacker could replay the wildcard over a real name.
            labels = int(expanded[0].labels)  # type: ignore[attr-defined]
            proof = Proof(msg, zone.name, zone.keys)
            proof.wildcard_answer(name, labels)
        return Security.SECURE

    async def _negative(self, msg: dns.message.Message, name: dns.name.Name,
                        rdtype: dns.rdatatype.RdataType) -> Security:
        zone = await self._zone_of(name)
        if zone.security is Security.INSECURE:
            return Security.INSECURE
        assert zone.keys is not None
        proof = Proof(msg, zone.name, zone.keys)
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
            self._steps[name] = (now + min(step.ttl, MAX_CACHE_TTL), step)
        return step

    async def _anchor_step(self, name: dns.name.Name) -> _Step:
        anchors = self._anchors[name]
        msg = await self._ask(name, _DNSKEY)
        keys, sigs = find(msg.answer, name, _DNSKEY)
        if keys is None:
            raise Bogus(f"{name}: no DNSKEY RRset at the trust anchor")
        if all(a.rdtype == _DS for a in anchors) and not _usable_ds(anchors):
            return _Step("insecure", None, 0)
        trusted = [k for k in keys if any(_anchor_matches(name, k, a) for a in anchors)]
        if not trusted:
            raise Bogus(f"{name}: no DNSKEY matches the configured trust anchor")
        verify(keys, sigs, name, make_rrset(name, keys.ttl, trusted, _DNSKEY))
        return _Step("cut", keys, usable_ttl(keys, sigs))

    async def _cut_step(self, name: dns.name.Name, parent: dns.name.Name,
                        parent_keys: dns.rrset.RRset) -> _Step:
        msg = await self._ask(name, _DS)
        ds, ds_sigs = find(msg.answer, name, _DS)
        if ds is None:
            cname, csigs = find(msg.answer, name, _CNAME)
            if cname is not None:  # an alias is no zone cut
                verify(cname, csigs, parent, parent_keys)
                return _Step("none", None, usable_ttl(cname, csigs))
            proof = Proof(msg, parent, parent_keys)
            if msg.rcode() == _NXDOMAIN:
                proof.nxdomain(name)
                return _Step("nxdomain", None, proof.ttl)
            return _Step(proof.no_ds(name), None, proof.ttl)
        # RFC 4035 5.2: the DS RRset is signed by the parent zone ...
        verify(ds, ds_sigs, parent, parent_keys)
        usable = [d for d in ds if _usable_ds([d])]
        if not usable:
            return _Step("insecure", None, usable_ttl(ds, ds_sigs))  # only unknown algorithms
        # ... and authenticates a DNSKEY that signs the child's DNSKEY RRset.
        dk_msg = await self._ask(name, _DNSKEY)
        keys, sigs = find(dk_msg.answer, name, _DNSKEY)
        if keys is None:
            raise Bogus(f"{name}: DS records in {parent} but no DNSKEY RRset")
        trusted = [k for k in keys if any(_anchor_matches(name, k, d) for d in usable)]
        if not trusted:
            raise Bogus(f"{name}: no DNSKEY matches the DS records in {parent}")
        verify(keys, sigs, name, make_rrset(name, keys.ttl, trusted, _DNSKEY))
        return _Step("cut", keys, min(usable_ttl(ds, ds_sigs), usable_ttl(keys, sigs)))

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


