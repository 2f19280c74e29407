"""Two PostgresStore instances ("nodes") on one database: what several nodes must agree on.

Each test opens two stores on one fresh schema, with separate data directories, as two
`mailwright serve` processes on two machines would. Skipped when PostgreSQL is not reachable.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from mailwright.store.api import (
    DeliveryTarget,
    FlagOp,
    InvalidOperation,
    QueueRecipient,
)
from mailwright.store.postgres import PostgresStore
from mailwright.store.postgres.schema import SCHEMA_VERSION, current_version
from tests.conftest import new_inbox, stage_blob
from tests.support.pg import Nodes

pytestmark = pytest.mark.postgres

MSG = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


async def test_postgres_migration_once_for_concurrent_nodes(nodes: Nodes) -> None:
    a, _b = nodes
    async with a.pool.connection() as conn:
        assert await current_version(conn) == SCHEMA_VERSION
        cur = await conn.execute("SELECT COUNT(*) FROM mailwright_schema")
        row = await cur.fetchone()
        assert row is not None and row[0] == SCHEMA_VERSION


async def test_postgres_two_nodes_append_unique_increasing_uids(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    per_writer = 15
    done = asyncio.Event()
    snapshots: list[list[int]] = []

    async def writer(store: PostgresStore, name: str) -> list[tuple[int, int]]:
        out = []
        for i in range(per_writer):
            rec = await store.append(inbox, await stage_blob(store, MSG + f"{name}-{i}".encode()))
            out.append((rec.uid, rec.modseq))
        return out

    async def reader() -> None:
        # What an IMAP client on node B could see at any moment: never a hole below a UID.
        while not done.is_set():
            snapshots.append([m.uid for m in await b.list_messages(inbox)])
            await asyncio.sleep(0)

    watcher = asyncio.create_task(reader())
    results = await asyncio.gather(
        *(writer(a, f"a{n}") for n in range(4)), *(writer(b, f"b{n}") for n in range(4))
    )
    done.set()
    await watcher
    total = 8 * per_writer
    uids = [u for r in results for u, _ in r]
    assert sorted(uids) == list(range(1, total + 1))  # no duplicate, no gap
    for r in results:  # each writer saw its own UIDs and MODSEQs increase
        assert [u for u, _ in r] == sorted(u for u, _ in r)
        assert [m for _, m in r] == sorted(m for _, m in r)
    msgs = await b.list_messages(inbox)
    modseqs = [m.modseq for m in msgs]
    assert all(x < y for x, y in itertools.pairwise(modseqs))  # strictly increasing
    assert len(snapshots) > 1
    for seen in snapshots:
        assert seen == list(range(1, len(seen) + 1))
    status = await a.mailbox_status(inbox)
    assert status.uidnext == total + 1 and status.highestmodseq == max(modseqs)
    assert await a.check() == []


async def test_postgres_flag_changes_from_two_nodes_are_not_lost(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    await a.append(inbox, await stage_blob(a, MSG))
    flags = [f"$k{i}" for i in range(12)]
    await asyncio.gather(
        *(
            (a if i % 2 else b).store_flags(inbox, [1], FlagOp.ADD, [flag])
            for i, flag in enumerate(flags)
        )
    )
    (msg,) = await b.get_messages(inbox, [1])
    assert msg.flags == frozenset(flags)
    cs = await a.changes_since(inbox, 0)
    assert cs.highestmodseq == msg.modseq == 1 + 1 + len(flags)


async def test_postgres_change_hub_wakes_other_node(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    sub = b.changes.subscribe(inbox)
    before = (await b.mailbox_status(inbox)).highestmodseq
    loop = asyncio.get_running_loop()
    started = loop.time()
    rec = await a.append(inbox, await stage_blob(a, MSG))
    # liveness bound only; the wake-up normally takes a few milliseconds
    assert await sub.wait(10)
    latency = loop.time() - started
    print(f"cross-node wake-up after {latency * 1000:.1f} ms")
    assert sub.modseq >= rec.modseq
    cs = await b.changes_since(inbox, before)
    assert [m.uid for m in cs.updated] == [rec.uid]
    assert b.notifications_received >= 1
    sub.close()


async def test_postgres_cross_moves_do_not_deadlock(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    acc = await a.get_mailbox_by_id(inbox)
    assert acc is not None
    archive = await a.get_mailbox(acc.account_id, "Archive")
    assert archive is not None
    for i in range(20):
        await a.append(inbox, await stage_blob(a, MSG + bytes([65 + i])))
        await a.append(archive.id, await stage_blob(a, MSG + bytes([97 + i])))

    async def shuttle(store: PostgresStore, src: int, dst: int) -> None:
        for _ in range(5):
            uids = [m.uid for m in await store.list_messages(src)][:3]
            await store.move(src, uids, dst)

    await asyncio.gather(shuttle(a, inbox, archive.id), shuttle(b, archive.id, inbox))
    total = len(await a.list_messages(inbox)) + len(await a.list_messages(archive.id))
    assert total == 40
    assert (await b.usage(acc.account_id)).messages == 40
    assert await b.check() == []


async def test_postgres_deliver_from_both_nodes_one_blob(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    other = await new_inbox(a, "bob@example.test")
    acc_a = await a.get_mailbox_by_id(inbox)
    acc_b = await a.get_mailbox_by_id(other)
    assert acc_a is not None and acc_b is not None
    targets = [DeliveryTarget(acc_a.account_id), DeliveryTarget(acc_b.account_id)]
    # the same content staged on both nodes: one blob row, refcounted across nodes
    recs = await asyncio.gather(
        a.deliver(await stage_blob(a, MSG), targets),
        b.deliver(await stage_blob(b, MSG), list(reversed(targets))),
    )
    assert sum(len(r) for r in recs) == 4
    async with a.pool.connection() as conn:
        cur = await conn.execute("SELECT COUNT(*), MAX(refs) FROM blobs")
        assert await cur.fetchone() == (1, 4)
    # node B reads what node A stored, whether or not it has a cached copy
    assert await b.read_blob(recs[0][0].blob_id) == MSG
    assert await b.check() == []


async def test_postgres_queue_claims_are_shared_without_overlap(nodes: Nodes) -> None:
    a, b = nodes
    blob = await stage_blob(a, MSG)
    ids: list[int] = []
    for i in range(40):
        ids += await a.queue_add(
            blob, "s@example.test", {f"d{i}.test": [QueueRecipient(f"x@d{i}.test", "scheduled")]}
        )

    # Every worker's first claim is made before any takes a second one (40 entries, 4 x 3 in
    # the first round), so that both nodes take part however the scheduler orders them.
    first_round = asyncio.Barrier(4)

    async def worker(store: PostgresStore, owner: str) -> list[int]:
        got: list[int] = []
        while True:
            batch = await store.queue_claim(owner, 60, 3)
            if not got:
                await first_round.wait()
            if not batch:
                return got
            got += [e.id for e in batch]
            assert all(e.lease_owner == owner for e in batch)

    results = await asyncio.gather(
        worker(a, "a1"), worker(a, "a2"), worker(b, "b1"), worker(b, "b2")
    )
    claimed = [i for r in results for i in r]
    assert sorted(claimed) == sorted(ids)  # every entry once, none twice
    assert all(results)  # both nodes took part


async def test_postgres_queue_lease_expiry_takeover(nodes: Nodes) -> None:
    a, b = nodes
    blob = await stage_blob(a, MSG)
    (entry_id,) = await a.queue_add(
        blob, "s@example.test", {"remote.test": [QueueRecipient("x@remote.test", "scheduled")]}
    )
    # node A claims with a short lease and "dies" (never reports back)
    assert [e.id for e in await a.queue_claim("node-a", 0.2, 10)] == [entry_id]
    assert await b.queue_claim("node-b", 60, 10) == []  # held while the lease runs
    taken: list[int] = []
    for _ in range(400):  # bounded wait for the lease to expire
        taken = [e.id for e in await b.queue_claim("node-b", 60, 10)]
        if taken:
            break
        await asyncio.sleep(0.025)
    assert taken == [entry_id]
    entry = await a.queue_get(entry_id)
    assert entry is not None and entry.lease_owner == "node-b"
    # the late node A may not report on an entry that node B now holds
    with pytest.raises(InvalidOperation):
        await a.queue_update(
            entry_id,
            "node-a",
            [QueueRecipient("x@remote.test", "delivered")],
            next_attempt=None,
            last_error="",
        )
    await b.queue_update(
        entry_id,
        "node-b",
        [QueueRecipient("x@remote.test", "delivered")],
        next_attempt=None,
        last_error="",
    )
    assert await a.queue_get(entry_id) is None
    assert await a.check() == []


async def test_postgres_queue_update_releases_for_any_node(nodes: Nodes) -> None:
    a, b = nodes
    blob = await stage_blob(a, MSG)
    (entry_id,) = await a.queue_add(
        blob, "s@example.test", {"remote.test": [QueueRecipient("x@remote.test", "scheduled")]}
    )
    await a.queue_claim("node-a", 60, 10)
    soon = datetime.now(UTC) - timedelta(seconds=1)
    await a.queue_update(
        entry_id,
        "node-a",
        [QueueRecipient("x@remote.test", "tempfail")],
        next_attempt=soon,
        last_error="451 later",
    )
    (entry,) = await b.queue_claim("node-b", 60, 10)
    assert entry.id == entry_id and entry.attempts == 1
    assert entry.recipients[0].status == "tempfail"


async def test_postgres_maildrop_lock_across_nodes(nodes: Nodes) -> None:
    a, b = nodes
    await a.add_domain("example.test")
    acc = (await a.add_account("pop@example.test", "x")).id
    assert await a.lock_maildrop(acc, "a:1", 60)
    assert not await b.lock_maildrop(acc, "b:1", 60)
    assert await a.lock_maildrop(acc, "a:1", 60)  # the holder may renew
    await b.unlock_maildrop(acc, "b:1")  # not the owner: no effect
    assert not await b.lock_maildrop(acc, "b:1", 60)
    await a.unlock_maildrop(acc, "a:1")
    assert await b.lock_maildrop(acc, "b:1", 0.1)
    # a crashed holder's lock expires
    got = False
    for _ in range(400):
        got = await a.lock_maildrop(acc, "a:2", 60)
        if got:
            break
        await asyncio.sleep(0.025)
    assert got


async def test_postgres_queue_1000_entries_two_nodes_one_dies(nodes: Nodes) -> None:
    """Each entry is "sent" exactly once although node A dies holding claimed entries."""
    a, b = nodes
    blob = await stage_blob(a, MSG)
    ids = await a.queue_add(
        blob,
        "s@example.test",
        {f"d{i}.test": [QueueRecipient(f"x@d{i}.test", "scheduled")] for i in range(1000)},
    )
    assert len(ids) == 1000
    sent: list[int] = []
    # node A's worker claims a batch with a short lease, then the node dies before sending
    orphaned = [e.id for e in await a.queue_claim("node-a:dead", 0.3, 25)]
    assert len(orphaned) == 25

    async def worker(store: PostgresStore, owner: str) -> None:
        idle_rounds = 0
        while len(sent) < 1000 and idle_rounds < 400:  # bounded: the lease must expire first
            batch = await store.queue_claim(owner, 60, 20)
            if not batch:
                idle_rounds += 1
                await asyncio.sleep(0.025)
                continue
            for entry in batch:
                sent.append(entry.id)  # the SMTP transaction would happen here
                await store.queue_update(
                    entry.id,
                    owner,
                    [QueueRecipient(entry.recipients[0].address, "delivered")],
                    next_attempt=None,
                    last_error="",
                )

    await asyncio.gather(
        worker(a, "node-a:1"), worker(a, "node-a:2"), worker(b, "node-b:1"), worker(b, "node-b:2")
    )
    assert sorted(sent) == sorted(ids)  # every entry once, none twice
    assert set(orphaned) <= set(sent)  # the dead node's entries were taken over
    assert await a.queue_list() == []
    assert await b.check() == []


async def test_postgres_listen_connection_recovers(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    sub = b.changes.subscribe(inbox)
    pid = b.listen_backend_pid
    assert pid is not None
    async with a.pool.connection() as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # after reconnecting, node B wakes every watcher: notifications may have been lost
    assert await sub.wait(10)
    assert b.listen_backend_pid not in (None, pid)
    rec = await a.append(inbox, await stage_blob(a, MSG))
    assert await sub.wait(10)
    assert sub.modseq >= rec.modseq
    sub.close()


async def test_postgres_pool_recovers_from_lost_connections(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    async with a.pool.connection() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND pid <> %s AND application_name = ''",
            (a.listen_backend_pid,),
        )
    # every pooled connection of node B (and the others of node A) is gone; work goes on
    rec = await b.append(inbox, await stage_blob(b, MSG))
    assert [m.uid for m in await a.list_messages(inbox)] == [rec.uid]


async def test_postgres_listing_cache_follows_other_node(nodes: Nodes) -> None:
    a, b = nodes
    b._listing.min_size = 1  # cache every listing on node B
    inbox = await new_inbox(a)
    for i in range(6):
        await a.append(inbox, await stage_blob(a, MSG + bytes([65 + i])))
    assert [m.uid for m in await b.list_messages(inbox)] == [1, 2, 3, 4, 5, 6]
    # changes made on node A only: node B's cached listing must follow them
    await a.store_flags(inbox, [2, 5], FlagOp.ADD, ["\\Seen"])
    await a.expunge(inbox, [3])
    await a.append(inbox, await stage_blob(a, MSG + b"new"))
    fresh = await a.list_messages(inbox)  # node A does not cache small mailboxes
    assert await b.list_messages(inbox) == fresh
    assert [m.uid for m in fresh] == [1, 2, 4, 5, 6, 7]
    assert await b.list_messages(inbox) == fresh  # warm and unchanged
    box = await a.get_mailbox_by_id(inbox)
    assert box is not None
    other = await a.get_mailbox(box.account_id, "Archive")
    assert other is not None
    await a.move(inbox, [1], other.id)
    assert [m.uid for m in await b.list_messages(inbox)] == [2, 4, 5, 6, 7]
