"""Mailbox ACLs (RFC 4314) kept and enforced in the store, on both backends: who may look up,
read, flag, append, expunge, copy, move, create and delete in another account's mailbox, and
what the refusals are (`AccessDenied` when a right is missing, `NotFound` when the mailbox is
not theirs to know of)."""

from __future__ import annotations

import pytest

from mailwright.store.api import (
    ALL_RIGHTS,
    AccessDenied,
    AppendItem,
    DeliveryTarget,
    FlagOp,
    InvalidOperation,
    NotFound,
    Store,
)
from mailwright.store.core.acl import effective, flag_rights, modify, parse_rights


async def _blob(store: Store, text: str = "Subject: x\r\n\r\nbody\r\n") -> AppendItem:
    w = store.blob_writer()
    w.write(text.encode())
    return AppendItem(await w.finish())


async def _setup(store: Store) -> tuple[int, int, int, int]:
    await store.add_domain("example.org")
    alice = (await store.add_account("alice@example.org", "x")).id
    bob = (await store.add_account("bob@example.org", "x")).id
    carol = (await store.add_account("carol@example.org", "x")).id
    projects = await store.create_mailbox(alice, "Projects")
    return alice, bob, carol, projects.id


def test_acl_rights_grammar() -> None:
    assert parse_rights("rl") == "lr"
    # RFC 4314 2.1.1 (RIGHTS=texk): c is k, d is x, t and e
    assert parse_rights("cd") == "kxte"
    assert modify("lr", "+wi") == "lrwi"
    assert modify("lrwi", "-rw") == "li"
    assert modify("lrwi", "s") == "s"
    with pytest.raises(ValueError):
        parse_rights("lrz")
    assert effective([("bob", "lrw"), ("-anyone", "w")], {"bob", "anyone"}) == "lr"
    assert flag_rights(FlagOp.ADD, ["\\Seen"]) == "s"
    assert flag_rights(FlagOp.ADD, ["\\Deleted", "$x"]) == "wt"
    assert flag_rights(FlagOp.REPLACE, []) == "stw"


async def test_acl_owner_has_every_right_and_others_none(store: Store) -> None:
    alice, bob, _, projects = await _setup(store)
    assert await store.acl_rights(alice, projects) == ALL_RIGHTS
    with pytest.raises(NotFound):
        await store.acl_rights(bob, projects)
    # by id, every operation is refused as such
    with pytest.raises(AccessDenied):
        await store.list_messages_as(bob, projects)
    with pytest.raises(AccessDenied):
        await store.append_as(bob, projects, [await _blob(store)])
    assert await store.shared_mailboxes(bob) == []
    # only an administrator of the mailbox changes its ACL
    with pytest.raises(AccessDenied):
        await store.acl_set(bob, projects, "bob@example.org", "lr")
    with pytest.raises(NotFound):
        await store.acl_require(bob, 999999, "l")


async def test_acl_grant_read_and_refusals(store: Store) -> None:
    alice, bob, carol, projects = await _setup(store)
    await store.acl_set(alice, projects, "Bob@Example.org", "lr")
    assert await store.acl_get(alice, projects) == [
        ("alice@example.org", ALL_RIGHTS), ("bob@example.org", "lr")]
    assert await store.acl_rights(bob, projects) == "lr"
    [shared] = await store.shared_mailboxes(bob)
    assert (shared.owner, shared.mailbox.name, shared.rights) == (
        "alice@example.org", "Projects", "lr")
    assert await store.shared_mailboxes(carol) == []
    [rec] = await store.append_as(alice, projects, [await _blob(store)])
    assert [r.uid for r in await store.list_messages_as(bob, projects)] == [rec.uid]
    assert (await store.mailbox_status_as(bob, projects)).messages == 1
    with pytest.raises(AccessDenied) as denied:
        await store.append_as(bob, projects, [await _blob(store)])
    assert denied.value.needed == "i"
    with pytest.raises(AccessDenied):
        await store.store_flags_as(bob, projects, [rec.uid], FlagOp.ADD, ["\\Seen"])
    with pytest.raises(AccessDenied):
        await store.expunge_as(bob, projects, [rec.uid])
    with pytest.raises(AccessDenied):
        await store.delete_mailbox_as(bob, projects)
    with pytest.raises(AccessDenied):
        await store.acl_get(bob, projects)
    with pytest.raises(AccessDenied):
        await store.create_mailbox_as(bob, alice, "Projects/Sub")
    # copying out needs r only; copying into bob's own mailbox is fine
    bob_inbox = await store.get_mailbox(bob, "INBOX")
    assert bob_inbox is not None
    assert len(await store.copy_as(bob, projects, [rec.uid], bob_inbox.id)) == 1
    # moving out needs t and e as well
    with pytest.raises(AccessDenied):
        await store.move_as(bob, projects, [rec.uid], bob_inbox.id)
    # and nothing of alice's INBOX
    alice_inbox = await store.get_mailbox(alice, "INBOX")
    assert alice_inbox is not None
    with pytest.raises(AccessDenied):
        await store.copy_as(bob, alice_inbox.id, [1], bob_inbox.id)
    with pytest.raises(AccessDenied):
        await store.copy_as(bob, bob_inbox.id, [1], alice_inbox.id)


async def test_acl_write_rights_within_and_revocation(store: Store) -> None:
    alice, bob, _, projects = await _setup(store)
    await store.acl_set(alice, projects, "bob@example.org", "lrsikte")
    [rec] = await store.append_as(
        bob, projects, [AppendItem((await _blob(store)).blob, ("\\Seen", "\\Flagged"))])
    # w is missing: \Flagged was not set; s is there: \Seen was
    assert rec.flags == frozenset({"\\Seen"})
    with pytest.raises(AccessDenied):
        await store.store_flags_as(bob, projects, [rec.uid], FlagOp.ADD, ["\\Flagged"])
    res = await store.store_flags_as(bob, projects, [rec.uid], FlagOp.ADD, ["\\Deleted"])
    assert res.updated
    assert await store.expunge_as(bob, projects, [rec.uid]) == [rec.uid]
    child = await store.create_mailbox_as(bob, alice, "Projects/2026")
    assert child.account_id == alice
    # the child inherits the parent's ACL: bob sees it
    assert await store.acl_rights(bob, child.id) == "lrsikte"
    with pytest.raises(AccessDenied):
        await store.create_mailbox_as(bob, alice, "TopLevel")
    # take rights away: +/- modify, then DELETEACL
    await store.acl_set(alice, projects, "bob@example.org", "-ite")
    assert await store.acl_rights(bob, projects) == "lrsk"
    await store.acl_delete(alice, projects, "bob@example.org")
    with pytest.raises(NotFound):
        await store.acl_rights(bob, projects)


async def test_acl_groups_anyone_and_negative_rights(store: Store) -> None:
    alice, bob, carol, projects = await _setup(store)
    await store.add_alias("team@example.org", ["bob@example.org", "carol@example.org"])
    await store.acl_set(alice, projects, "team@example.org", "lri")
    assert await store.acl_rights(bob, projects) == "lri"
    assert await store.acl_rights(carol, projects) == "lri"
    await store.acl_set(alice, projects, "-carol@example.org", "i")
    assert await store.acl_rights(carol, projects) == "lr"
    await store.acl_delete(alice, projects, "team@example.org")
    await store.acl_set(alice, projects, "anyone", "l")
    assert await store.acl_rights(bob, projects) == "l"
    await store.acl_set(alice, projects, "authenticated", "lr")
    assert await store.acl_rights(bob, projects) == "lr"
    assert [s.mailbox.name for s in await store.shared_mailboxes(bob)] == ["Projects"]
    # an identifier that names nothing, and the owner's own entry, are refused
    with pytest.raises(InvalidOperation):
        await store.acl_set(alice, projects, "nobody@example.org", "lr")
    with pytest.raises(InvalidOperation):
        await store.acl_set(alice, projects, "alice@example.org", "lr")
    with pytest.raises(ValueError):
        await store.acl_set(alice, projects, "bob@example.org", "lrz")


async def test_acl_entries_go_with_the_mailbox_and_follow_a_rename(store: Store) -> None:
    alice, bob, _, projects = await _setup(store)
    await store.acl_set(alice, projects, "bob@example.org", "lr")
    await store.rename_mailbox(alice, "Projects", "Work")
    [shared] = await store.shared_mailboxes(bob)
    assert shared.mailbox.name == "Work"
    await store.delete_mailbox(projects)
    assert await store.shared_mailboxes(bob) == []
    # a mailbox created again under the old name is a new one: not shared
    again = await store.create_mailbox(alice, "Work")
    with pytest.raises(NotFound):
        await store.acl_rights(bob, again.id)
    # delivery is unaffected by ACLs (it is the owner's)
    blob = (await _blob(store)).blob
    [rec] = await store.deliver(blob, [DeliveryTarget(alice, "Work")])
    assert rec.mailbox_id == again.id


async def test_acl_entries_of_a_deleted_account_do_not_pass_to_its_successor(
    store: Store,
) -> None:
    alice, bob, _, projects = await _setup(store)
    await store.acl_set(alice, projects, "bob@example.org", "lr")
    await store.delete_account(bob)
    again = (await store.add_account("bob@example.org", "x")).id
    assert await store.shared_mailboxes(again) == []
    assert await store.acl_get(alice, projects) == [("alice@example.org", ALL_RIGHTS)]
