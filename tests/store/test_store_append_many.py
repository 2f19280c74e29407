"""MULTIAPPEND in the store (RFC 3502 3): every message of one APPEND in one transaction, on
every backend (the `store` fixture runs this on SQLite and, with MAILWRIGHT_TEST_POSTGRES=1,
on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mailwright.store.api import AppendItem, NotFound, QuotaExceeded, Store


def _msg(n: int, size: int = 1000) -> bytes:
    head = b"From: a@example.test\r\nSubject: m%d\r\n\r\n" % n
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


async def _setup(store: Store) -> tuple[int, int]:
    await store.add_domain("example.test")
    acc = (await store.add_account("alice@example.test", "$argon2id$fake")).id
    mb = await store.get_mailbox(acc, "INBOX")
    assert mb is not None
    return acc, mb.id


async def test_append_many_stores_every_message_in_order(
    store: Store, stage: Callable[[bytes], Any]
) -> None:
    acc, inbox = await _setup(store)
    when = datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)
    items = [
        AppendItem(await stage(_msg(1)), ("\\Seen",), when),
        AppendItem(await stage(_msg(2)), ()),
        AppendItem(await stage(_msg(1)), ("$Work",)),  # identical content: one blob, two refs
    ]
    recs = await store.append_many(inbox, items)
    assert [r.uid for r in recs] == [1, 2, 3]
    assert recs[0].flags == frozenset({"\\Seen"}) and recs[0].internaldate == when
    assert recs[0].blob_id == recs[2].blob_id != recs[1].blob_id
    listed = await store.list_messages(inbox)
    assert [(r.uid, r.blob_id) for r in listed] == [(r.uid, r.blob_id) for r in recs]
    usage = await store.usage(acc)
    assert usage.messages == 3 and usage.bytes == sum(it.blob.size for it in items)
    assert await store.read_blob(recs[2].blob_id) == _msg(1)
    # both references count: expunging one copy keeps the content of the other
    await store.expunge(inbox, [1])
    assert await store.read_blob(recs[2].blob_id) == _msg(1)


async def test_append_many_over_quota_stores_nothing(
    store: Store, stage: Callable[[bytes], Any]
) -> None:
    acc, inbox = await _setup(store)
    blobs = [await stage(_msg(i)) for i in range(3)]
    # room for two of the three messages
    await store.update_account(acc, quota_bytes=blobs[0].size + blobs[1].size + 10)
    before = await store.mailbox_status(inbox)
    with pytest.raises(QuotaExceeded):
        await store.append_many(inbox, [AppendItem(b) for b in blobs])
    assert await store.list_messages(inbox) == []
    after = await store.mailbox_status(inbox)
    assert after.uidnext == before.uidnext and after.messages == 0
    usage = await store.usage(acc)
    assert (usage.bytes, usage.messages) == (0, 0)
    # the two that fit still go in together afterwards
    blobs = [await stage(_msg(i)) for i in range(2)]
    recs = await store.append_many(inbox, [AppendItem(b) for b in blobs])
    assert len(recs) == 2 and len(await store.list_messages(inbox)) == 2


async def test_append_many_into_missing_mailbox_stores_nothing(
    store: Store, stage: Callable[[bytes], Any]
) -> None:
    acc, inbox = await _setup(store)
    gone = await store.create_mailbox(acc, "Gone")
    await store.delete_mailbox(gone.id)
    with pytest.raises(NotFound):
        await store.append_many(gone.id, [AppendItem(await stage(_msg(1)))])
    assert (await store.usage(acc)).messages == 0
    assert await store.append_many(inbox, []) == []
