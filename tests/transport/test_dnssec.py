"""DNSSEC validated in-process (``[dns] dnssec = "validate"``) against REAL signed zones.

The loopback DNS server serves zones signed in the test with keys generated in the test
(``tests.support.signedzone``): a parent ``test.`` whose DS record is the only trust anchor,
a signed child ``dest.test.`` delegated with DS (NSEC and NSEC3 variants), an unsigned child
``plain.test.`` (delegation without DS: insecure), and a signed child ``bogus.test.`` whose
TLSA record an attacker changed after signing. Then DANE end to end through the queue: a
wrong certificate under a secure TLSA record is refused and the message waits, the TLS-RPT
result is counted; a bogus record defers, never delivering in the clear; an unsigned zone
is opportunistic."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from mailwright.accounts.directory import Directory
from mailwright.config import Config, ConfigError, parse_config
from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.local import LocalDelivery
from mailwright.dns.dnssec import Bogus, Security, Validator, load_anchors
from mailwright.dns.resolver import (
    DNSBogus,
    DNSNameNotFound,
    DNSNoData,
    DNSTempError,
    Resolver,
    from_config,
)
from mailwright.queue.service import Outbound
from mailwright.queue.smtp import OutboundClient, TLSPolicy
from mailwright.store.api import Store
from mailwright.transport.dane import tlsa_for_certificate
from tests.queue.peer import Peer
from tests.support.dnsserver import Behaviour, DNSServer
from tests.support.signedzone import SignedZone
from tests.transport.conftest import PrivateCA
from tests.transport.helpers import FAST, settle

FAKE_TLSA = "3 1 1 " + "ab" * 32


def zone_records(domain: str, tlsa: str) -> list[tuple[str, str, str]]:
    return [("@", "MX", f"10 mx.{domain}."), ("mx", "A", "127.0.0.1"),
            ("_25._tcp.mx", "TLSA", tlsa), ("*.wild", "A", "127.0.0.2")]


class Zones:
    """The test hierarchy, signed, served, with ``anchor`` the trust anchor for ``test.``."""

    def __init__(self, dns: DNSServer, tlsa: str = FAKE_TLSA, *, nsec3: bool = False,
                 opt_out: bool = False) -> None:
        self.dns = dns
        self.top = SignedZone("test.", nsec3=nsec3, opt_out=opt_out, iterations=0,
                              salt=b"\xab\xcd")
        self.dest = SignedZone("dest.test.", zone_records("dest.test", tlsa), nsec3=nsec3,
                               salt=b"\x01\x02", iterations=1)
        self.plain = SignedZone("plain.test.", zone_records("plain.test", tlsa), signed=False)
        self.bogus = SignedZone("bogus.test.", zone_records("bogus.test", tlsa), nsec3=nsec3)
        for child in (self.dest, self.plain, self.bogus):
            self.top.delegate(child)
        self.sign()

    def sign(self) -> None:
        for zone in (self.dest, self.plain, self.bogus, self.top):
            zone.sign()
        # An attacker on the path swaps the pinned key; the old signature stays.
        self.bogus.replace("_25._tcp.mx", "TLSA", "3 1 1 " + "cd" * 32)
        self.dns.zones.clear()
        for zone in (self.top, self.dest, self.plain, self.bogus):
            self.dns.add_zone(zone.zone)

    @property
    def anchor(self) -> str:
        return self.top.anchor()

    def resolver(self) -> Resolver:
        return Resolver(self.dns.nameservers, timeout=0.5, lifetime=1.0,
                        trust_anchors=load_anchors([self.anchor]))


@pytest.fixture(params=["nsec", "nsec3"])
def zones(request: pytest.FixtureRequest, dns_server: DNSServer) -> Iterator[Zones]:
    yield Zones(dns_server, nsec3=request.param == "nsec3")


async def outcome(res: Resolver, name: str, rdtype: str) -> str:
    try:
        records, secure = await res.authenticated(name, rdtype)
    except DNSBogus:
        return "bogus"
    except DNSNameNotFound:
        return "nxdomain"
    except DNSNoData:
        return "nodata"
    assert records
    return "secure" if secure else "insecure"


async def test_dnssec_chain_secure_insecure_bogus(zones: Zones) -> None:
    res = zones.resolver()
    got = {(name, t): await outcome(res, name, t) for name, t in [
        ("dest.test", "MX"), ("mx.dest.test", "A"), ("_25._tcp.mx.dest.test", "TLSA"),
        ("mx.dest.test", "AAAA"), ("_tcp.mx.dest.test", "TLSA"),  # empty non-terminal
        ("_25._tcp.nx.dest.test", "TLSA"),
        ("plain.test", "MX"), ("_25._tcp.mx.plain.test", "TLSA"),
        ("bogus.test", "MX"), ("_25._tcp.mx.bogus.test", "TLSA"),
        ("nothere.test", "MX"), ("mx.plain.test", "AAAA"),
        ("host.wild.dest.test", "A"),  # synthesised from *.wild (RFC 4035 5.3.4)
        ("a.b.wild.dest.test", "A"), ("host.wild.dest.test", "AAAA")]}
    assert got == {
        ("dest.test", "MX"): "secure", ("mx.dest.test", "A"): "secure",
        ("_25._tcp.mx.dest.test", "TLSA"): "secure",
        ("mx.dest.test", "AAAA"): "nodata", ("_tcp.mx.dest.test", "TLSA"): "nodata",
        ("_25._tcp.nx.dest.test", "TLSA"): "nxdomain",
        # RFC 4035 5.2: a delegation proven to have no DS is insecure, records are used as
        # unsigned data (no DANE)
        ("plain.test", "MX"): "insecure", ("_25._tcp.mx.plain.test", "TLSA"): "insecure",
        ("bogus.test", "MX"): "secure", ("_25._tcp.mx.bogus.test", "TLSA"): "bogus",
        ("nothere.test", "MX"): "nxdomain", ("mx.plain.test", "AAAA"): "nodata",
        ("host.wild.dest.test", "A"): "secure", ("a.b.wild.dest.test", "A"): "secure",
        ("host.wild.dest.test", "AAAA"): "nodata",  # through the wildcard (RFC 4035 3.1.3.4)
    }


async def test_dnssec_denials_are_checked(zones: Zones) -> None:
    """An unproven absence is bogus: a record removed by an attacker (the NSEC/NSEC3 chain
    still lists it), a signature stripped, an answer with its RRSIG from another zone."""
    res = zones.resolver()
    zones.dest.zone.delete_rdataset(dns.name.from_text("_25._tcp.mx.dest.test."), "TLSA")
    assert await outcome(res, "_25._tcp.mx.dest.test", "TLSA") == "bogus"
    zones.dest.zone.delete_node(dns.name.from_text("_25._tcp.mx.dest.test."))
    assert await outcome(res, "_25._tcp.mx.dest.test", "TLSA") == "bogus"  # forged NXDOMAIN
    zones.dest.zone.delete_rdataset(dns.name.from_text("mx.dest.test."), "RRSIG", "A")
    assert await outcome(res, "mx.dest.test", "A") == "bogus"  # signature stripped


async def test_dnssec_expired_signatures_and_wrong_anchor_are_bogus(dns_server: DNSServer) -> None:
    zones = Zones(dns_server)
    zones.dest.sign(expired=True)  # fresh keys signed with a validity window in the past
    zones.top.zone.delete_rdataset(dns.name.from_text("dest.test."), "DS")
    zones.top.zone.delete_rdataset(dns.name.from_text("dest.test."), "RRSIG", "DS")
    res = zones.resolver()
    assert await outcome(res, "dest.test", "MX") == "bogus"

    other = SignedZone("test.")
    wrong = Resolver(dns_server.nameservers, timeout=0.5, lifetime=1.0,
                     trust_anchors=load_anchors([other.anchor()]))
    assert await outcome(wrong, "mx.plain.test", "A") == "bogus"  # the chain starts bogus
    # A name under no trust anchor is simply insecure (RFC 4035 4.3).
    dns_server.add("mx.elsewhere.example", "A", "127.0.0.1")
    assert await outcome(wrong, "mx.elsewhere.example", "A") == "insecure"


async def test_dnssec_nsec3_opt_out_delegation_is_insecure(dns_server: DNSServer) -> None:
    # RFC 5155 6, 8.6: with opt-out, an unsigned delegation has no NSEC3 of its own; the
    # covering opt-out span is the proof that it may be insecure.
    zones = Zones(dns_server, nsec3=True, opt_out=True)
    res = zones.resolver()
    assert await outcome(res, "_25._tcp.mx.plain.test", "TLSA") == "insecure"
    assert await outcome(res, "_25._tcp.mx.dest.test", "TLSA") == "secure"


async def test_dnssec_validator_caches_the_chain(dns_server: DNSServer) -> None:
    zones = Zones(dns_server)
    validator = Validator(dns_server.nameservers, load_anchors([zones.anchor]), timeout=0.5)
    name = dns.name.from_text("_25._tcp.mx.dest.test.")
    first = await validator.lookup(name, dns.rdatatype.TLSA)
    assert first.security is Security.SECURE
    used = validator.queries
    await validator.lookup(name, dns.rdatatype.TLSA)
    assert validator.queries == used + 1  # the chain is cached (TTL 300), only the answer
    with pytest.raises(Bogus):
        await validator.lookup(dns.name.from_text("_25._tcp.mx.bogus.test."),
                               dns.rdatatype.TLSA)


def load_config_text(text: str) -> Config:
    return parse_config(tomllib.loads(text), Path("/etc/mailwright/mailwright.toml"))


def test_dnssec_config_keys() -> None:
    text = ('[server]\nhostname = "mail.example.test"\n[dns]\ndnssec = "validate"\n'
            'trust_anchors = ["test. IN DS 1234 13 2 '
            'AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00112233445566778899"]\n')
    config = load_config_text(text)
    assert config.dns.dnssec == "validate" and len(config.dns.trust_anchors) == 1
    assert from_config(config).dnssec
    with pytest.raises(ConfigError, match="trust_anchors"):
        load_config_text(text.replace("IN DS", "IN A"))
    with pytest.raises(ConfigError, match="dnssec"):
        load_config_text(text.replace('"validate"', '"yes"'))
    # Nothing configured: the root zone's anchors (Debian's root.ds, or the built-in ones).
    [root] = load_anchors()
    assert root.name == dns.name.root and {int(ds.key_tag) for ds in root} >= {20326, 38696}  # type: ignore[attr-defined]


# -- DANE through the queue ---------------------------------------------------------------


async def dane_outbound(store: Store, zones: Zones, ca: PrivateCA, port: int) -> Outbound:
    if not await store.has_domain("sender.test"):
        await store.add_domain("sender.test")
        await store.add_account("alice@sender.test", "x")
    client = OutboundClient(zones.resolver(), "mail.sender.test", port=port,
                            tls=TLSPolicy(ca_file=str(ca.path)), dane=True)
    out = Outbound(store, client, hostname="mail.sender.test", owner="node-a", settings=FAST,
                   local=LocalDelivery(store, Directory(store)))
    return out


def message(domain: str) -> bytes:
    return (f"From: alice@sender.test\r\nTo: bob@{domain}\r\nSubject: dane\r\n\r\n"
            "secret\r\n").encode()


async def send(out: Outbound, store: Store, domain: str) -> None:
    await out.enqueue(await stage_bytes(store, message(domain)), "alice@sender.test",
                      [f"bob@{domain}"])
    await out.run_once()


async def test_dane_validated_tlsa_refuses_a_wrong_certificate(
        store: Store, dns_server: DNSServer, ca: PrivateCA) -> None:
    pinned = ca.issue("mx.dest.test")
    wrong = ca.issue("mx.dest.test")  # valid for the name, from a trusted CA, not pinned
    zones = Zones(dns_server, tlsa_for_certificate(pinned.cert).text())
    async with Peer(ssl_context=wrong.server_context()) as peer:
        out = await dane_outbound(store, zones, ca, peer.port)
        await send(out, store, "dest.test")
        assert peer.messages == []
        [entry] = await store.queue_list()
        assert entry.recipients[0].status == "tempfail"
        assert "DANE" in entry.last_error and "no TLSA record" in entry.last_error
    results = await store.tls_results()
    assert [(r.policy_domain, r.policy_type, r.result_type, r.mx_host) for r in results] == [
        ("dest.test", "tlsa", "validation-failure", "mx.dest.test")]

    async with Peer(ssl_context=pinned.server_context()) as peer:
        client = out.client
        assert isinstance(client, OutboundClient)
        client.port = peer.port
        await settle(out)
        assert await store.queue_list() == []
        [got] = peer.messages
        assert got.tls


async def test_dane_bogus_tlsa_defers_never_in_the_clear(
        store: Store, dns_server: DNSServer, ca: PrivateCA) -> None:
    issued = ca.issue("mx.bogus.test")
    zones = Zones(dns_server, tlsa_for_certificate(issued.cert).text())
    async with Peer(ssl_context=issued.server_context()) as peer:
        out = await dane_outbound(store, zones, ca, peer.port)
        await send(out, store, "bogus.test")
        assert peer.messages == [] and peer.connections == 0
        [entry] = await store.queue_list()
        assert entry.recipients[0].status == "tempfail"
        assert "DNSSEC validation failed" in entry.last_error
    results = await store.tls_results()
    assert [(r.policy_type, r.result_type) for r in results] == [("tlsa", "dnssec-invalid")]


async def test_dane_bogus_mx_defers(store: Store, dns_server: DNSServer, ca: PrivateCA) -> None:
    zones = Zones(dns_server)
    zones.dest.replace("@", "MX", "10 mx.bogus.test.")  # redirected, signature kept
    async with Peer() as peer:
        out = await dane_outbound(store, zones, ca, peer.port)
        await send(out, store, "dest.test")
        assert peer.connections == 0
        [entry] = await store.queue_list()
        assert "DNSSEC validation failed" in entry.last_error


async def test_dane_unsigned_zone_is_opportunistic(
        store: Store, dns_server: DNSServer, ca: PrivateCA) -> None:
    issued = ca.issue("mx.plain.test")
    zones = Zones(dns_server)  # plain.test publishes a TLSA record that matches nothing
    async with Peer(ssl_context=issued.server_context()) as peer:
        out = await dane_outbound(store, zones, ca, peer.port)
        await send(out, store, "plain.test")
        assert await store.queue_list() == []
        [got] = peer.messages
        assert got.tls  # STARTTLS as offered, the certificate unchecked (RFC 7672 2.2)


async def test_dnssec_broken_upstream_is_a_temporary_failure(dns_server: DNSServer) -> None:
    zones = Zones(dns_server)
    res = zones.resolver()
    for behaviour in (Behaviour.GARBAGE, Behaviour.SERVFAIL, Behaviour.TIMEOUT):
        dns_server.set_behaviour("_25._tcp.mx.dest.test", behaviour)
        with pytest.raises(DNSTempError) as caught:
            await res.authenticated("_25._tcp.mx.dest.test", "TLSA")
        assert not isinstance(caught.value, DNSBogus)  # unreachable is not forged
    dns_server.clear_behaviour("_25._tcp.mx.dest.test")
    assert await outcome(res, "_25._tcp.mx.dest.test", "TLSA") == "secure"
