from __future__ import annotations

import pytest
from tests.support.dnsserver import Behaviour, DNSServer

from mailwright.mailauth.dnsquery import ResolverDNS
from mailwright.mailauth.spf import (
    SPFLimits,
    SPFResult,
    check_helo,
    check_host,
    check_mail_from,
)

IP = "192.0.2.10"


async def spf(dns: ResolverDNS, domain: str = "example.test", ip: str = IP) -> SPFResult:
    outcome = await check_host(dns, ip, domain, f"user@{domain}", helo="client.test")
    return outcome.result


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", SPFResult.PASS),
        ("v=spf1 ip4:192.0.2.10 -all", SPFResult.PASS),
        ("v=spf1 -ip4:192.0.2.10 +all", SPFResult.FAIL),
        ("v=spf1 ip4:198.51.100.1 -all", SPFResult.FAIL),
        ("v=spf1 ip4:198.51.100.1 ~all", SPFResult.SOFTFAIL),
        ("v=spf1 ip4:198.51.100.1 ?all", SPFResult.NEUTRAL),
        ("v=spf1 ip4:198.51.100.1", SPFResult.NEUTRAL),
        ("v=spf1", SPFResult.NEUTRAL),
        ("V=SPF1 IP4:192.0.2.10 -ALL", SPFResult.PASS),
        ("v=spf1 ip6:2001:db8::/32 -all", SPFResult.FAIL),
        ("v=spf1 unknown-mod=foo ip4:192.0.2.10 -all", SPFResult.PASS),
    ],
)
async def test_spf_results_from_ip_terms(
    zone: DNSServer, dns: ResolverDNS, record: str, expected: SPFResult
) -> None:
    zone.add("example.test", "TXT", record)
    assert await spf(dns) is expected


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 ip4:192.0.2.300 -all",
        "v=spf1 ip4:192.0.2.0/33 -all",
        "v=spf1 foo:bar -all",
        "v=spf1 include -all",
        "v=spf1 a:1.2.3.4 -all",  # domain-end must not be all digits
        "v=spf1 redirect=a.test redirect=b.test",
        "v=spf1 exists:%{z}.example.test -all",
        "v=spf1 exists:%{d0}.example.test -all",
        "v=spf1 -all ip4:192.0.2.%",  # syntax errors anywhere, even after "all"
    ],
)
async def test_spf_syntax_error_anywhere_is_permerror(
    zone: DNSServer, dns: ResolverDNS, record: str
) -> None:
    zone.add("example.test", "TXT", record)
    assert await spf(dns) is SPFResult.PERMERROR


async def test_spf_none_without_record_or_domain(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "some unrelated text")
    assert await spf(dns) is SPFResult.NONE
    assert await spf(dns, "missing.test") is SPFResult.NONE  # NXDOMAIN
    assert await spf(dns, "localhost") is SPFResult.NONE  # not multi-label


async def test_spf_two_records_is_permerror(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 -all", "v=spf1 +all")
    assert await spf(dns) is SPFResult.PERMERROR


async def test_spf_servfail_and_timeout_are_temperror(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.set_behaviour("example.test", Behaviour.SERVFAIL)
    assert await spf(dns) is SPFResult.TEMPERROR
    zone.add("t.test", "TXT", "v=spf1 include:slow.test -all")
    zone.set_behaviour("slow.test", Behaviour.TIMEOUT)
    assert await spf(dns, "t.test") is SPFResult.TEMPERROR


async def test_spf_a_mx_and_cidr(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 a mx/28 -all")
    zone.add("example.test", "A", "198.51.100.1")
    zone.add("example.test", "MX", "10 mx.example.test.")
    zone.add("mx.example.test", "A", "192.0.2.1")
    assert await spf(dns) is SPFResult.PASS  # 192.0.2.10 is in 192.0.2.1/28
    assert await spf(dns, ip="192.0.2.20") is SPFResult.FAIL
    assert await spf(dns, ip="198.51.100.1") is SPFResult.PASS
    zone.add("six.test", "TXT", "v=spf1 a:six.test//64 -all")
    zone.add("six.test", "AAAA", "2001:db8:1:2::1")
    assert await spf(dns, "six.test", ip="2001:db8:1:2::99") is SPFResult.PASS
    assert await spf(dns, "six.test", ip="2001:db8:1:3::99") is SPFResult.FAIL


async def test_spf_v4_mapped_client_is_treated_as_ipv4(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    assert await spf(dns, ip="::ffff:192.0.2.10") is SPFResult.PASS


async def test_spf_include_and_redirect(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 include:_spf.provider.test -all")
    zone.add("_spf.provider.test", "TXT", "v=spf1 ip4:192.0.2.0/24 ~all")
    assert await spf(dns) is SPFResult.PASS
    # The included record's softfail does not leak out: it is only "no match".
    assert await spf(dns, ip="203.0.113.5") is SPFResult.FAIL
    zone.add("r.test", "TXT", "v=spf1 redirect=_spf.provider.test")
    assert await spf(dns, "r.test", ip="203.0.113.5") is SPFResult.SOFTFAIL
    zone.add("nr.test", "TXT", "v=spf1 redirect=nothing.test")
    assert await spf(dns, "nr.test") is SPFResult.PERMERROR
    zone.add("ni.test", "TXT", "v=spf1 include:nothing.test -all")
    assert await spf(dns, "ni.test") is SPFResult.PERMERROR


async def test_spf_include_temperror_propagates(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 include:broken.test -all")
    zone.set_behaviour("broken.test", Behaviour.SERVFAIL)
    assert await spf(dns) is SPFResult.TEMPERROR


async def test_spf_ten_lookup_limit(zone: DNSServer, dns: ResolverDNS) -> None:
    # Ten DNS-querying terms are allowed, the eleventh is a permerror (RFC 7208 4.6.4).
    for i in range(12):
        zone.add(f"h{i}.test", "A", "198.51.100.99")
    ten = " ".join(f"a:h{i}.test" for i in range(9)) + " include:last.test"
    zone.add("last.test", "TXT", "v=spf1 ip4:192.0.2.10 -all")
    zone.add("ten.test", "TXT", f"v=spf1 {ten} -all")
    assert await spf(dns, "ten.test") is SPFResult.PASS
    eleven = " ".join(f"a:h{i}.test" for i in range(10)) + " include:last.test"
    zone.add("eleven.test", "TXT", f"v=spf1 {eleven} -all")
    outcome = await check_host(dns, IP, "eleven.test", "u@eleven.test")
    assert outcome.result is SPFResult.PERMERROR
    assert "DNS lookups" in outcome.reason


async def test_spf_include_loop_hits_the_limit(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("loop.test", "TXT", "v=spf1 include:loop.test -all")
    assert await spf(dns, "loop.test") is SPFResult.PERMERROR


async def test_spf_ip_terms_do_not_count_as_lookups(zone: DNSServer, dns: ResolverDNS) -> None:
    many = " ".join(f"ip4:198.51.100.{i}" for i in range(40))
    zone.add("example.test", "TXT", f"v=spf1 {many} ip4:192.0.2.10 -all")
    assert await spf(dns) is SPFResult.PASS


async def test_spf_void_lookup_limit(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("two.test", "TXT", "v=spf1 a:v1.two.test a:v2.two.test ip4:192.0.2.10 -all")
    assert await spf(dns, "two.test") is SPFResult.PASS
    zone.add(
        "three.test",
        "TXT",
        "v=spf1 a:v1.three.test a:v2.three.test a:v3.three.test ip4:192.0.2.10 -all",
    )
    assert await spf(dns, "three.test") is SPFResult.PERMERROR


async def test_spf_mx_with_too_many_hosts(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 mx -all")
    for i in range(11):
        zone.add("example.test", "MX", f"{i} mx{i}.example.test.")
        zone.add(f"mx{i}.example.test", "A", "198.51.100.1")
    assert await spf(dns) is SPFResult.PERMERROR


async def test_spf_exists_with_macros(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all")
    # %{ir}: 10.2.0.192; %{l1r+-} of "user" is "user".
    zone.add("10.2.0.192.user._spf.example.test", "A", "127.0.0.2")
    assert await spf(dns) is SPFResult.PASS
    outcome = await check_host(dns, IP, "example.test", "other@example.test")
    assert outcome.result is SPFResult.FAIL


async def test_spf_ptr(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 ptr -all")
    zone.add("10.2.0.192.in-addr.arpa", "PTR", "host.example.test.")
    zone.add("host.example.test", "A", IP)
    assert await spf(dns) is SPFResult.PASS
    # A PTR name that does not resolve back to the client is not validated.
    zone.set("host.example.test", "A", "192.0.2.99")
    assert await spf(dns) is SPFResult.FAIL


async def test_spf_explanation_on_fail(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 -all exp=explain.example.test")
    zone.add("explain.example.test", "TXT", "%{i} is not one of %{d}'s servers")
    outcome = await check_host(dns, IP, "example.test", "user@example.test")
    assert outcome.result is SPFResult.FAIL
    assert outcome.explanation == "192.0.2.10 is not one of example.test's servers"


async def test_spf_helo_and_null_sender(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("client.test", "TXT", "v=spf1 ip4:192.0.2.10 -all")
    helo = await check_helo(dns, IP, "client.test")
    assert (helo.result, helo.identity, helo.sender) == (
        SPFResult.PASS,
        "helo",
        "postmaster@client.test",
    )
    null = await check_mail_from(dns, IP, "", "client.test")
    assert (null.result, null.identity, null.domain) == (SPFResult.PASS, "mailfrom", "client.test")
    literal = await check_helo(dns, IP, "[192.0.2.10]")
    assert literal.result is SPFResult.NONE


async def test_spf_overall_timeout_is_temperror(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("example.test", "TXT", "v=spf1 a:slow.test -all")
    zone.set_behaviour("slow.test", Behaviour.TIMEOUT)
    outcome = await check_host(
        dns, IP, "example.test", "u@example.test", limits=SPFLimits(timeout=0.2)
    )
    assert outcome.result is SPFResult.TEMPERROR
