"""Rules that the two backends used to apply differently, now written once in `store.core`:
each test runs on every backend (the `store` fixture) and pins the one behaviour."""

from __future__ import annotations

import asyncio

import pytest

from mailwright.store.api import (
    AlreadyExists,
    NotFound,
    QueueRecipient,
    SpamLesson,
    Store,
    TLSResult,
)
from mailwright.store.core.tx import drive

MSG = b"From: a@example.test\r\nTo: x@remote.test\r\nSubject: q\r\n\r\nbody\r\n"


async def _account(store: Store) -> int:
    await store.add_domain("example.test")
    return (await store.add_account("carol@example.test", "$argon2id$fake")).id


async def test_sieve_rename_onto_itself_is_already_exists(store: Store) -> None:
    # SQLite said AlreadyExists, PostgreSQL renamed silently (RFC 5804 2.11.1: the new name
    # exists, so NO (ALREADYEXISTS))
    acc = await _account(store)
    await store.sieve_put(acc, "a", "keep;")
    with pytest.raises(AlreadyExists):
        await store.sieve_rename(acc, "a", "a")
    with pytest.raises(NotFound):
        await store.sieve_rename(acc, "missing", "missing")


async def test_send_as_for_a_missing_account_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.grant_send_as(424242, "x@example.test")
    acc = await _account(store)
    await store.grant_send_as(acc, "x@example.test")
    await store.grant_send_as(acc, "x@example.test")
    assert await store.list_send_as(acc) == [(acc, "x@example.test")]


async def test_spam_label_is_none_until_taught_and_taking_back_never_goes_negative(
    store: Store,
) -> None:
    acc = await _account(store)
    assert await store.spam_label(acc, "b" * 64) is None
    spam = SpamLesson(acc, "b" * 64, "spam", (0, acc), (5, -7, 2**62), (("from", "s@x.test"),))
    assert await store.spam_learn(spam)
    assert not await store.spam_learn(spam)
    ham = SpamLesson(acc, "b" * 64, "ham", (0, acc), (5, -7, 2**62), (("from", "s@x.test"),))
    assert await store.spam_learn(ham)
    assert await store.spam_label(acc, "b" * 64) == "ham"
    counts = await store.spam_counts([0, acc], [5, -7, 2**62, 99])
    assert counts == {(s, t): (1, 0) for s in (0, acc) for t in (5, -7, 2**62)}
    assert await store.spam_totals([0, acc, 77]) == {0: (1, 0), acc: (1, 0), 77: (0, 0)}
    assert await store.spam_senders(acc, [("from", "s@x.test"), ("to", "s@x.test")]) == {
        ("from", "s@x.test"): (1, 0)}


async def test_queue_renew_answers_in_the_order_asked_and_only_held_leases(
    store: Store, stage
) -> None:
    rcpts = {d: [QueueRecipient(f"x@{d}", "scheduled")] for d in ("a.test", "b.test", "c.test")}
    ids = await store.queue_add(await stage(MSG), "a@example.test", rcpts)
    for i in ids[:2]:
        assert await store.queue_claim_entry(i, "me", 60) is not None
    assert await store.queue_claim_entry(ids[2], "other", 60) is not None
    assert await store.queue_renew([ids[1], ids[2], ids[0], ids[1]], "me", 60) == [
        ids[1], ids[0], ids[1]]


async def test_tls_results_taken_once_in_day_and_domain_order(store: Store) -> None:
    for day, dom in (("2026-12-02", "b.test"), ("2026-12-01", "z.test"), ("2026-12-02", "a.test")):
        r = TLSResult(day, dom, "sts", "[]", "", "mx." + dom, "192.0.2.1")
        await store.tls_result_add(r)
        await store.tls_result_add(r)
    taken = await store.tls_results_take("2026-12-03")
    assert [(t.day, t.policy_domain, t.count) for t in taken] == [
        ("2026-12-01", "z.test", 2), ("2026-12-02", "a.test", 2), ("2026-12-02", "b.test", 2)]
    assert await store.tls_results_take("2026-12-03") == []


def test_drive_refuses_a_rule_that_waits_on_io() -> None:
    async def waits() -> int:
        await asyncio.sleep(0)
        return 1

    async def immediate() -> int:
        return 2

    assert drive(immediate()) == 2
    with pytest.raises(RuntimeError):
        drive(waits())


async def test_domain_match_is_literal_not_like(store: Store) -> None:
    # SQLite matched accounts to a domain with LIKE, where "_" is a wildcard
    await store.add_domain("axb.test")
    await store.add_domain("a_b.test")
    acc = await store.add_account("u@axb.test", "$argon2id$fake")
    assert [a.address for a in await store.list_accounts("a_b.test")] == []
    assert [a.id for a in await store.list_accounts("axb.test")] == [acc.id]
    await store.add_alias("v@axb.test", ["u@axb.test"])
    await store.delete_domain("a_b.test")  # no account of its own
    assert [d.name for d in await store.list_domains()] == ["axb.test"]
    assert await store.get_alias("v@axb.test") is not None


async def test_subscribing_for_a_missing_account_is_not_found(store: Store) -> None:
    # SQLite let the foreign key's IntegrityError through
    with pytest.raises(NotFound):
        await store.set_subscribed(424242, "Lists", True)


async def test_deleting_an_account_releases_its_messages_and_wakes_its_mailboxes(
    store: Store, stage
) -> None:
    from mailwright.store.api import DeliveryTarget

    acc = await _account(store)
    blob = await stage(MSG)
    (rec,) = await store.deliver(blob, [DeliveryTarget(acc)])
    with store.changes.subscribe(rec.mailbox_id) as watcher:
        await store.delete_account(acc)
        assert await watcher.wait(10)
    assert await store.get_account(acc) is None
    assert await store.check() == []


async def test_staged_blobs_are_read_and_dropped_through_the_store(store: Store, stage) -> None:
    # sessions used to open and unlink StagedBlob.path themselves (issue 15)
    from mailwright.store.api import DeliveryTarget

    dropped = await stage(MSG + b"dropped\r\n")
    assert await store.read_staged(dropped) == MSG + b"dropped\r\n"
    store.discard_staged(dropped)
    with pytest.raises(NotFound):
        await store.read_staged(dropped)
    acc = await _account(store)
    kept = await stage(MSG)
    (rec,) = await store.deliver(kept, [DeliveryTarget(acc)])
    store.discard_staged(kept)  # referenced meanwhile: the stored content stays
    assert await store.read_blob(rec.blob_id) == MSG
    assert await store.check() == []
