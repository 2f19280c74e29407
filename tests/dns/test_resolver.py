from __future__ import annotations

import ipaddress

import pytest

from mailwright.dns.resolver import (
    DNSNameNotFound,
    DNSNoData,
    DNSTempError,
    MXRecord,
    Resolver,
    to_ascii_domain,
)
from tests.support.dnsserver import Behaviour, DNSServer


def make_resolver(server: DNSServer) -> Resolver:
    return Resolver(server.nameservers, timeout=0.3, lifetime=0.6)


async def test_resolver_mx_a_aaaa_txt_ptr(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "MX", "10 mx1.example.test.", "20 MX2.example.test.")
    dns_server.add("mx1.example.test", "A", "192.0.2.1", "192.0.2.2")
    dns_server.add("mx1.example.test", "AAAA", "2001:db8::1")
    dns_server.add("example.test", "TXT", "v=spf1 -all", '"part one " "part two"')
    dns_server.add("1.2.0.192.in-addr.arpa", "PTR", "Host.Example.Test.")
    r = make_resolver(dns_server)
    assert sorted(await r.mx("example.test"), key=lambda m: m.preference) == [
        MXRecord(10, "mx1.example.test"),
        MXRecord(20, "mx2.example.test"),
    ]
    assert sorted(await r.a("mx1.example.test")) == [
        ipaddress.IPv4Address("192.0.2.1"),
        ipaddress.IPv4Address("192.0.2.2"),
    ]
    assert await r.aaaa("mx1.example.test") == [ipaddress.IPv6Address("2001:db8::1")]
    assert len(await r.ip("mx1.example.test")) == 3
    assert sorted(await r.txt("EXAMPLE.test.")) == [b"part one part two", b"v=spf1 -all"]
    assert await r.ptr("192.0.2.1") == ["host.example.test"]


async def test_resolver_long_txt_is_joined(dns_server: DNSServer) -> None:
    key = "v=DKIM1; k=rsa; p=" + "A" * 600
    dns_server.add("sel._domainkey.example.test", "TXT", key)
    r = make_resolver(dns_server)
    assert await r.txt("sel._domainkey.example.test") == [key.encode()]


async def test_resolver_nxdomain_is_permanent(dns_server: DNSServer) -> None:
    r = make_resolver(dns_server)
    with pytest.raises(DNSNameNotFound) as info:
        await r.mx("missing.test")
    assert not info.value.temporary


async def test_resolver_nodata(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "A", "192.0.2.1")
    r = make_resolver(dns_server)
    with pytest.raises(DNSNoData) as info:
        await r.mx("example.test")
    assert not info.value.temporary
    assert info.value.rdtype == "MX"


@pytest.mark.parametrize(
    "behaviour", [Behaviour.SERVFAIL, Behaviour.REFUSED, Behaviour.TIMEOUT, Behaviour.GARBAGE]
)
async def test_resolver_failures_are_temporary(dns_server: DNSServer, behaviour: Behaviour) -> None:
    dns_server.add("example.test", "MX", "10 mx.example.test.")
    dns_server.set_behaviour("example.test", behaviour)
    r = make_resolver(dns_server)
    with pytest.raises(DNSTempError) as info:
        await r.mx("example.test")
    assert info.value.temporary


async def test_resolver_truncation_falls_back_to_tcp(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "TXT", "hello")
    dns_server.set_behaviour("example.test", Behaviour.TRUNCATE)
    r = make_resolver(dns_server)
    assert await r.txt("example.test") == [b"hello"]
    assert {q.transport for q in dns_server.queries} == {"udp", "tcp"}


async def test_resolver_follows_cname(dns_server: DNSServer) -> None:
    dns_server.add("alias.example.test", "CNAME", "real.example.test.")
    dns_server.add("real.example.test", "A", "192.0.2.9")
    r = make_resolver(dns_server)
    assert await r.a("alias.example.test") == [ipaddress.IPv4Address("192.0.2.9")]


async def test_resolver_idna(dns_server: DNSServer) -> None:
    dns_server.add("xn--bcher-kva.test", "MX", "0 mx.xn--bcher-kva.test.")
    r = make_resolver(dns_server)
    assert await r.mx("bücher.test") == [MXRecord(0, "mx.xn--bcher-kva.test")]
    assert to_ascii_domain("Bücher.TEST.") == "xn--bcher-kva.test"


async def test_resolver_nameserver_strings(dns_server: DNSServer) -> None:
    dns_server.add("example.test", "A", "192.0.2.1")
    r = Resolver([dns_server.config_value], timeout=0.3, lifetime=0.6)
    assert await r.a("example.test") == [ipaddress.IPv4Address("192.0.2.1")]


async def test_dnsserver_records_edited_directly(dns_server: DNSServer) -> None:
    dns_server.records["Direct.Example.TEST."] = {"a": ["192.0.2.5"]}
    r = make_resolver(dns_server)
    assert await r.a("direct.example.test") == [ipaddress.IPv4Address("192.0.2.5")]
    dns_server.remove("direct.example.test")
    with pytest.raises(DNSNameNotFound):
        await r.a("direct.example.test")


async def test_resolver_caches_answers_for_their_ttl() -> None:
    # RFC 1035 3.2.1: an answer may be reused for its TTL; a busy MX asks once, not per message
    with DNSServer(ttl=300) as server:
        server.add("cached.test", "TXT", "v=spf1 -all")
        r = make_resolver(server)
        for _ in range(5):
            assert await r.txt("cached.test") == [b"v=spf1 -all"]
        assert [q.name for q in server.queries].count("cached.test") == 1


async def test_resolver_asks_again_once_the_ttl_is_over_or_without_cache() -> None:
    with DNSServer(ttl=0) as server:
        server.add("fresh.test", "TXT", "one")
        r = make_resolver(server)
        assert await r.txt("fresh.test") == [b"one"]
        server.records["fresh.test"]["TXT"] = ['"two"']
        assert await r.txt("fresh.test") == [b"two"]
    with DNSServer(ttl=300) as server:
        server.add("uncached.test", "TXT", "x")
        r = Resolver(server.nameservers, timeout=0.3, lifetime=0.6, cache=False)
        for _ in range(3):
            await r.txt("uncached.test")
        assert [q.name for q in server.queries].count("uncached.test") == 3


def test_resolver_cache_is_bounded_and_on_in_the_server() -> None:
    from types import SimpleNamespace

    from mailwright.dns.resolver import from_config

    r = Resolver(["127.0.0.1"], cache_size=50)
    assert r._resolver.cache is not None and r._resolver.cache.max_size == 50
    served = from_config(SimpleNamespace(dns=SimpleNamespace(nameservers=["127.0.0.1"],
                                                            timeout=1.0)))
    assert served._resolver.cache is not None
