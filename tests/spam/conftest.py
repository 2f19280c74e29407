from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.dnsserver import DNSServer


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server
