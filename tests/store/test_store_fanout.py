"""One message to many local recipients (store.core.fanout), on both backends: one blob with a
reference per copy, one unit of work, and an account that cannot take its copy refused alone,
never silently. The blob references and files are read from the database and the disk
themselves."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import psycopg
import pytest

from mailwright.store.api import (
    DeliveryTarget,
    LocalCopies,
    NotFound,
    QueueAddition,
    QueueRecipient,
    QuotaExceeded,
    StagedBlob,
    Store,
)

Stage = Callable[[bytes], Coroutine[Any, Any, StagedBlob]]
MSG = b"Subject: to everyone\r\nFrom: a@remote.test\r\n\r\n" + b"x" * 4000 + b"\r\n"
FANOUT = 50


async def accounts(store: Store, n: int = FANOUT) -> list[int]:
    await store.add_domain("example.test")
    return [(await store.add_account(f"fan{i:02d}@example.test", "x")).id for i in range(n)]


def blob_rows(store: Store) -> list[tuple[str, int]]:
    """Every blob row as (id, refs), read from the database itself."""
    from mailwright.store.postgres import PostgresStore  # type: ignore[attr-defined]
    from mailwright.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.data_dir / "mailwright.db") as conn:
            return [(str(i), int(r)) for i, r in conn.execute("SELECT id, refs FROM blobs")]
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.dsn) as pg:
        return [(str(i), int(r)) for i, r in pg.execute("SELECT id, refs FROM blobs")]


def blob_files(store: Store) -> list[str]:
    """The content files under blobs/ (SQLite keeps them; PostgreSQL caches them)."""
    root = store.data_dir / "blobs"  # type: ignore[attr-defined]
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def inbox_blobs(store: Store, account_id: int) -> list[str]:
    box = await store.get_mailbox(account_id, "INBOX")
    assert box is not None
    return [r.blob_id for r in await store.list_messages(box.id)]


def report_of(blob: StagedBlob) -> Callable[[Sequence[tuple[int, str]]], QueueAddition | None]:
    """A caller's refusal report: one queue entry naming the refused accounts."""

    def entries(refused: Sequence[tuple[int, str]]) -> QueueAddition:
        rows = [QueueRecipient(f"account-{i}@example.test", "permfail", None, None, why)
                for i, why in refused]  # fmt: skip
        return QueueAddition(blob, "a@remote.test", {"example.test": rows})

    return entries


async def test_store_fanout_fifty_recipients_one_blob(store: Store, stage: Stage) -> None:
    ids = await accounts(store)
    blob = await stage(MSG)
    done = await store.deliver_each(
        LocalCopies(blob, tuple(DeliveryTarget(i) for i in ids)), None, report_of(blob)
    )
    assert len(done.records) == FANOUT and done.refused == () and done.queue_ids == ()
    assert {r.blob_id for r in done.records} == {blob.blob_id}
    assert blob_rows(store) == [(blob.blob_id, FANOUT)]
    assert blob_files(store) == [blob.blob_id]
    for i in ids:
        assert await inbox_blobs(store, i) == [blob.blob_id]
        assert (await store.usage(i)).messages == 1
    assert await store.read_blob(blob.blob_id) == MSG
    # each mailbox got its own UID and MODSEQ, and its sessions are told
    assert all(r.uid == 1 for r in done.records)
    assert await store.check() == []


async def test_store_fanout_over_quota_account_refused_alone(store: Store, stage: Stage) -> None:
    ids = await accounts(store)
    full = ids[7]
    await store.update_account(full, quota_bytes=1000)
    blob = await stage(MSG)
    done = await store.deliver_each(
        LocalCopies(blob, tuple(DeliveryTarget(i) for i in ids)), None, report_of(blob)
    )
    assert done.refused == ((full, "quota"),)
    assert len(done.records) == FANOUT - 1
    assert await inbox_blobs(store, full) == []
    assert (await store.usage(full)).bytes == 0
    for i in ids:
        if i != full:
            assert await inbox_blobs(store, i) == [blob.blob_id]
    # the report's queue entry committed with the copies, holding its own reference
    [entry] = await store.queue_list()
    assert [(r.address, r.status) for r in entry.recipients] == [
        (f"account-{full}@example.test", "permfail")
    ]
    assert blob_rows(store) == [(blob.blob_id, FANOUT)]
    assert await store.check() == []


async def test_store_fanout_disabled_or_deleted_since_rcpt(store: Store, stage: Stage) -> None:
    ids = await accounts(store, 4)
    await store.update_account(ids[1], disabled=True)
    await store.delete_account(ids[2])
    blob = await stage(MSG)
    done = await store.deliver_each(
        LocalCopies(blob, tuple(DeliveryTarget(i) for i in ids)), None, report_of(blob)
    )
    assert dict(done.refused) == {ids[1]: "disabled", ids[2]: "gone"}
    assert sorted(r.mailbox_id for r in done.records) == sorted(
        [(await store.get_mailbox(i, "INBOX")).id for i in (ids[0], ids[3])]  # type: ignore[union-attr]
    )


async def test_store_fanout_without_report_is_all_or_nothing(
    store: Store, stage: Stage
) -> None:
    ids = await accounts(store, 5)
    await store.update_account(ids[3], quota_bytes=1000)
    blob = await stage(MSG)
    targets = tuple(DeliveryTarget(i) for i in ids)
    with pytest.raises(QuotaExceeded):
        await store.deliver_each(LocalCopies(blob, targets), None)
    for i in ids:
        assert await inbox_blobs(store, i) == []
        assert (await store.usage(i)).messages == 0
    assert [refs for _, refs in blob_rows(store)] in ([], [0])
    # every copy refused: nothing to commit, the caller answers for the whole message
    blob = await stage(MSG)
    with pytest.raises(QuotaExceeded):
        await store.deliver_each(LocalCopies(blob, (targets[3],)), None, report_of(blob))
    await store.update_account(ids[1], disabled=True)
    with pytest.raises(NotFound):
        await store.deliver_each(LocalCopies(blob, (targets[1], targets[3])), None,
                                 report_of(blob))
    assert await store.queue_list() == []


async def test_store_fanout_groups_identical_content(store: Store, stage: Stage) -> None:
    """Accounts whose copies differ (the spam filter's per-account fields) share one blob per
    distinct content, all in the same unit of work; several mailboxes of one account too."""
    ids = await accounts(store, 6)
    ham = await stage(b"X-Spam: no\r\n" + MSG)
    junk = await stage(b"X-Spam: yes\r\n" + MSG)
    local = LocalCopies(
        ham, (*(DeliveryTarget(i) for i in ids[:4]), DeliveryTarget(ids[0], "Archive")),
        (LocalCopies(junk, tuple(DeliveryTarget(i, "Junk", frozenset({"$Junk", "\\Seen"}))
                                 for i in ids[4:])),),
    )
    done = await store.deliver_each(local, None, report_of(ham))
    assert len(done.records) == 7
    assert sorted(blob_rows(store)) == sorted([(ham.blob_id, 5), (junk.blob_id, 2)])
    assert (await store.usage(ids[0])).messages == 2
    junk_box = await store.get_mailbox(ids[5], "Junk")
    assert junk_box is not None
    [filed] = await store.list_messages(junk_box.id)
    assert filed.blob_id == junk.blob_id
    assert filed.flags == {"$Junk", "\\Seen"}
    inbox = await store.get_mailbox(ids[1], "INBOX")
    assert inbox is not None
    assert [r.flags for r in await store.list_messages(inbox.id)] == [frozenset()]



async def test_store_fanout_concurrent_deliveries_number_in_order(
    store: Store, stage: Stage
) -> None:
    """Many deliveries at once to the same mailboxes (on PostgreSQL several share a group-
    commit transaction, each reading UIDNEXT and HIGHESTMODSEQ from the mailbox rows it
    locked, after the units before it in that transaction changed them): every copy gets
    its own UID, the UIDs are 1..n with no gap, every delivery a MODSEQ of its own, and the
    mailbox row ends at UIDNEXT n + 1. Small and large content (on PostgreSQL a large blob
    is uploaded before its unit, a small one travels in it), some of it delivered twice."""
    ids = await accounts(store, 3)
    big = b"x" * (70 * 1024)
    contents = [b"Subject: %d\r\n\r\n" % (i % 9) + (big if i % 4 == 0 else b"hi\r\n")
                for i in range(24)]  # fmt: skip
    blobs = [await stage(c) for c in contents]
    done = await asyncio.gather(*(
        store.deliver_each(
            LocalCopies(b, (DeliveryTarget(ids[0]), DeliveryTarget(ids[1 + i % 2]))),
            None, report_of(b))
        for i, b in enumerate(blobs)))  # fmt: skip
    assert all(len(d.records) == 2 and d.refused == () for d in done)
    for account_id in ids:
        box = await store.get_mailbox(account_id, "INBOX")
        assert box is not None
        rows = await store.list_messages(box.id)
        n = len(rows)
        assert n == (24 if account_id == ids[0] else 12)
        assert sorted(r.uid for r in rows) == list(range(1, n + 1))
        assert box.uidnext == n + 1
        modseqs = [r.modseq for d in done for r in d.records if r.mailbox_id == box.id]
        assert len(set(modseqs)) == n  # one copy per delivery here: a MODSEQ each
        assert box.highestmodseq == max(modseqs)
    refs = dict(blob_rows(store))
    for data in set(contents):
        blob_id = hashlib.sha256(data).hexdigest()
        assert refs[blob_id] == 2 * contents.count(data)
        assert await store.read_blob(blob_id) == data
    assert await store.check() == []
