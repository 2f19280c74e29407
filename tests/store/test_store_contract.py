"""Where the two backends drifted apart: each test here failed on one of them (issue 15, item 5).

Run, like every store test, on SQLite and on PostgreSQL (tests/support/backends.py); each states
the one behaviour both must share.
"""

from __future__ import annotations

import pytest

from mailwright.store.api import NotFound, Store


async def test_domain_names_are_matched_exactly_not_as_patterns(store: Store) -> None:
    # SQLite matched accounts and aliases to a domain with LIKE: `_` matched any character and
    # case was ignored, so deleting a_b.test was refused for the accounts of axb.test (and
    # would have taken axb.test's aliases with it). PostgreSQL compared the suffix exactly.
    for name in ("a_b.test", "axb.test"):
        await store.add_domain(name)
    await store.add_account("carol@axb.test", "x")
    await store.add_alias("@axb.test", ["carol@axb.test"])
    await store.add_alias("sales@axb.test", ["carol@axb.test"])
    assert await store.list_accounts("a_b.test") == []
    assert await store.list_accounts("AXB.test") == []
    assert [a.address for a in await store.list_accounts("axb.test")] == ["carol@axb.test"]
    await store.delete_domain("a_b.test")
    assert [d.name for d in await store.list_domains()] == ["axb.test"]
    assert sorted(a.source for a in await store.list_aliases()) == ["@axb.test", "sales@axb.test"]


async def test_create_mailbox_of_a_missing_account_is_not_found(store: Store) -> None:
    # SQLite answered AlreadyExists ("mailbox X already exists") for the account's foreign key.
    with pytest.raises(NotFound):
        await store.create_mailbox(999_999, "X")


async def test_subscribe_for_a_missing_account_is_not_found(store: Store) -> None:
    # SQLite let sqlite3.IntegrityError out of the store (no StoreError at all).
    with pytest.raises(NotFound):
        await store.set_subscribed(999_999, "X", True)
    await store.set_subscribed(999_999, "X", False)  # nothing to remove is no error on both
