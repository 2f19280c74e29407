"""``[dns] dnssec = "trust-ad"`` against a REAL validating resolver: Debian's unbound, on
loopback, resolving the signed test zones (``tests.transport.test_dnssec.Zones``) from the
loopback DNS server and validating them from the same trust anchor. Its verdicts (the AD bit,
SERVFAIL for bogus) must agree with the in-process validator's, and DANE through the queue
must act on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright.dns.resolver import (
    DNSBogus,
    DNSNameNotFound,
    DNSNoData,
    DNSTempError,
    Resolver,
)
from mailwright.queue.service import Outbound
from mailwright.queue.smtp import OutboundClient
from mailwright.store.api import Store
from mailwright.transport.dane import tlsa_for_certificate
from tests.queue.peer import Peer
from tests.support.dnsserver import DNSServer
from tests.support.unbound import Unbound
from tests.transport.conftest import PrivateCA
from tests.transport.test_dnssec import Zones, dane_outbound, send

CASES = [("dest.test", "MX"), ("mx.dest.test", "A"), ("_25._tcp.mx.dest.test", "TLSA"),
         ("mx.dest.test", "AAAA"), ("_25._tcp.nx.dest.test", "TLSA"),
         ("plain.test", "MX"), ("_25._tcp.mx.plain.test", "TLSA"),
         ("bogus.test", "MX"), ("_25._tcp.mx.bogus.test", "TLSA"),
         ("host.wild.dest.test", "A"), ("host.wild.dest.test", "AAAA"),
         ("mx.plain.test", "AAAA"), ("nothere.test", "MX")]


async def verdict(res: Resolver, name: str, rdtype: str) -> str:
    try:
        records, secure = await res.authenticated(name, rdtype)
    except (DNSBogus, DNSTempError):
        return "bogus"  # unbound answers SERVFAIL for bogus data (RFC 4035 5.5)
    except DNSNameNotFound:
        return "nxdomain"
    except DNSNoData:
        return "nodata"
    assert records
    return "secure" if secure else "insecure"


@pytest.fixture
def unbound_zones(request: pytest.FixtureRequest, dns_server: DNSServer,
                  tmp_path: Path) -> Iterator[tuple[Zones, Unbound]]:
    zones = Zones(dns_server, nsec3=getattr(request, "param", "nsec") == "nsec3")
    with Unbound(tmp_path / "unbound", dns_server, anchors=[zones.anchor], stub="test.") as ub:
        yield zones, ub


def trusting(ub: Unbound) -> Resolver:
    return Resolver(ub.nameservers, timeout=2.0, lifetime=4.0, trust_ad=True)


@pytest.mark.parametrize("unbound_zones", ["nsec", "nsec3"], indirect=True)
async def test_unbound_ad_bit_agrees_with_the_in_process_validator(
        unbound_zones: tuple[Zones, Unbound]) -> None:
    zones, ub = unbound_zones
    by_unbound = {case: await verdict(trusting(ub), *case) for case in CASES}
    in_process = {case: await verdict(zones.resolver(), *case) for case in CASES}
    assert by_unbound == in_process
    assert by_unbound[("_25._tcp.mx.dest.test", "TLSA")] == "secure"
    assert by_unbound[("_25._tcp.mx.plain.test", "TLSA")] == "insecure"
    assert by_unbound[("_25._tcp.mx.bogus.test", "TLSA")] == "bogus"


async def test_unbound_trust_ad_dane_refuses_a_wrong_certificate_and_defers_bogus(
        store: Store, dns_server: DNSServer, ca: PrivateCA, tmp_path: Path) -> None:
    pinned = ca.issue("mx.dest.test")
    wrong = ca.issue("mx.dest.test")
    zones = Zones(dns_server, tlsa_for_certificate(pinned.cert).text())
    with Unbound(tmp_path / "unbound", dns_server, anchors=[zones.anchor], stub="test.") as ub:
        async with Peer(ssl_context=wrong.server_context()) as peer:
            out: Outbound = await dane_outbound(store, zones, ca, peer.port)
            assert isinstance(out.client, OutboundClient)
            out.client.resolver = trusting(ub)  # the trusted local resolver, not our validator
            await send(out, store, "dest.test")
            await send(out, store, "bogus.test")
            assert peer.messages == []
        entries = {e.domain: e for e in await store.queue_list()}
        assert "no TLSA record" in entries["dest.test"].last_error
        assert "SERVFAIL" in entries["bogus.test"].last_error
    results = {(r.policy_domain, r.result_type) for r in await store.tls_results()}
    assert results == {("dest.test", "validation-failure"), ("bogus.test", "dnssec-invalid")}
