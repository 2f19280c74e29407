"""RENAME of mailboxes whose names hold LIKE/escape characters, and collisions, on every backend.

RFC 9051 6.3.6: renaming a mailbox renames its inferior hierarchical names too. Names are
matched literally: `_`, `%` and `\\` are ordinary characters in a mailbox name, and a
collision anywhere in the renamed subtree is refused as a whole (nothing is renamed).
"""

from __future__ import annotations

import pytest

from mailwright.store.api import AlreadyExists, Store


async def _account(store: Store) -> int:
    await store.add_domain("example.test")
    return (await store.add_account("alice@example.test", "$argon2id$fake")).id


async def _names(store: Store, acc: int) -> set[str]:
    return {m.name for m in await store.list_mailboxes(acc)} - {
        "INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}


@pytest.mark.parametrize("old", ["my_box", "100%", "back\\slash", "a_%\\b"])
async def test_rename_moves_children_of_names_with_wildcards(store: Store, old: str) -> None:
    acc = await _account(store)
    # decoys that a wildcard or a case-insensitive match would take along
    decoy = old.replace("_", "X").replace("%", "Y").replace("\\", "Z")
    for name in (old, f"{old}/child", f"{old}/child/leaf", f"{decoy}/child",
                 f"{old.upper()}x/child"):
        await store.create_mailbox(acc, name)
    await store.set_subscribed(acc, f"{old}/child", True)
    await store.rename_mailbox(acc, old, "renamed")
    assert await _names(store, acc) == {
        "renamed", "renamed/child", "renamed/child/leaf", f"{decoy}/child", f"{old.upper()}x/child"}
    assert "renamed/child" in await store.list_subscriptions(acc)


async def test_rename_collision_in_subtree_is_already_exists_and_changes_nothing(
    store: Store,
) -> None:
    acc = await _account(store)
    for name in ("a_b", "a_b/x", "a_b/y", "dest/y"):
        await store.create_mailbox(acc, name)
    before = await _names(store, acc)
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(acc, "a_b", "dest")  # dest/y would be taken twice
    assert await _names(store, acc) == before
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(acc, "a_b/x", "dest/y")
    assert await _names(store, acc) == before


async def test_rename_to_an_ancestor_name(store: Store) -> None:
    """`x/y` -> `x`: its child `x/y/y` becomes `x/y`, the name its parent just gave up."""
    acc = await _account(store)
    for name in ("x/y", "x/y/y"):
        await store.create_mailbox(acc, name)
    await store.rename_mailbox(acc, "x/y", "x")
    assert await _names(store, acc) == {"x", "x/y"}
