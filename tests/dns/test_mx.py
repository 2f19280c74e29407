from __future__ import annotations

import ipaddress
import random

import pytest

from mailwright.dns.mx import MXHost, RouteError, host_addresses, route
from mailwright.dns.resolver import DNSNameNotFound, DNSTempError, Resolver
from tests.support.dnsserver import Behaviour, DNSServer


def make_resolver(server: DNSServer) -> Resolver:
    return Resolver(server.nameservers, timeout=0.3, lifetime=0.6)


async def test_mx_sorted_by_preference(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "MX", "30 c.example.test.", "10 a.example.test.",
                   "20 b.example.test.")
    hosts = await route(make_resolver(dns_server), "example.test")
    assert [h.name for h in hosts] == ["a.example.test", "b.example.test", "c.example.test"]
    assert [h.preference for h in hosts] == [10, 20, 30]


async def test_mx_equal_preference_is_shuffled(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "MX", "10 a.example.test.", "10 b.example.test.",
                   "5 first.example.test.")
    resolver = make_resolver(dns_server)
    rng = random.Random(1)
    orders = set()
    for _ in range(20):
        hosts = await route(resolver, "example.test", rng=rng)
        assert hosts[0].name == "first.example.test"
        orders.add(tuple(h.name for h in hosts[1:]))
    assert orders == {("a.example.test", "b.example.test"), ("b.example.test", "a.example.test")}


async def test_mx_implicit_when_no_mx(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "A", "192.0.2.7")
    dns_server.add("example.test", "AAAA", "2001:db8::7")
    hosts = await route(make_resolver(dns_server), "example.test")
    assert hosts == [
        MXHost("example.test", 0, implicit=True,
               addresses=(ipaddress.ip_address("192.0.2.7"), ipaddress.ip_address("2001:db8::7")))
    ]


async def test_mx_no_mx_and_no_address_is_permanent(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "TXT", "only text")
    with pytest.raises(RouteError) as info:
        await route(make_resolver(dns_server), "example.test")
    assert not info.value.temporary
    assert info.value.status == "5.1.2"


async def test_mx_null_mx_is_permanent_5_1_10(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "MX", "0 .")
    dns_server.add("example.test", "A", "192.0.2.7")
    with pytest.raises(RouteError) as info:
        await route(make_resolver(dns_server), "example.test")
    assert not info.value.temporary
    assert info.value.status == "5.1.10"
    assert "null MX" in info.value.text


async def test_mx_nxdomain_is_permanent(dns_server: DNSServer) -> None:
    with pytest.raises(RouteError) as info:
        await route(make_resolver(dns_server), "nowhere.test")
    assert (info.value.temporary, info.value.status) == (False, "5.1.2")


@pytest.mark.parametrize("behaviour", [Behaviour.SERVFAIL, Behaviour.TIMEOUT])
async def test_mx_dns_failure_is_temporary(dns_server: DNSServer, behaviour: Behaviour) -> None:
    dns_server.add("example.test", "MX", "10 a.example.test.")
    dns_server.set_behaviour("example.test", behaviour)
    with pytest.raises(RouteError) as info:
        await route(make_resolver(dns_server), "example.test")
    assert (info.value.temporary, info.value.status) == (True, "4.4.3")


async def test_mx_fallback_address_failure_is_temporary(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "TXT", "x")
    dns_server.set_behaviour("example.test", Behaviour.SERVFAIL, rdtype="A")
    dns_server.set_behaviour("example.test", Behaviour.SERVFAIL, rdtype="AAAA")
    with pytest.raises(RouteError) as info:
        await route(make_resolver(dns_server), "example.test")
    assert info.value.temporary


async def test_mx_internationalised_domain(dns_server: DNSServer) -> None:
    dns_server.add("xn--mnchen-3ya.test", "MX", "10 mx.xn--mnchen-3ya.test.")
    hosts = await route(make_resolver(dns_server), "München.test")
    assert [h.name for h in hosts] == ["mx.xn--mnchen-3ya.test"]


async def test_mx_bad_idna_is_permanent(dns_server: DNSServer) -> None:
    with pytest.raises(RouteError) as info:
        await route(make_resolver(dns_server), "a\u200db.test")
    assert not info.value.temporary


async def test_mx_domain_literal(dns_server: DNSServer) -> None:
    hosts = await route(make_resolver(dns_server), "[127.0.0.1]")
    assert hosts[0].addresses == (ipaddress.ip_address("127.0.0.1"),)
    hosts = await route(make_resolver(dns_server), "[IPv6:::1]")
    assert hosts[0].addresses == (ipaddress.ip_address("::1"),)
    assert dns_server.queries == []


async def test_mx_host_addresses(dns_server: DNSServer) -> None:
    dns_server.add("mx.example.test", "AAAA", "::1")
    dns_server.add("mx.example.test", "A", "127.0.0.1")
    resolver = make_resolver(dns_server)
    host = MXHost("mx.example.test", 10)
    assert [str(a) for a in await host_addresses(resolver, host)] == ["127.0.0.1", "::1"]
    assert [str(a) for a in await host_addresses(resolver, host, prefer_ipv6=True)] == [
        "::1", "127.0.0.1"]
    with pytest.raises(DNSNameNotFound):
        await host_addresses(resolver, MXHost("gone.example.test", 10))
    dns_server.add("flaky.example.test", "A", "127.0.0.1")
    dns_server.set_behaviour("flaky.example.test", Behaviour.SERVFAIL)
    with pytest.raises(DNSTempError):
        await host_addresses(resolver, MXHost("flaky.example.test", 10))


async def test_mx_own_name_drops_worse_hosts(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "MX", "10 primary.example.test.", "20 me.example.test.",
                   "30 worse.example.test.")
    resolver = make_resolver(dns_server)
    hosts = await route(resolver, "example.test", local_names=frozenset({"me.example.test"}))
    assert [h.name for h in hosts] == ["primary.example.test"]
    with pytest.raises(RouteError) as info:
        await route(resolver, "example.test", local_names=frozenset({"primary.example.test"}))
    assert (info.value.status, info.value.temporary) == ("5.4.6", False)
