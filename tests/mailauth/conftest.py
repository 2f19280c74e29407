from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.dnsserver import DNSServer

from mailwright.dns.resolver import Resolver
from mailwright.mailauth.dnsquery import ResolverDNS


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


@pytest.fixture
def zone(dns_server: DNSServer) -> Iterator[DNSServer]:
    """The module's server with an empty zone for each test."""
    dns_server.records.clear()
    dns_server.behaviours.clear()
    yield dns_server


@pytest.fixture
def resolver(zone: DNSServer) -> Resolver:
    # Short timeouts keep the TIMEOUT-behaviour tests quick; nothing asserts on timing.
    return Resolver(nameservers=zone.nameservers, timeout=0.3, lifetime=0.6)


@pytest.fixture
def dns(resolver: Resolver) -> ResolverDNS:
    return ResolverDNS(resolver)
