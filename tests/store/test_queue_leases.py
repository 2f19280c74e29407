"""Queue leases on every backend: claim one entry per attempt, renew, compare-and-set results."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mailwright.store.api import LeaseLost, NotFound, QueueRecipient, Store

MSG = b"From: a@example.test\r\nTo: x@remote.test\r\nSubject: q\r\n\r\nbody\r\n"
RCPT = {"remote.test": [QueueRecipient("x@remote.test", "scheduled")]}


async def _entry(store: Store, stage) -> int:
    (entry_id,) = await store.queue_add(await stage(MSG), "a@example.test", RCPT,
                                        queue_id="ABCDEF012345")
    return entry_id


async def _expire(store: Store, entry_id: int) -> None:
    """Wait (bounded) until a short lease has run out (one machine: one clock)."""
    for _ in range(400):
        entry = await store.queue_get(entry_id)
        assert entry is not None and entry.lease_until is not None
        if entry.lease_until < datetime.now(UTC) - timedelta(milliseconds=50):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("lease never ran out")


async def test_claim_entry_is_exclusive_and_due_only(store: Store, stage) -> None:
    entry_id = await _entry(store, stage)
    assert [e.id for e in await store.queue_due(10)] == [entry_id]
    entry = await store.queue_claim_entry(entry_id, "node-a", 60)
    assert entry is not None and entry.lease_owner == "node-a"
    assert entry.queue_id == "ABCDEF012345"
    assert await store.queue_claim_entry(entry_id, "node-b", 60) is None
    assert await store.queue_claim_entry(entry_id, "node-a", 60) is None  # not twice either
    assert await store.queue_due(10) == []
    later = datetime.now(UTC) + timedelta(hours=1)
    await store.queue_update(entry_id, "node-a", RCPT["remote.test"], next_attempt=later,
                             last_error="451 later")
    assert await store.queue_claim_entry(entry_id, "node-b", 60) is None  # not due


async def test_result_only_under_an_unexpired_lease_of_its_owner(store: Store, stage) -> None:
    entry_id = await _entry(store, stage)
    assert await store.queue_claim_entry(entry_id, "node-a", 0.3) is not None
    await _expire(store, entry_id)
    # the lease ran out and nobody took the entry yet: the late owner may still not record
    done = [QueueRecipient("x@remote.test", "delivered")]
    with pytest.raises(LeaseLost):
        await store.queue_update(entry_id, "node-a", done, next_attempt=None, last_error="")
    taken = await store.queue_claim_entry(entry_id, "node-b", 60)
    assert taken is not None
    with pytest.raises(LeaseLost):
        await store.queue_update(entry_id, "node-a", done, next_attempt=None, last_error="")
    assert await store.queue_renew([entry_id], "node-a", 60) == []
    assert await store.queue_renew([entry_id], "node-b", 60) == [entry_id]
    await store.queue_update(entry_id, "node-b", done, next_attempt=None, last_error="")
    assert await store.queue_get(entry_id) is None
    assert await store.check() == []


async def test_renewal_keeps_a_lease_past_its_first_term(store: Store, stage) -> None:
    entry_id = await _entry(store, stage)
    assert await store.queue_claim_entry(entry_id, "node-a", 0.4) is not None
    for _ in range(6):  # 1.2 s in all, three times the first term
        await asyncio.sleep(0.2)
        assert await store.queue_renew([entry_id], "node-a", 0.4) == [entry_id]
        assert await store.queue_claim_entry(entry_id, "node-b", 60) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    await store.queue_update(entry_id, "node-a", RCPT["remote.test"], next_attempt=later,
                             last_error="451", extra={"k": "v"})
    entry = await store.queue_get(entry_id)
    assert entry is not None and entry.lease_owner is None and entry.extra == {"k": "v"}
    assert entry.attempts == 1


async def test_deleted_while_leased(store: Store, stage) -> None:
    entry_id = await _entry(store, stage)
    assert await store.queue_claim_entry(entry_id, "node-a", 60) is not None
    assert await store.queue_delete(entry_id)
    assert await store.queue_renew([entry_id], "node-a", 60) == []
    with pytest.raises(NotFound):
        await store.queue_update(entry_id, "node-a", RCPT["remote.test"], next_attempt=None,
                                 last_error="")
    assert await store.check() == []


async def test_update_without_attempt_keeps_the_count(store: Store, stage) -> None:
    entry_id = await _entry(store, stage)
    assert await store.queue_claim_entry(entry_id, "node-a", 60) is not None
    now = datetime.now(UTC)
    await store.queue_update(entry_id, "node-a", RCPT["remote.test"], next_attempt=now,
                             last_error="", attempt=False)
    entry = await store.queue_get(entry_id)
    assert entry is not None and entry.attempts == 0


async def test_retry_makes_one_waiting_entry_due_and_leaves_due_ones_alone(
    store: Store, stage
) -> None:
    entry_id = await _entry(store, stage)
    entry = await store.queue_claim_entry(entry_id, "node-a", 60)
    assert entry is not None
    later = datetime.now(UTC) + timedelta(hours=1)
    await store.queue_update(entry_id, "node-a", entry.recipients, next_attempt=later,
                             last_error="451 try later")
    assert await store.queue_due(10) == []
    assert await store.queue_retry(entry_id) is True
    (due,) = await store.queue_due(10)
    assert due.id == entry_id and due.next_attempt <= datetime.now(UTC) + timedelta(seconds=5)
    before = due.next_attempt
    assert await store.queue_retry(entry_id) is True  # already due: its time stays
    after = await store.queue_get(entry_id)
    assert after is not None and after.next_attempt == before
    assert await store.queue_retry(entry_id + 1000) is False
