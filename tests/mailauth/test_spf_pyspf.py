"""Differential test: our SPF evaluator and pyspf agree on the same zone.

pyspf does its DNS through a module-level ``spf.DNSLookup`` function; the test points it at the
loopback DNS server with dnspython's synchronous resolver, so both evaluators read the same
records over the wire.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.resolver
import pytest
import spf as pyspf
from tests.support.dnsserver import DNSServer

from mailwright.mailauth.dnsquery import ResolverDNS
from mailwright.mailauth.spf import check_host

ZONE: dict[str, dict[str, list[str]]] = {
    "pass.test": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
    "fail.test": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
    "soft.test": {"TXT": ["v=spf1 ~all"]},
    "neutral.test": {"TXT": ["v=spf1 ?all"]},
    "default.test": {"TXT": ["v=spf1 ip4:198.51.100.1"]},
    "none.test": {"TXT": ["just text"]},
    "two.test": {"TXT": ["v=spf1 -all", "v=spf1 +all"]},
    "syntax.test": {"TXT": ["v=spf1 ip4:300.1.1.1 -all"]},
    "a.test": {"TXT": ["v=spf1 a -all"], "A": ["192.0.2.10"]},
    "acidr.test": {"TXT": ["v=spf1 a:host.acidr.test/24 -all"]},
    "host.acidr.test": {"A": ["192.0.2.200"]},
    "mx.test": {"TXT": ["v=spf1 mx -all"], "MX": ["10 m.mx.test."]},
    "m.mx.test": {"A": ["192.0.2.10"]},
    "inc.test": {"TXT": ["v=spf1 include:pass.test -all"]},
    "incnone.test": {"TXT": ["v=spf1 include:nothing.test -all"]},
    "redir.test": {"TXT": ["v=spf1 redirect=soft.test"]},
    "redirnone.test": {"TXT": ["v=spf1 redirect=nothing.test"]},
    "exists.test": {"TXT": ["v=spf1 exists:%{ir}.%{d} -all"]},
    "10.2.0.192.exists.test": {"A": ["127.0.0.2"]},
    "loop.test": {"TXT": ["v=spf1 include:loop.test -all"]},
    "eleven.test": {
        "TXT": ["v=spf1 " + " ".join(f"a:h{i}.eleven.test" for i in range(11)) + " -all"]
    },
    "voids.test": {"TXT": ["v=spf1 a:x1.voids.test a:x2.voids.test a:x3.voids.test -all"]},
    "ip6.test": {"TXT": ["v=spf1 ip6:2001:db8::/32 -all"]},
    "macro.test": {"TXT": ["v=spf1 exists:%{l}.u.%{d} -all"]},
    "user.u.macro.test": {"A": ["127.0.0.2"]},
}
for i in range(11):
    ZONE[f"h{i}.eleven.test"] = {"A": ["198.51.100.99"]}


@pytest.fixture
def pyspf_on(zone: DNSServer) -> Iterator[None]:
    for name, types in ZONE.items():
        for rdtype, values in types.items():
            zone.add(name, rdtype, *values)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [zone.host]
    resolver.port = zone.port
    resolver.lifetime = 2.0

    def lookup(name: str, qtype: str, *args: object, **kwargs: object) -> list[object]:
        out: list[object] = []
        try:
            for rdata in resolver.resolve(name, qtype, search=False):
                if qtype in ("A", "AAAA"):
                    out.append(((name, qtype), rdata.address))
                elif qtype == "MX":
                    out.append(((name, qtype), (rdata.preference, rdata.exchange)))
                elif qtype == "PTR":
                    out.append(((name, qtype), rdata.target.to_text(True)))
                elif qtype in ("TXT", "SPF"):
                    out.append(((name, qtype), rdata.strings))
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            pass
        return out

    saved = pyspf.DNSLookup
    pyspf.DNSLookup = lookup
    try:
        yield
    finally:
        pyspf.DNSLookup = saved


CASES = [
    ("192.0.2.10", "user@pass.test"),
    ("192.0.2.10", "user@fail.test"),
    ("192.0.2.10", "user@soft.test"),
    ("192.0.2.10", "user@neutral.test"),
    ("192.0.2.10", "user@default.test"),
    ("192.0.2.10", "user@none.test"),
    ("192.0.2.10", "user@nothing.test"),
    ("192.0.2.10", "user@two.test"),
    ("192.0.2.10", "user@syntax.test"),
    ("192.0.2.10", "user@a.test"),
    ("192.0.2.11", "user@a.test"),
    ("192.0.2.10", "user@acidr.test"),
    ("192.0.2.10", "user@mx.test"),
    ("198.51.100.7", "user@mx.test"),
    ("192.0.2.10", "user@inc.test"),
    ("198.51.100.7", "user@inc.test"),
    ("192.0.2.10", "user@incnone.test"),
    ("192.0.2.10", "user@redir.test"),
    ("192.0.2.10", "user@redirnone.test"),
    ("192.0.2.10", "user@exists.test"),
    ("192.0.2.11", "user@exists.test"),
    ("192.0.2.10", "user@loop.test"),
    ("192.0.2.10", "user@eleven.test"),
    ("192.0.2.10", "user@voids.test"),
    ("2001:db8::5", "user@ip6.test"),
    ("2001:db9::5", "user@ip6.test"),
    ("192.0.2.10", "user@macro.test"),
    ("192.0.2.10", "other@macro.test"),
]


@pytest.mark.parametrize(("ip", "sender"), CASES)
async def test_spf_agrees_with_pyspf(
    pyspf_on: None, dns: ResolverDNS, ip: str, sender: str
) -> None:
    domain = sender.rpartition("@")[2]
    ours = await check_host(dns, ip, domain, sender, helo="client.test")
    theirs, _code, _text = pyspf.query(i=ip, s=sender, h="client.test").check()
    assert ours.result.value == theirs, ours.reason
