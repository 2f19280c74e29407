"""RFC 5782 lookups against a real DNS server on loopback."""

from __future__ import annotations

from mailwright.dns.resolver import Resolver
from mailwright.spam.dnslists import lookup_all, query_name
from mailwright.spam.settings import SpamSettings
from tests.support.dnsserver import Behaviour, DNSServer


def test_dnslists_query_names() -> None:
    # RFC 5782 2.1 and 2.4 examples
    assert query_name("192.0.2.99", "bad.example.com") == "99.2.0.192.bad.example.com"
    assert query_name("2001:db8:1:2:3:4:567:89ab", "ugly.example.com") == (
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
    )
    assert query_name("::ffff:192.0.2.1", "z") == "1.2.0.192.z"
    assert query_name("not an address", "z") is None


async def test_dnslists_listed_unlisted_broken_and_error_codes(dns_server: DNSServer) -> None:
    settings = SpamSettings.from_mapping({
        "dnsbl": [{"zone": "bl.test", "codes": {"127.0.0.4": "exploited host"}},
                  "broken.test", "refusing.test"],
        "dnswl": ["wl.test"],
    })  # fmt: skip
    dns_server.add("2.2.0.192.bl.test", "A", "127.0.0.4")
    dns_server.add("2.2.0.192.wl.test", "A", "127.0.10.2")
    dns_server.set_behaviour("2.2.0.192.broken.test", Behaviour.SERVFAIL)
    dns_server.add("2.2.0.192.refusing.test", "A", "127.255.255.254")  # "query refused" code
    resolver = Resolver(nameservers=dns_server.nameservers, timeout=2.0)
    zones = (*settings.dnsbl, *settings.dnswl)
    found = await lookup_all(resolver, "192.0.2.2", zones)
    assert [(f.zone, f.answer, f.reason, f.allow) for f in found] == [
        ("bl.test", "127.0.0.4", "exploited host", False),
        ("wl.test", "127.0.10.2", "listed (127.0.10.2)", True),
    ]
    assert await lookup_all(resolver, "192.0.2.3", zones) == []
