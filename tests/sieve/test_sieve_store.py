"""Sieve script storage and sieve memory on both backends (the `store` fixture)."""

from __future__ import annotations

import asyncio

import pytest

from mailwright.store.api import AlreadyExists, InvalidOperation, NotFound, Store


async def _account(store: Store) -> int:
    await store.add_domain("example.test")
    return (await store.add_account("bob@example.test", "$argon2id$fake")).id


async def test_sieve_store_put_get_list_replace(store: Store) -> None:
    acc = await _account(store)
    await store.sieve_put(acc, "main", "keep;\n")
    await store.sieve_put(acc, "vacation", 'require "vacation"; vacation "é";')
    assert await store.sieve_get(acc, "main") == "keep;\n"
    await store.sieve_put(acc, "main", "discard;\n")
    assert await store.sieve_get(acc, "main") == "discard;\n"
    listed = await store.sieve_list(acc)
    assert [(s.name, s.active) for s in listed] == [("main", False), ("vacation", False)]
    assert listed[1].size == len('require "vacation"; vacation "é";'.encode())
    assert await store.sieve_get(acc, "nothing") is None


async def test_sieve_store_one_active_script(store: Store) -> None:
    acc = await _account(store)
    await store.sieve_put(acc, "a", "keep;")
    await store.sieve_put(acc, "b", "discard;")
    assert await store.sieve_active(acc) is None
    await store.sieve_activate(acc, "a")
    assert await store.sieve_active(acc) == ("a", "keep;")
    await store.sieve_activate(acc, "b")
    assert await store.sieve_active(acc) == ("b", "discard;")
    assert [s.active for s in await store.sieve_list(acc)] == [False, True]
    with pytest.raises(NotFound):
        await store.sieve_activate(acc, "zzz")
    assert await store.sieve_active(acc) == ("b", "discard;")
    await store.sieve_activate(acc, None)
    assert await store.sieve_active(acc) is None


async def test_sieve_store_concurrent_activation_leaves_one(store: Store) -> None:
    acc = await _account(store)
    for n in range(5):
        await store.sieve_put(acc, f"s{n}", "keep;")
    await asyncio.gather(*(store.sieve_activate(acc, f"s{n}") for n in range(5)))
    assert sum(s.active for s in await store.sieve_list(acc)) == 1


async def test_sieve_store_delete_and_rename(store: Store) -> None:
    acc = await _account(store)
    await store.sieve_put(acc, "a", "keep;")
    await store.sieve_put(acc, "b", "keep;")
    await store.sieve_activate(acc, "a")
    with pytest.raises(InvalidOperation):
        await store.sieve_delete(acc, "a")  # RFC 5804 2.10: not the active one
    with pytest.raises(NotFound):
        await store.sieve_delete(acc, "nope")
    with pytest.raises(AlreadyExists):
        await store.sieve_rename(acc, "a", "b")
    with pytest.raises(NotFound):
        await store.sieve_rename(acc, "nope", "c")
    await store.sieve_rename(acc, "a", "c")
    assert await store.sieve_active(acc) == ("c", "keep;")  # stays active under its new name
    await store.sieve_delete(acc, "b")
    assert [s.name for s in await store.sieve_list(acc)] == ["c"]


async def test_sieve_store_memory_expires(store: Store) -> None:
    acc = await _account(store)
    assert not await store.sieve_seen(acc, "k")
    assert await store.sieve_remember(acc, "k", 3600) is True
    assert await store.sieve_seen(acc, "k")
    assert await store.sieve_remember(acc, "k", 3600) is False
    assert await store.sieve_remember(acc, "gone", -1) is True  # already expired
    assert not await store.sieve_seen(acc, "gone")
    assert await store.sieve_remember(acc, "gone", 3600) is True


async def test_sieve_store_scripts_go_with_the_account(store: Store) -> None:
    acc = await _account(store)
    await store.sieve_put(acc, "a", "keep;")
    await store.sieve_remember(acc, "k", 3600)
    await store.delete_account(acc)
    acc2 = (await store.add_account("bob@example.test", "$argon2id$fake")).id
    assert await store.sieve_list(acc2) == []
    assert not await store.sieve_seen(acc2, "k")
