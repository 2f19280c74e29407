"""The node-local cache of directory look-ups (store/postgres/lookups.py) on two nodes.

Node B answers domains, accounts, aliases and active Sieve scripts from its cache; a change
made through node A reaches it by the NOTIFY sent in A's transaction, and B's answers change
as soon as that notification has arrived (the test waits for it on B's change hub, as a
session would). Skipped when PostgreSQL is not reachable.
"""

from __future__ import annotations

import pytest

from mailwright.accounts.directory import Directory
from mailwright.store.changes import DIRECTORY
from tests.support.pg import Nodes

pytestmark = pytest.mark.postgres


async def test_directory_changes_reach_the_other_nodes_cache(nodes: Nodes) -> None:
    a, b = nodes
    await a.add_domain("one.test")
    alice = await a.add_account("alice@one.test", "x")
    await a.add_account("carol@one.test", "x")
    await a.add_alias("team@one.test", ["alice@one.test", "carol@one.test"])
    await a.sieve_put(alice.id, "s", "keep;")
    await a.sieve_activate(alice.id, "s")
    directory = Directory(b)
    sub = b.changes.subscribe(DIRECTORY)

    async def heard() -> None:
        # liveness bound only: the notification normally arrives within milliseconds
        assert await sub.wait(10)

    # B reads once, then answers from its cache
    assert not await b.has_domain("two.test")
    team = await directory.resolve("team@one.test")
    assert [x.address for x in team.accounts] == ["alice@one.test", "carol@one.test"]
    assert (await b.sieve_active_many([alice.id]))[alice.id] == ("s", "keep;")
    hits = b.lookups.hits
    assert not await b.has_domain("two.test")
    assert (await directory.resolve("team@one.test")).accounts == team.accounts
    assert (await b.sieve_active_many([alice.id]))[alice.id] == ("s", "keep;")
    assert b.lookups.hits >= hits + 4

    # a new domain
    sub.clear()
    await a.add_domain("two.test")
    await heard()
    assert await b.has_domain("two.test")

    # a disabled account is no longer delivered to
    sub.clear()
    await a.update_account(alice.id, disabled=True)
    await heard()
    assert [x.address for x in (await directory.resolve("team@one.test")).accounts] == [
        "carol@one.test"
    ]
    assert (await b.find_account("alice@one.test")).disabled  # type: ignore[union-attr]

    # a removed alias
    sub.clear()
    await a.delete_alias("team@one.test")
    await heard()
    assert await b.get_alias("team@one.test") is None
    assert not (await directory.resolve("team@one.test")).deliverable

    # another active script, then a deleted account
    sub.clear()
    await a.sieve_put(alice.id, "s", "discard;")
    await heard()
    assert (await b.sieve_active_many([alice.id]))[alice.id] == ("s", "discard;")
    sub.clear()
    await a.delete_account(alice.id)
    await heard()
    assert await b.find_account("alice@one.test") is None
    assert await b.get_account(alice.id) is None
    assert await b.sieve_active_many([alice.id]) == {}
    sub.close()


async def test_own_change_is_seen_at_once(nodes: Nodes) -> None:
    a, _ = nodes
    await a.add_domain("one.test")
    assert await a.find_account("bob@one.test") is None
    bob = await a.add_account("bob@one.test", "x")  # answered only once A has forgotten
    assert await a.find_account("bob@one.test") == bob
    await a.set_password(bob.id, "y")
    assert (await a.find_account("bob@one.test")).password_hash == "y"  # type: ignore[union-attr]


async def test_nothing_is_kept_across_a_lost_listen_connection(nodes: Nodes) -> None:
    a, b = nodes
    heard = b.changes.subscribe(DIRECTORY)
    before = b.lookups.generation
    await a.add_domain("one.test")
    await a.add_alias("x@one.test", ["y@elsewhere.test"])
    # B must have heard both changes before it reads: a notification arriving during its read
    # rightly keeps that answer out of the cache, which is not what is tested here
    while b.lookups.generation < before + 2:
        assert await heard.wait(10)  # liveness bound only
    heard.close()
    assert await b.get_alias("x@one.test") is not None
    # removed behind the nodes' back, with no notification: B keeps its answer...
    async with a.pool.connection() as conn:
        await conn.execute("DELETE FROM aliases WHERE source = 'x@one.test'")
    assert await b.get_alias("x@one.test") is not None
    # ...until its LISTEN connection is lost, when a notification may have been missed
    sub = b.changes.subscribe(-999)  # a key nobody changes: woken only by the reconnection
    pid = b.listen_backend_pid
    assert pid is not None
    async with a.pool.connection() as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert await sub.wait(10)  # reconnected (every watcher is woken after a gap)
    assert b.listen_backend_pid not in (None, pid)
    assert await b.get_alias("x@one.test") is None
    sub.close()


async def test_reads_go_through_while_listen_is_down(nodes: Nodes) -> None:
    a, b = nodes
    await a.add_domain("one.test")
    assert await b.has_domain("one.test")
    b.changelog.reliable = False  # as while the LISTEN connection is down
    reads = b.lookups.reads
    assert await b.has_domain("one.test")
    assert await b.has_domain("one.test")
    assert b.lookups.reads == reads + 2
