"""The shared listing SELECT reads (`Store.listing`), on every backend: it agrees with the
messages as stored after every kind of change, a listing once handed out never changes (other
sessions share it), and its aggregates (first unseen message, keywords) are right."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailwright.store.api import AppendItem, FlagOp, Store


async def test_listing_follows_changes_and_never_changes_itself(
    store: Store, stage: Callable[[bytes], Any]
) -> None:
    # the in-memory cache keeps large mailboxes only: make these three messages large
    store._listing.min_size = 1  # type: ignore[attr-defined]  # the core's ListingCache
    await store.add_domain("example.test")
    acc = (await store.add_account("alice@example.test", "$argon2id$fake")).id
    inbox = await store.get_mailbox(acc, "INBOX")
    assert inbox is not None
    items = [AppendItem(await stage(b"Subject: %d\r\n\r\nx\r\n" % i), flags)
             for i, flags in enumerate([("\\Seen",), (), ("$Work",)])]
    await store.append_many(inbox.id, items)

    first = await store.listing(inbox.id)
    assert first.uids == [1, 2, 3] and len(first) == 3
    assert list(first.records.values()) == await store.list_messages(inbox.id)
    assert first.first_unseen == 1 and first.keywords == {"$Work"}
    snapshot = dict(first.records)

    again = await store.listing(inbox.id)
    assert again.records == first.records and again.modseq == first.modseq

    await store.store_flags(inbox.id, [2, 3], FlagOp.ADD, ["\\Seen", "$Later"])
    await store.expunge(inbox.id, [1])
    later = await store.listing(inbox.id)
    assert later.modseq > first.modseq
    assert later.uids == [2, 3]
    assert list(later.records.values()) == await store.list_messages(inbox.id)
    assert later.first_unseen is None and later.keywords == {"$Work", "$Later"}
    # the first listing, which sessions may still hold, is as it was
    assert first.records == snapshot and first.uids == [1, 2, 3]


async def test_listing_of_unknown_mailbox_is_empty(store: Store) -> None:
    listing = await store.listing(987654)
    assert len(listing) == 0 and listing.modseq == 0 and listing.first_unseen is None
