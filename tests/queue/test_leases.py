"""Exactly once with a slow remote: leases renewed while working, results only under the lease.

The remote MX is a real SMTP server (aiosmtpd) that waits 20 s after the final dot before its
250, four times a 5 s lease. Nodes share one store: two on PostgreSQL, or one on SQLite (where a
single node, finding its own lease run out, would claim the entry again). Every message must
arrive exactly once, and nobody gets a DSN. Before leases were renewed, the entry's lease ran out
during the wait and another attempt sent the message again.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwright.accounts.directory import Directory
from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.local import LocalDelivery
from mailwright.dns.resolver import Resolver
from mailwright.queue.service import Outbound, QueueSettings
from mailwright.queue.smtp import OutboundClient
from mailwright.store.api import Store
from tests.conftest import store_backends
from tests.support.dnsserver import DNSServer

pytestmark = pytest.mark.slow

REMOTE_WAIT = 20.0
LEASE = 5.0
MESSAGES = 3


class SlowSink:
    """aiosmtpd on loopback that holds its reply to the final dot for REMOTE_WAIT seconds."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.arrivals: Counter[int] = Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                m = re.search(rb"^X-Seq: (\d+)\r?$", envelope.original_content or b"", re.M)
                if m:
                    with sink.lock:
                        sink.arrivals[int(m.group(1))] += 1
                await asyncio.sleep(REMOTE_WAIT)
                return "250 2.0.0 taken, slowly"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture
def sink() -> Iterator[SlowSink]:
    s = SlowSink()
    s.controller.start()
    try:
        yield s
    finally:
        s.controller.stop()


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        server.add("dest.test", "MX", "10 mx.dest.test.")
        server.add("mx.dest.test", "A", "127.0.0.1")
        yield server


def _node(store: Store, dns: DNSServer, port: int, owner: str) -> Outbound:
    resolver = Resolver(dns.nameservers, timeout=0.5, lifetime=1.0)
    client = OutboundClient(resolver, f"{owner}.sender.test", port=port)
    settings = QueueSettings(retry_schedule=(1.0,), max_age=3600, delay_warning=3600,
                             lease=LEASE, poll_interval=0.2)
    return Outbound(store, client, hostname=f"{owner}.sender.test", owner=owner,
                    settings=settings, local=LocalDelivery(store, Directory(store)))


@pytest.fixture(params=[b for b in store_backends()])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Store]]:
    if request.param == "sqlite":
        from mailwright.store.sqlite import SQLiteStore

        single = SQLiteStore(tmp_path / "data", meta_parser=None)
        await single.open()
        try:
            yield [single]
        finally:
            await single.close()
    else:
        from tests.support.pg import two_nodes

        async with two_nodes(tmp_path) as (a, b):
            yield [a, b]


async def test_slow_remote_gets_each_message_exactly_once(
    stores: list[Store], dns: DNSServer, sink: SlowSink
) -> None:
    first = stores[0]
    await first.add_domain("sender.test")
    await first.add_account("alice@sender.test", "x")
    nodes = [_node(s, dns, sink.port, f"node{i}") for i, s in enumerate(stores)]
    for i in range(MESSAGES):
        blob = await stage_bytes(first, (
            f"From: <alice@sender.test>\r\nTo: <bob{i}@dest.test>\r\nX-Seq: {i}\r\n"
            f"Subject: slow {i}\r\n\r\nbody {i}\r\n").encode())
        await nodes[0].enqueue(blob, "alice@sender.test", [f"bob{i}@dest.test"])
    for node in nodes:
        await node.start()
    try:
        for _ in range(int((REMOTE_WAIT * 4) / 0.1)):  # bounded: a few remote waits
            if not await first.queue_list():
                break
            await asyncio.sleep(0.1)
        # keep the nodes polling a little longer: a duplicate attempt would show up now
        await asyncio.sleep(2 * LEASE)
    finally:
        for node in nodes:
            await node.stop(grace=REMOTE_WAIT * 2)
    assert await first.queue_list() == []
    assert dict(sink.arrivals) == {i: 1 for i in range(MESSAGES)}
    alice = await first.find_account("alice@sender.test")
    assert alice is not None
    inbox = await first.get_mailbox(alice.id, "INBOX")
    assert inbox is not None and await first.list_messages(inbox.id) == []  # no DSN
    assert await first.check() == []
