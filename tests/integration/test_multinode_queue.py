"""A queue of 1,000 messages worked by two `mailwright serve` nodes on one PostgreSQL database.

"The Internet" is a loopback DNS server (remote.test MX -> 127.0.0.1) and an aiosmtpd sink on
the nodes' `[outbound] port`. Node A is killed (SIGKILL) in the middle; its leases are then
made to run out (the test moves `lease_until` into the past instead of waiting the 15-minute
lease), and node B takes its entries over. Every message must arrive; a message can arrive
twice only if node A died between the remote's 250 and its own COMMIT (SMTP gives no way to
close that window), so duplicates are bounded by the attempts node A had in flight.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mailwright.config import load_config
from mailwright.store.api import QueueRecipient
from mailwright.store.postgres import PostgresStore
from tests.support.dnsserver import DNSServer
from tests.support.pg import fresh_dsn
from tests.support.server import MailwrightServer, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TOTAL = 1000
KILL_AFTER = 300
DEADLINE = 180.0


class Sink:
    """An SMTP server that remembers the X-Seq header of every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.seen: Counter[int] = Counter()
        self.by_client: Counter[str] = Counter()  # EHLO name -> messages
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                m = re.search(rb"^X-Seq: (\d+)\r?$", envelope.original_content or b"", re.M)
                if m:
                    with sink.lock:
                        sink.seen[int(m.group(1))] += 1
                        sink.by_client[str(session.host_name)] += 1
                return "250 2.0.0 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def distinct(self) -> int:
        with self.lock:
            return len(self.seen)


def _node(root: Path, name: str, dsn: str, dns: DNSServer, sink_port: int) -> MailwrightServer:
    srv = MailwrightServer(root)
    srv.edit_config('hostname = "mail.example.test"', f'hostname = "{name}.example.test"')
    srv.edit_config('backend = "sqlite"\ndsn = ""', f'backend = "postgres"\ndsn = {json.dumps(dsn)}')
    srv.use_dns(dns.config_value)
    srv.set_outbound(port=sink_port, retry_schedule=("1s",))
    with srv.cfg.open("a") as f:
        f.write("\n[mailauth]\nverify = false\n")
    return srv


async def _enqueue(dsn: str, data_dir: Path) -> None:
    store = PostgresStore(dsn, data_dir, pool_max=20)
    await store.open()
    try:
        async def one(i: int) -> None:
            w = store.blob_writer()
            w.write(
                f"From: <s@example.test>\r\nTo: <r{i}@remote.test>\r\nX-Seq: {i}\r\n"
                f"Subject: queue test {i}\r\n\r\nmessage {i}\r\n".encode()
            )
            blob = await w.finish()
            await store.queue_add(
                blob, "s@example.test",
                {"remote.test": [QueueRecipient(f"r{i}@remote.test", "scheduled")]},
            )

        for start in range(0, TOTAL, 100):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 100, TOTAL))))
    finally:
        await store.close()


def _sql(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(query, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[str, DNSServer, Sink]]:
    dsn = fresh_dsn()
    sink = Sink()
    with DNSServer() as dns:
        dns.add("remote.test", "MX", "10 mx.remote.test.")
        dns.add("mx.remote.test", "A", "127.0.0.1")
        sink.start()
        try:
            yield dsn, dns, sink
        finally:
            sink.stop()


def _wait(what: str, check: Callable[[], object]) -> None:
    wait_for(what, check, deadline=DEADLINE, interval=0.05)


def test_multinode_queue_1000_messages_one_node_killed(
    world: tuple[str, DNSServer, Sink], tmp_path: Path
) -> None:
    from mailwright.queue.service import node_owner

    dsn, dns, sink = world
    sink_port = sink.port
    a = _node(tmp_path / "a", "node-a", dsn, dns, sink_port)
    b = _node(tmp_path / "b", "node-b", dsn, dns, sink_port)
    owners = {"node-a": node_owner(load_config(a.cfg)), "node-b": node_owner(load_config(b.cfg))}
    nodes = {"node-a": a, "node-b": b}
    assert owners["node-a"] != owners["node-b"]
    asyncio.run(_enqueue(dsn, tmp_path / "enqueue"))
    try:
        a.start()
        b.start()
        _wait(f"{KILL_AFTER} deliveries", lambda: sink.distinct() >= KILL_AFTER)
        # SIGKILL, in the middle of its deliveries, the node that has done the most work
        with sink.lock:
            victim = max(nodes, key=lambda n: sink.by_client[f"{n}.example.test"])
        nodes[victim].kill()
        at_kill = sink.distinct()
        held = _sql(
            dsn,
            "UPDATE queue SET lease_until = clock_timestamp() - interval '1 second'"
            " WHERE lease_owner = %s RETURNING id", (owners[victim],),
        )
        print(f"killed {victim} after {at_kill} deliveries; it held {len(held)} entries")
        _wait(f"all {TOTAL} messages", lambda: sink.distinct() >= TOTAL)
        _wait("an empty queue", lambda: not _sql(dsn, "SELECT id FROM queue LIMIT 1"))
    finally:
        for node in nodes.values():
            node.kill()
    assert sink.distinct() == TOTAL and set(sink.seen) == set(range(TOTAL))
    duplicates = {seq: n for seq, n in sink.seen.items() if n > 1}
    print(f"duplicates: {duplicates}")
    print(f"delivered by: {dict(sink.by_client)}")
    # only the attempts the victim had in flight at SIGKILL (max_per_domain = 4 lanes) can
    # be sent twice: the remote's 250 arrived, the victim's COMMIT did not
    assert sum(n - 1 for n in duplicates.values()) <= 4
    # the victim worked before it died, the survivor finished the queue
    assert set(sink.by_client) == {"node-a.example.test", "node-b.example.test"}
