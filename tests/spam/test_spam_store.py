"""The spam tables of the store, on every backend: counts, the ledger, reputation, positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright.store.api import SpamLesson, Store
from tests.conftest import make_store, store_backends


async def _account(store: Store, local: str = "bob") -> int:
    if not await store.has_domain("example.test"):
        await store.add_domain("example.test")
    return (await store.add_account(f"{local}@example.test", "x")).id


async def test_spam_store_learn_counts_each_scope(store: Store) -> None:
    acc = await _account(store)
    lesson = SpamLesson(acc, "blob1", "spam", (0, acc), (11, -22, 33), (("from", "a@x.example"),))
    assert await store.spam_learn(lesson) is True
    assert await store.spam_totals([0, acc]) == {0: (0, 1), acc: (0, 1)}
    counts = await store.spam_counts([0, acc], [11, -22, 33, 44])
    assert counts == {(s, t): (0, 1) for s in (0, acc) for t in (11, -22, 33)}
    assert await store.spam_label(acc, "blob1") == "spam"
    assert await store.spam_senders(acc, [("from", "a@x.example"), ("from", "b@x")]) == {
        ("from", "a@x.example"): (0, 1)
    }


async def test_spam_store_same_lesson_twice_counts_once(store: Store) -> None:
    acc = await _account(store)
    lesson = SpamLesson(acc, "blob1", "ham", (0, acc), (1, 2))
    assert await store.spam_learn(lesson) is True
    assert await store.spam_learn(lesson) is False
    assert await store.spam_totals([0]) == {0: (1, 0)}
    assert (await store.spam_counts([0], [1]))[(0, 1)] == (1, 0)


async def test_spam_store_relabel_takes_the_old_lesson_back(store: Store) -> None:
    acc = await _account(store)
    tokens = (5, 6)
    senders = (("from", "s@x.example"),)
    await store.spam_learn(SpamLesson(acc, "b", "spam", (0, acc), tokens, senders))
    assert await store.spam_learn(SpamLesson(acc, "b", "ham", (0, acc), tokens, senders))
    assert await store.spam_totals([0, acc]) == {0: (1, 0), acc: (1, 0)}
    assert (await store.spam_counts([0], [5]))[(0, 5)] == (1, 0)
    assert await store.spam_senders(acc, list(senders)) == {senders[0]: (1, 0)}
    assert await store.spam_label(acc, "b") == "ham"


async def test_spam_store_filed_is_remembered_not_taught(store: Store) -> None:
    acc = await _account(store)
    assert await store.spam_learn(SpamLesson(acc, "b", "filed", (0, acc), ()))
    assert await store.spam_totals([0]) == {0: (0, 0)}
    assert await store.spam_label(acc, "b") == "filed"
    # "filed" never replaces what a user taught
    await store.spam_learn(SpamLesson(acc, "c", "ham", (0, acc), (1,)))
    assert await store.spam_learn(SpamLesson(acc, "c", "filed", (0, acc), ())) is False
    assert await store.spam_label(acc, "c") == "ham"
    # moving a filed message out of Junk: ham, counted once
    assert await store.spam_learn(SpamLesson(acc, "b", "ham", (0, acc), (9,)))
    assert await store.spam_totals([0]) == {0: (2, 0)}


async def test_spam_store_untrained_tokens_disappear(store: Store) -> None:
    acc = await _account(store)
    await store.spam_learn(SpamLesson(acc, "b", "spam", (acc,), (7,)))
    await store.spam_learn(SpamLesson(acc, "b", "ham", (acc,), (7,)))
    await store.spam_learn(SpamLesson(acc, "c", "spam", (acc,), (8,)))
    await store.spam_learn(SpamLesson(acc, "c", "ham", (acc,), (8,)))
    assert await store.spam_counts([acc], [7, 8]) == {(acc, 7): (1, 0), (acc, 8): (1, 0)}


async def test_spam_store_positions(store: Store) -> None:
    assert await store.spam_positions([1, 2]) == {}
    await store.spam_set_position(1, 10)
    await store.spam_set_position(1, 12)
    assert await store.spam_positions([1, 2]) == {1: 12}


async def test_spam_store_many_tokens_in_one_query(store: Store) -> None:
    acc = await _account(store)
    tokens = tuple(range(-1500, 1500))
    await store.spam_learn(SpamLesson(acc, "big", "spam", (0, acc), tokens))
    counts = await store.spam_counts([0, acc], list(tokens))
    assert len(counts) == 6000


@pytest.mark.parametrize("backend", store_backends())
async def test_spam_store_survives_reopen(backend: str, tmp_path: Path) -> None:
    store = await make_store(backend, tmp_path)
    try:
        acc = await _account(store)
        await store.spam_learn(SpamLesson(acc, "b", "spam", (0, acc), (3,)))
    finally:
        await store.close()
    if backend == "postgres":
        return  # a fresh PostgreSQL test store is a new database; durability is PostgreSQL's
    again = await make_store(backend, tmp_path)
    try:
        assert await again.spam_totals([0]) == {0: (0, 1)}
        assert await again.spam_label(acc, "b") == "spam"
    finally:
        await again.close()


async def test_spam_store_copies_with_own_bytes_commit_together(store: Store, stage) -> None:  # type: ignore[no-untyped-def]
    """Per-account spam verdicts: one unit of work delivers different bytes to different
    accounts (LocalCopies.variants), each counted against its own blob."""
    from mailwright.store.api import DeliveryTarget, LocalCopies

    bob, carol = await _account(store, "bob"), await _account(store, "carol")
    junk = await stage(b"X-Spam-Status: Yes\r\nSubject: s\r\n\r\nbody\r\n")
    ham = await stage(b"X-Spam-Status: No\r\nSubject: s\r\n\r\nbody\r\n")
    local = LocalCopies(junk, (DeliveryTarget(bob, "Junk"),), (LocalCopies(ham, (DeliveryTarget(carol),)),))
    records, ids = await store.deliver_and_queue(local, None)
    assert ids == [] and len(records) == 2
    for account_id, box, first in ((bob, "Junk", b"X-Spam-Status: Yes"), (carol, "INBOX", b"X-Spam-Status: No")):
        mailbox = await store.get_mailbox(account_id, box)
        assert mailbox is not None
        (msg,) = await store.list_messages(mailbox.id)
        assert (await store.read_blob(msg.blob_id)).startswith(first)
