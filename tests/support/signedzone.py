"""Real DNSSEC-signed zones for tests, made with dnspython: keys generated in the test, zones
signed with NSEC (``dns.dnssec.sign_zone``) or NSEC3 (hashed chain built here, since dnspython's
signer does not do NSEC3 yet), served by ``tests.support.dnsserver.DNSServer.add_zone``.

Usage::

    parent = SignedZone("test.", [("dest", "NS", "ns.dest.test.")])
    child = SignedZone("dest.test.", [("@", "MX", "10 mx.dest.test."), ...], nsec3=True)
    parent.delegate(child)          # DS records for the child, in the parent
    for zone in (child, parent):    # children first: the parent signs the DS set
        zone.sign()
    dns.add_zone(parent.zone); dns.add_zone(child.zone)
    anchor = parent.anchor()        # "test. IN DS ..." for [dns] trust_anchors
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.NSEC3PARAM
import dns.rdtypes.util
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["SignedZone"]

_ECDSA = dns.dnssec.Algorithm.ECDSAP256SHA256


class SignedZone:
    """One zone: ``records`` are (relative name, type, rdata text); ``ttl`` for all."""

    def __init__(self, origin: str, records: Sequence[tuple[str, str, str]] = (), *,
                 ttl: int = 300, nsec3: bool = False, iterations: int = 0,
                 salt: bytes = b"", opt_out: bool = False, signed: bool = True) -> None:
        self.origin = dns.name.from_text(origin)
        self.ttl = ttl
        self.nsec3, self.iterations, self.salt, self.opt_out = nsec3, iterations, salt, opt_out
        self.signed = signed
        self.zone = dns.zone.Zone(self.origin, relativize=False)
        self.add("@", "SOA", f"ns.{origin} hostmaster.{origin} 1 3600 600 86400 {ttl}")
        self.add("@", "NS", f"ns.{origin}")
        for name, rdtype, text in records:
            self.add(name, rdtype, text)
        # A key-signing key (SEP flag) and a zone-signing key, as real zones have.
        self.ksk_private = ec.generate_private_key(ec.SECP256R1())
        self.zsk_private = ec.generate_private_key(ec.SECP256R1())
        self.ksk = dns.dnssec.make_dnskey(self.ksk_private.public_key(), _ECDSA,
                                          flags=dns.dnssec.Flag.ZONE | dns.dnssec.Flag.SEP)
        self.zsk = dns.dnssec.make_dnskey(self.zsk_private.public_key(), _ECDSA,
                                          flags=dns.dnssec.Flag.ZONE)

    def _name(self, name: str) -> dns.name.Name:
        return self.origin if name == "@" else dns.name.from_text(name, origin=self.origin)

    def add(self, name: str, rdtype: str, text: str) -> None:
        owner = self._name(name)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=self.origin,
                                    relativize=False)
        rdataset = self.zone.find_rdataset(owner, rdata.rdtype, create=True)
        rdataset.add(rdata, self.ttl)

    def replace(self, name: str, rdtype: str, text: str) -> None:
        """Change an RRset after signing, keeping the old signatures: what an attacker on the
        path would do. The answer is then bogus."""
        owner = self._name(name)
        node = self.zone.find_node(owner)
        rdataset = node.find_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        rdataset.clear()
        rdataset.add(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=self.origin,
                                         relativize=False), self.ttl)

    def delegate(self, child: SignedZone) -> None:
        """NS (and, for a signed child, DS) records for ``child`` in this zone."""
        rel = child.origin.relativize(self.origin).to_text()
        self.add(rel, "NS", f"ns.{child.origin}")
        if child.signed:
            ds = dns.dnssec.make_ds(child.origin, child.ksk, "SHA256")
            self.add(rel, "DS", ds.to_text())

    def anchor(self) -> str:
        """The zone's trust anchor as a DS record in presentation form."""
        ds = dns.dnssec.make_ds(self.origin, self.ksk, "SHA256")
        return f"{self.origin} IN DS {ds.to_text()}"

    def sign(self, *, expired: bool = False) -> None:
        if not self.signed:
            return
        now = int(time.time())
        inception, expiration = ((now - 7200, now - 3600) if expired
                                 else (now - 3600, now + 86400))
        keys = [(self.ksk_private, self.ksk), (self.zsk_private, self.zsk)]
        if not self.nsec3:
            dns.dnssec.sign_zone(self.zone, keys=keys, inception=inception,
                                 expiration=expiration, dnskey_ttl=self.ttl)
            return
        with self.zone.writer() as txn:
            for _, key in keys:
                txn.add(self.origin, self.ttl, key)
            txn.add(self.origin, self.ttl, dns.rdtypes.ANY.NSEC3PARAM.NSEC3PARAM(
                dns.rdataclass.IN, dns.rdatatype.NSEC3PARAM, 1, 0, self.iterations, self.salt))
            self._add_nsec3(txn)
            signer = dns.dnssec.default_rrset_signer
            for name in list(txn.iterate_names()):
                cut = self._below_cut(txn, name)
                for rdataset in list(txn.get_node(name).rdatasets):  # type: ignore[union-attr]
                    if rdataset.rdtype == dns.rdatatype.RRSIG:
                        continue
                    if cut and rdataset.rdtype not in (dns.rdatatype.DS, dns.rdatatype.NSEC3):
                        continue  # delegation NS and glue are not signed (RFC 4035 2.2)
                    rrset = dns.rrset.from_rdata(name, rdataset.ttl, *rdataset)
                    signer(txn, rrset, signer=self.origin,
                           ksks=[keys[0]], zsks=[keys[1]], inception=inception,
                           expiration=expiration)

    def _below_cut(self, txn: dns.zone.Transaction, name: dns.name.Name) -> bool:
        probe = name
        while probe != self.origin:
            if txn.get(probe, dns.rdatatype.NS) is not None:
                return True
            probe = probe.parent()
        return False

    def _add_nsec3(self, txn: dns.zone.Transaction) -> None:
        # RFC 5155 7.1: every owner name, and every empty non-terminal, gets an NSEC3 record;
        # with opt-out, insecure delegations (NS without DS) get none.
        owners: dict[dns.name.Name, set[int]] = {}
        for name in list(txn.iterate_names()):
            node = txn.get_node(name)
            assert node is not None
            types = {int(rds.rdtype) for rds in node.rdatasets}
            cut = name != self.origin and dns.rdatatype.NS in types
            if self._below_cut(txn, name.parent()) if name != self.origin else False:
                continue  # glue
            if cut and self.opt_out and dns.rdatatype.DS not in types:
                continue
            if not cut or dns.rdatatype.DS in types:
                types.add(dns.rdatatype.RRSIG)
            owners[name] = types
            probe = name
            while probe != self.origin:
                probe = probe.parent()
                owners.setdefault(probe, set())
        hashed = sorted((dns.dnssec.nsec3_hash(n, self.salt, self.iterations, 1), t)
                        for n, t in owners.items())
        for i, (digest, types) in enumerate(hashed):
            following = hashed[(i + 1) % len(hashed)][0]
            rdata = dns.rdtypes.ANY.NSEC3.NSEC3(
                dns.rdataclass.IN, dns.rdatatype.NSEC3, 1, 1 if self.opt_out else 0,
                self.iterations, self.salt, base64.b32hexdecode(following),
                dns.rdtypes.util.Bitmap.from_rdtypes(sorted(types)).windows)  # type: ignore[arg-type]
            owner = dns.name.Name((digest.lower().encode(), *self.origin.labels))
            txn.add(owner, self.ttl, rdata)
