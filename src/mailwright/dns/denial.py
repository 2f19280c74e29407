"""Authenticated denial of existence: the NSEC (RFC 4035 5.4, RFC 6840 4.1-4.4) and NSEC3
(RFC 5155 8) proofs that a name, a type at a name, or a DS record at a delegation does not
exist, checked for ``dns.dnssec.Validator``."""

from __future__ import annotations

import base64

import dns.dnssec
import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from mailwright.dns.signatures import MAX_CACHE_TTL, Bogus, Security, find, usable_ttl, verify

__all__ = ["MAX_NSEC3_ITERATIONS", "Proof"]

# RFC 9276 3.2: a validator may treat NSEC3 with many iterations as insecure; 150 is what
# BIND and Unbound settled on after it.
MAX_NSEC3_ITERATIONS = 150

_DS = dns.rdatatype.DS
_NS = dns.rdatatype.NS
_SOA = dns.rdatatype.SOA
_CNAME = dns.rdatatype.CNAME
_DNAME = dns.rdatatype.DNAME
_NSEC = dns.rdatatype.NSEC
_NSEC3 = dns.rdatatype.NSEC3


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


class Proof:
    """The signed NSEC or NSEC3 records of a negative answer's authority section, checked
    against the zone's keys at construction (a record that does not verify is bogus)."""

    def __init__(self, msg: dns.message.Message, zone: dns.name.Name,
                 keys: dns.rrset.RRset) -> None:
        self.zone = zone
        self.nsec: list[tuple[dns.name.Name, dns.rdata.Rdata]] = []
        self.nsec3: list[tuple[str, dns.rdata.Rdata]] = []
        self.ttl = MAX_CACHE_TTL
        for rrset in msg.authority:
            if rrset.rdtype not in (_NSEC, _NSEC3):
                continue
            if not rrset.name.is_subdomain(zone):
                raise Bogus(f"{rrset.name} NSEC: outside the zone {zone}")
            _, sigs = find(msg.authority, rrset.name, rrset.rdtype)
            verify(rrset, sigs, zone, keys)
            self.ttl = min(self.ttl, usable_ttl(rrset, sigs))
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
