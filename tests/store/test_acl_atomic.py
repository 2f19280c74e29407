"""ACL checks made in the same transaction as the change they allow (RFC 4314), on both
backends: a revocation is atomic with respect to each operation; the flags an actor may not
set are dropped by COPY/MOVE and left alone by STORE (RFC 4314 4); groups nest."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest

from mailwright.store.api import AccessDenied, AppendItem, FlagOp, NotFound, Store
from mailwright.store.core.acl import MAX_GROUP_DEPTH, new_flags
from tests.support.backends import Backend


async def _item(store: Store, flags: tuple[str, ...] = ()) -> AppendItem:
    w = store.blob_writer()
    w.write(b"Subject: shared\r\n\r\nbody\r\n")
    return AppendItem(await w.finish(), flags)


async def _setup(store: Store) -> tuple[int, int, int]:
    await store.add_domain("example.org")
    alice = (await store.add_account("alice@example.org", "x")).id
    bob = (await store.add_account("bob@example.org", "x")).id
    projects = (await store.create_mailbox(alice, "Projects")).id
    return alice, bob, projects


def test_new_flags_changes_only_what_the_rights_cover() -> None:
    only_w = lambda f: f not in ("\\Seen", "\\Deleted")  # noqa: E731
    cur = {"\\Seen", "\\Deleted", "$a"}
    # a replace keeps \Seen and \Deleted (no s, no t) and replaces the keywords
    assert new_flags(cur, FlagOp.REPLACE, ["$b"], only_w) == {"\\Seen", "\\Deleted", "$b"}
    assert new_flags(cur, FlagOp.REPLACE, ["$b"], None) == {"$b"}
    assert new_flags(cur, FlagOp.REMOVE, ["\\Seen", "$a"], only_w) == {"\\Seen", "\\Deleted"}
    assert new_flags(set(), FlagOp.ADD, ["\\Deleted", "$x"], only_w) == {"$x"}


async def test_acl_revocation_between_calls_refuses_every_write(store: Store) -> None:
    alice, bob, projects = await _setup(store)
    await store.acl_set(alice, projects, "bob@example.org", "lrswite")
    [rec] = await store.append_as(bob, projects, [await _item(store)])
    await store.acl_set(alice, projects, "bob@example.org", "lr")
    with pytest.raises(AccessDenied):
        await store.append_as(bob, projects, [await _item(store)])
    with pytest.raises(AccessDenied):
        await store.store_flags_as(bob, projects, [rec.uid], FlagOp.ADD, ["\\Seen"])
    with pytest.raises(AccessDenied):
        await store.expunge_as(bob, projects, [rec.uid])
    await store.acl_delete(alice, projects, "bob@example.org")
    bob_inbox = await store.get_mailbox(bob, "INBOX")
    assert bob_inbox is not None
    with pytest.raises(AccessDenied):
        await store.copy_as(bob, projects, [rec.uid], bob_inbox.id)
    assert (await store.mailbox_status(projects)).messages == 1


async def test_acl_revocation_concurrent_with_appends_is_atomic(store: Store) -> None:
    """Every append committed before the revocation or was refused: none slips through on a
    check made before the revocation and a write made after it."""
    alice, bob, projects = await _setup(store)
    await store.acl_set(alice, projects, "bob@example.org", "lri")
    items = [await _item(store) for _ in range(40)]

    async def append(item: AppendItem) -> bool:
        try:
            await store.append_as(bob, projects, [item])
        except AccessDenied:
            return False
        return True

    async def revoke() -> None:
        await asyncio.sleep(0)
        await store.acl_set(alice, projects, "bob@example.org", "-i")

    results = await asyncio.gather(
        *(append(it) for it in items[:20]), revoke(), *(append(it) for it in items[20:]))
    outcomes = [r for r in results if r is not None]
    appended = sum(outcomes)
    denied = len(outcomes) - appended
    assert appended + denied == 40
    assert (await store.mailbox_status(projects)).messages == appended
    # after the revocation returned, nothing more goes in
    with pytest.raises(AccessDenied):
        await store.append_as(bob, projects, [await _item(store)])
    assert (await store.mailbox_status(projects)).messages == appended


async def test_acl_revocation_committing_during_an_append_refuses_it(
    store: Store, backend: Backend, tmp_path: Path
) -> None:
    """A revocation whose transaction is open when an APPEND starts: the APPEND waits for it
    and is refused. With a check made in a read before the write, the check would see the
    old rights (the revocation is not committed yet) and the write would go through once the
    revocation committed."""
    alice, bob, projects = await _setup(store)
    await store.acl_set(alice, projects, "bob@example.org", "lri")
    item = await _item(store)
    if backend.name == "postgres":
        conn = await psycopg.AsyncConnection.connect(backend.dsn)
        try:
            # what acl_set does: the mailbox row first, then the entry
            await conn.execute("SELECT id FROM mailboxes WHERE id = %s FOR UPDATE", (projects,))
            await conn.execute("DELETE FROM mailbox_acl WHERE mailbox_id = %s", (projects,))
            task = asyncio.ensure_future(store.append_as(bob, projects, [item]))
            await asyncio.sleep(0.3)  # lets the append reach the lock (not an assertion)
            await conn.commit()
        finally:
            await conn.close()
    else:
        raw = sqlite3.connect(tmp_path / "data" / "mailwright.db", isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("DELETE FROM mailbox_acl WHERE mailbox_id = ?", (projects,))
            task = asyncio.ensure_future(store.append_as(bob, projects, [item]))
            await asyncio.sleep(0.3)
            raw.execute("COMMIT")
        finally:
            raw.close()
    with pytest.raises(AccessDenied):
        await task
    assert (await store.mailbox_status(projects)).messages == 0


async def test_acl_copy_and_move_drop_flags_the_actor_may_not_set(store: Store) -> None:
    alice, bob, projects = await _setup(store)
    # RFC 4314 4 example: rights "rwis" on the target, so \Deleted is lost on COPY
    await store.acl_set(alice, projects, "bob@example.org", "lrwis")
    bob_inbox = await store.get_mailbox(bob, "INBOX")
    assert bob_inbox is not None
    [a, b] = await store.append_many(bob_inbox.id, [
        await _item(store, ("\\Draft", "\\Deleted")),
        await _item(store, ("$Forwarded", "\\Seen")),
    ])
    mapping = dict(await store.copy_as(bob, bob_inbox.id, [a.uid, b.uid], projects))
    copies = {r.uid: r.flags for r in await store.list_messages(projects)}
    assert copies[mapping[a.uid]] == frozenset({"\\Draft"})
    assert copies[mapping[b.uid]] == frozenset({"$Forwarded", "\\Seen"})
    # with "rsti" only \Deleted and \Seen survive a MOVE
    await store.acl_set(alice, projects, "bob@example.org", "lrsti")
    [c] = await store.append_many(bob_inbox.id, [await _item(store, ("\\Deleted", "$x"))])
    [(_, new)] = await store.move_as(bob, bob_inbox.id, [c.uid], projects)
    moved = {r.uid: r.flags for r in await store.list_messages(projects)}
    assert moved[new] == frozenset({"\\Deleted"})
    # the owner's own copies keep every flag
    [d] = await store.append_many(bob_inbox.id, [await _item(store, ("\\Deleted", "$x"))])
    alice_inbox = await store.get_mailbox(alice, "INBOX")
    assert alice_inbox is not None
    await store.acl_set(alice, alice_inbox.id, "bob@example.org", "lrwsti")
    [(_, kept)] = await store.copy_as(bob, bob_inbox.id, [d.uid], alice_inbox.id)
    [rec] = await store.get_messages(alice_inbox.id, [kept])
    assert rec.flags == frozenset({"\\Deleted", "$x"})


async def test_acl_store_changes_only_flags_the_actor_has_rights_for(store: Store) -> None:
    alice, bob, projects = await _setup(store)
    [rec] = await store.append_many(projects, [await _item(store, ("\\Seen", "\\Deleted"))])
    await store.acl_set(alice, projects, "bob@example.org", "lrw")
    # FLAGS (replace) with w only: keywords replaced, \Seen and \Deleted left as they are
    res = await store.store_flags_as(bob, projects, [rec.uid], FlagOp.REPLACE, ["\\Flagged"])
    [after] = res.updated
    assert after.flags == frozenset({"\\Seen", "\\Deleted", "\\Flagged"})
    res = await store.store_flags_as(bob, projects, [rec.uid], FlagOp.REPLACE, [])
    assert res.updated[0].flags == frozenset({"\\Seen", "\\Deleted"})
    # +FLAGS naming a flag they may change and one they may not: the first only (RFC 4314 4
    # "SHOULD NOT fail if the user has rights to modify at least one flag")
    res = await store.store_flags_as(
        bob, projects, [rec.uid], FlagOp.REMOVE, ["\\Seen", "$x"])
    assert not res.updated
    assert [r.flags for r in res.unchanged] == [frozenset({"\\Seen", "\\Deleted"})]
    # none of them: refused
    with pytest.raises(AccessDenied):
        await store.store_flags_as(bob, projects, [rec.uid], FlagOp.REMOVE, ["\\Seen"])
    await store.acl_set(alice, projects, "bob@example.org", "lr")
    with pytest.raises(AccessDenied):
        await store.store_flags_as(bob, projects, [rec.uid], FlagOp.REPLACE, [])


async def test_acl_nested_groups_bounded_and_cycle_safe(store: Store) -> None:
    alice, bob, projects = await _setup(store)
    carol = (await store.add_account("carol@example.org", "x")).id
    # all@ -> staff@ -> devs@ -> bob; the ACL names the outermost group
    await store.add_alias("devs@example.org", ["bob@example.org"])
    await store.add_alias("staff@example.org", ["devs@example.org"])
    await store.add_alias("all@example.org", ["staff@example.org", "carol@example.org"])
    await store.acl_set(alice, projects, "all@example.org", "lr")
    assert await store.acl_rights(bob, projects) == "lr"
    assert await store.acl_rights(carol, projects) == "lr"
    assert [s.mailbox.name for s in await store.shared_mailboxes(bob)] == ["Projects"]
    # a cycle (ring1 -> ring2 -> ring1 -> ...) ends; nobody in it gains anything
    await store.add_alias("ring1@example.org", ["ring2@example.org"])
    await store.add_alias("ring2@example.org", ["ring1@example.org", "carol@example.org"])
    await store.acl_set(alice, projects, "ring1@example.org", "lrw")
    assert await store.acl_rights(carol, projects) == "lrw"
    assert await store.acl_rights(bob, projects) == "lr"
    # deeper than MAX_GROUP_DEPTH: not a member
    inner = "bob@example.org"
    for level in range(MAX_GROUP_DEPTH + 1):
        name = f"deep{level}@example.org"
        await store.add_alias(name, [inner])
        inner = name
    await store.acl_delete(alice, projects, "all@example.org")
    await store.acl_set(alice, projects, inner, "lrs")
    with pytest.raises(NotFound):  # no right at all
        await store.acl_rights(bob, projects)
    await store.acl_set(alice, projects, f"deep{MAX_GROUP_DEPTH - 1}@example.org", "lr")
    assert await store.acl_rights(bob, projects) == "lr"
    [shared] = await store.shared_mailboxes(bob)
    assert shared.rights == "lr"
