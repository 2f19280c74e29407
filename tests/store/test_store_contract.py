"""Where the two backends drifted apart: each test here failed on one of them (issue 15, item 5).

Run, like every store test, on SQLite and on PostgreSQL (tests/support/backends.py); each states
the one behaviour both must share.
"""

from __future__ import annotations

import pytest

from mailwright.store.api import FlagOp, NotFound, QuotaExceeded, StagedBlob, Store, Usage


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


# -- messages: the rules of store/core/messages.py, once for both backends --------------------


async def _inbox_and_blob(store: Store, data: bytes) -> tuple[int, int, StagedBlob]:
    await store.add_domain("example.test")
    acc = (await store.add_account("carol@example.test", "x")).id
    inbox = await store.get_mailbox(acc, "INBOX")
    assert inbox is not None
    w = store.blob_writer()
    w.write(data)
    return acc, inbox.id, await w.finish()


async def test_copy_or_move_into_a_missing_mailbox_is_not_found(store: Store) -> None:
    # SQLite answered [] when none of the UIDs existed (PostgreSQL: NotFound); RFC 9051 6.4.7:
    # a COPY to a mailbox that does not exist fails (TRYCREATE), whatever the message set
    _acc, inbox, blob = await _inbox_and_blob(store, b"Subject: a\r\n\r\nx\r\n")
    await store.append(inbox, blob)
    for transfer in (store.copy, store.move):
        with pytest.raises(NotFound):
            await transfer(inbox, [999], 999_999)
        with pytest.raises(NotFound):
            await transfer(999_999, [1], inbox)
    assert [m.uid for m in await store.list_messages(inbox)] == [1]


async def test_message_quota_counts_an_empty_message(store: Store) -> None:
    # PostgreSQL checked the message quota (RFC 9208 5.2, QUOTA=RES-MESSAGE) only for messages
    # with octets, so an empty APPEND went past a full MESSAGE quota; SQLite refused it
    acc, inbox, blob = await _inbox_and_blob(store, b"Subject: a\r\n\r\nx\r\n")
    await store.set_message_quota(acc, 1)
    await store.append(inbox, blob)
    w = store.blob_writer()
    empty = await w.finish()
    assert empty.size == 0
    with pytest.raises(QuotaExceeded):
        await store.append(inbox, empty)
    with pytest.raises(QuotaExceeded):
        await store.copy(inbox, [1], inbox)
    assert await store.usage(acc) == Usage(blob.size, 1)


async def test_changes_and_listing_refresh_come_in_uid_order(store: Store) -> None:
    # the delta reads go by MODSEQ (no ORDER BY uid, which walked the whole mailbox on SQLite):
    # what they answer must still be in UID order, as ChangeSet and MessageListing promise
    _acc, inbox, blob = await _inbox_and_blob(store, b"Subject: a\r\n\r\nx\r\n")
    store._listing.min_size = 1  # type: ignore[attr-defined]  # cache this small mailbox
    for _ in range(5):
        await store.append(inbox, blob)
    base = (await store.listing(inbox)).modseq
    for uid in (5, 2, 4):
        await store.store_flags(inbox, [uid], FlagOp.ADD, ["\\Seen"])
    await store.expunge(inbox, [3, 1])
    changes = await store.changes_since(inbox, base)
    assert [m.uid for m in changes.updated] == [2, 4, 5]
    assert changes.expunged == (1, 3)
    listing = await store.listing(inbox)
    assert listing.uids == [2, 4, 5]
    assert [m.uid for m in listing.records.values()] == [2, 4, 5]
