"""The message trace and the administrator's spam settings on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mailwright.store.api import (
    DeliveryTarget,
    LocalCopies,
    QueueAddition,
    QueueRecipient,
    Store,
    TraceEvent,
)

MSG = b"From: a@example.test\r\nTo: x@remote.test\r\nMessage-ID: <m1@example.test>\r\n\r\nhi\r\n"


async def test_trace_events_commit_with_the_delivery_and_are_found_both_ways(
        store: Store, stage) -> None:
    await store.add_domain("example.test")
    acc = await store.add_account("ann@example.test", "x")
    blob = await stage(MSG)
    local = LocalCopies(blob, (DeliveryTarget(acc.id, "INBOX", frozenset()),))
    queued = QueueAddition(blob, "a@example.test",
                           {"remote.test": [QueueRecipient("x@remote.test", "scheduled")]},
                           queue_id="ABCDEF012345")
    events = [TraceEvent("accepted", "from [192.0.2.1]", "ABCDEF012345", "<m1@example.test>"),
              TraceEvent("delivered", "into INBOX", "ABCDEF012345", "m1@example.test",
                         "ann@example.test"),
              TraceEvent("queued", "for remote.test", "ABCDEF012345", "m1@example.test",
                         "x@remote.test")]
    records, ids = await store.deliver_and_queue(local, queued, events)
    assert len(records) == 1 and len(ids) == 1
    (entry,) = await store.queue_claim(owner="n1", lease=60, limit=1)
    await store.queue_update(entry.id, "n1", entry.recipients, next_attempt=None,
                             last_error="", trace=[TraceEvent(
                                 "relayed", "mx.remote.test: 250 ok", "ABCDEF012345",
                                 recipient="x@remote.test")])
    by_qid = await store.trace_find("ABCDEF012345")
    assert [e.stage for e in by_qid] == ["accepted", "delivered", "queued", "relayed"]
    assert by_qid[0].message_id == "m1@example.test"  # kept without brackets
    assert by_qid[1].recipient == "ann@example.test"
    assert all(e.at is not None and abs(e.at - datetime.now(UTC)) < timedelta(minutes=5)
               for e in by_qid)
    # by Message-ID (with or without brackets) the queue's own events come along
    assert await store.trace_find("<m1@example.test>") == by_qid
    assert await store.trace_find("m1@example.test") == by_qid
    assert await store.trace_find("abcdef012345") == by_qid  # queue ids are upper case
    assert await store.trace_find("nothing@example.test") == []
    assert await store.trace_find("  ") == []


async def test_trace_add_alone_and_purge(store: Store) -> None:
    await store.trace_add([TraceEvent("rejected", "554 5.7.1 spam", "QID000000001", "r@x")])
    await store.trace_add([])
    assert [e.stage for e in await store.trace_find("r@x")] == ["rejected"]
    assert await store.trace_purge(3600) == 0  # younger than an hour: kept
    assert await store.trace_purge(-1) == 1  # everything before "a second from now"
    assert await store.trace_find("QID000000001") == []


async def test_trace_limits_long_values(store: Store) -> None:
    await store.trace_add([TraceEvent("deferred", "x" * 10_000, "Q" * 100, "m" * 5000)])
    (event,) = await store.trace_find("Q" * 64)
    assert len(event.detail) == 2000 and len(event.message_id) == 998


async def test_spam_overrides(store: Store) -> None:
    assert await store.spam_overrides() == {}
    await store.spam_overrides_set({("", "junk_threshold"): "3.5",
                                    ("example.org", "reject_threshold"): "0",
                                    ("", "dnsbl"): json.dumps(["zen.example"])})
    await store.spam_overrides_set({("", "junk_threshold"): "4.0"})  # replaced
    assert await store.spam_overrides() == {("", "junk_threshold"): "4.0",
                                            ("example.org", "reject_threshold"): "0",
                                            ("", "dnsbl"): '["zen.example"]'}
    await store.spam_overrides_set({("", "dnsbl"): None, ("", "missing"): None})
    assert set(await store.spam_overrides()) == {("", "junk_threshold"),
                                                 ("example.org", "reject_threshold")}


async def test_refusals_recorded_later_are_bounded_then_dropped_and_counted(store: Store) -> None:
    """A flood of refusals from unauthenticated peers (greylisting, rate limits) cannot grow the
    background inserts of delivery.trace without limit: beyond MAX_PENDING in flight, a
    refusal's events are dropped and counted, and those accepted are all stored."""
    from mailwright.delivery import trace

    before = trace.dropped
    for _ in range(trace.MAX_PENDING + 50):  # no await in between: none has run yet
        trace.record_later(store, [TraceEvent("rejected", "greylisted", "",
                                              "flood@example.test", "x@example.test")])
    assert len(trace._pending) == trace.MAX_PENDING
    assert trace.dropped - before == 50
    await trace.settle()
    assert not trace._pending
    found = await store.trace_find("flood@example.test", limit=2 * trace.MAX_PENDING)
    assert len(found) == trace.MAX_PENDING
