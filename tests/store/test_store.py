"""The store suite: run unchanged against every backend (see conftest.store_backends)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest

from mailwright.store.api import (
    AlreadyExists,
    DeliveryTarget,
    FlagOp,
    InvalidOperation,
    NotFound,
    QueueRecipient,
    QuotaExceeded,
    Store,
)

MSG = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


async def _account(store: Store, address: str = "alice@example.test") -> int:
    if not await store.has_domain(address.rpartition("@")[2]):
        await store.add_domain(address.rpartition("@")[2])
    return (await store.add_account(address, "$argon2id$fake")).id


async def _inbox(store: Store, account_id: int) -> int:
    mb = await store.get_mailbox(account_id, "INBOX")
    assert mb is not None
    return mb.id


async def test_store_account_gets_default_mailboxes(store: Store) -> None:
    acc = await _account(store)
    names = {m.name: m.special_use for m in await store.list_mailboxes(acc)}
    assert names == {
        "INBOX": None,
        "Sent": "\\Sent",
        "Drafts": "\\Drafts",
        "Trash": "\\Trash",
        "Junk": "\\Junk",
        "Archive": "\\Archive",
    }
    assert set(await store.list_subscriptions(acc)) == set(names)


async def test_store_duplicate_account_and_unknown_domain(store: Store) -> None:
    await _account(store)
    with pytest.raises(AlreadyExists):
        await store.add_account("alice@example.test", "x")
    with pytest.raises(NotFound):
        await store.add_account("bob@nowhere.test", "x")


async def test_store_uids_strictly_increase_and_are_never_reused(store: Store, stage) -> None:
    acc = await _account(store)
    inbox = await _inbox(store, acc)
    uids = []
    for i in range(5):
        rec = await store.append(inbox, await stage(MSG + str(i).encode()))
        uids.append(rec.uid)
    assert uids == [1, 2, 3, 4, 5]
    assert await store.expunge(inbox, [4, 5]) == [4, 5]
    rec = await store.append(inbox, await stage(MSG + b"again"))
    assert rec.uid == 6
    status = await store.mailbox_status(inbox)
    assert status.uidnext == 7 and status.messages == 4


async def test_store_uidvalidity_stable_and_unique(store: Store) -> None:
    acc = await _account(store)
    a = await store.get_mailbox(acc, "inbox")
    b = await store.get_mailbox(acc, "INBOX")
    assert a is not None and b is not None and a.uidvalidity == b.uidvalidity
    m1 = await store.create_mailbox(acc, "X")
    await store.delete_mailbox(m1.id)
    m2 = await store.create_mailbox(acc, "X")
    assert m2.uidvalidity != m1.uidvalidity


async def test_store_flags_and_modseq(store: Store, stage) -> None:
    acc = await _account(store)
    inbox = await _inbox(store, acc)
    r1 = await store.append(inbox, await stage(MSG), ["\\Draft"])
    r2 = await store.append(inbox, await stage(MSG + b"2"))
    assert r2.modseq > r1.modseq
    res = await store.store_flags(inbox, [1, 2], FlagOp.ADD, ["\\Seen", "$Work"])
    assert {r.uid for r in res.updated} == {1, 2}
    assert res.updated[0].flags == frozenset({"\\Draft", "\\Seen", "$Work"})
    ms = res.updated[0].modseq
    assert ms > r2.modseq
    # UNCHANGEDSINCE below the current MODSEQ fails the message (RFC 7162 3.1.3)
    res = await store.store_flags(inbox, [1], FlagOp.REMOVE, ["\\Seen"], unchangedsince=ms - 1)
    assert res.failed == (1,) and not res.updated
    res = await store.store_flags(inbox, [1], FlagOp.REPLACE, ["\\Flagged"], unchangedsince=ms)
    assert res.updated[0].flags == frozenset({"\\Flagged"})
    # no-op change keeps MODSEQ
    res2 = await store.store_flags(inbox, [1], FlagOp.ADD, ["\\Flagged"])
    assert not res2.updated and res2.unchanged[0].modseq == res.updated[0].modseq
    status = await store.mailbox_status(inbox)
    assert status.highestmodseq == res.updated[0].modseq
    assert status.unseen == 1


async def test_store_changes_since_reports_updates_and_expunges(store: Store, stage) -> None:
    acc = await _account(store)
    inbox = await _inbox(store, acc)
    for i in range(3):
        await store.append(inbox, await stage(MSG + bytes([65 + i])))
    base = (await store.mailbox_status(inbox)).highestmodseq
    await store.store_flags(inbox, [2], FlagOp.ADD, ["\\Seen"])
    await store.expunge(inbox, [3])
    cs = await store.changes_since(inbox, base)
    assert [r.uid for r in cs.updated] == [2]
    assert cs.expunged == (3,)
    assert cs.highestmodseq > base


async def test_store_dedup_refcounts(store: Store, stage) -> None:
    await store.add_domain("example.test")
    accs = [(await store.add_account(f"u{i}@example.test", "x")).id for i in range(50)]
    blob = await stage(MSG)
    recs = await store.deliver(blob, [DeliveryTarget(a) for a in accs])
    assert len(recs) == 50 and len({r.blob_id for r in recs}) == 1
    files = [p for p in (store.data_dir / "blobs").rglob("*") if p.is_file()]  # type: ignore[attr-defined]
    assert len(files) == 1
    # a duplicate import is free: same blob again
    inbox0 = await _inbox(store, accs[0])
    await store.append(inbox0, await stage(MSG))
    files = [p for p in (store.data_dir / "blobs").rglob("*") if p.is_file()]  # type: ignore[attr-defined]
    assert len(files) == 1
    assert await store.check() == []
    # expunging every reference releases the blob: still readable (another IMAP session may
    # not have synchronised yet), removed by the collector after its grace period
    for a in accs:
        mb = await _inbox(store, a)
        await store.expunge(mb, [r.uid for r in await store.list_messages(mb)])
    assert await store.read_blob(blob.blob_id) == MSG
    await store.collect_garbage(min_age=0)  # type: ignore[call-arg]
    files = [p for p in (store.data_dir / "blobs").rglob("*") if p.is_file()]  # type: ignore[attr-defined]
    assert files == []
    assert await store.check() == []


async def test_store_crash_before_commit_leaves_orphan_for_gc(store: Store, stage, tmp_path) -> None:
    acc = await _account(store)
    blob = await stage(MSG)
    # simulate a crash after the blob was written and linked but before the metadata commit
    final = store.files.path_for(blob.blob_id)  # type: ignore[attr-defined]
    final.parent.mkdir(parents=True, exist_ok=True)
    os.link(blob._path, final)
    inbox = await _inbox(store, acc)
    assert await store.list_messages(inbox) == []
    assert await store.collect_garbage(min_age=0) >= 1  # type: ignore[call-arg]
    assert not final.exists() and not blob._path.exists()
    assert await store.check() == []


async def test_store_concurrent_writers_consistent(store: Store, stage) -> None:
    acc = await _account(store)
    inbox = await _inbox(store, acc)

    async def writer(n: int) -> list[int]:
        out = []
        for i in range(20):
            rec = await store.append(inbox, await stage(MSG + f"{n}-{i}".encode()))
            out.append(rec.uid)
            if i % 5 == 0:
                await store.store_flags(inbox, [rec.uid], FlagOp.ADD, ["\\Seen"])
        return out

    results = await asyncio.gather(*(writer(n) for n in range(10)))
    all_uids = [u for r in results for u in r]
    assert len(set(all_uids)) == 200
    assert sorted(all_uids) == list(range(1, 201))
    for r in results:
        assert r == sorted(r)
    msgs = await store.list_messages(inbox)
    assert len(msgs) == 200
    modseqs = [m.modseq for m in msgs]
    assert len(set(modseqs)) == len(modseqs)  # each operation here touched one message
    assert await store.check() == []
    assert (await store.usage(acc)).messages == 200


async def test_store_copy_move_and_quota(store: Store, stage) -> None:
    acc = await _account(store)
    inbox = await _inbox(store, acc)
    archive = await store.get_mailbox(acc, "Archive")
    assert archive is not None
    for i in range(3):
        await store.append(inbox, await stage(MSG + bytes([65 + i])), ["\\Seen"])
    mapping = await store.copy(inbox, [1, 2], archive.id)
    assert mapping == [(1, 1), (2, 2)]
    mapping = await store.move(inbox, [3], archive.id)
    assert mapping == [(3, 3)]
    assert [m.uid for m in await store.list_messages(inbox)] == [1, 2]
    assert [m.flags for m in await store.list_messages(archive.id)][2] == frozenset({"\\Seen"})
    usage = await store.usage(acc)
    assert usage.messages == 5
    await store.update_account(acc, quota_bytes=usage.bytes + 10)
    with pytest.raises(QuotaExceeded):
        await store.append(inbox, await stage(MSG + b"x" * 100))
    assert await store.check() == []


async def test_store_rename_and_inbox_rename(store: Store, stage) -> None:
    acc = await _account(store)
    await store.create_mailbox(acc, "Work")
    await store.create_mailbox(acc, "Work/2025")
    await store.set_subscribed(acc, "Work/2025", True)
    await store.rename_mailbox(acc, "Work", "Jobs")
    names = {m.name for m in await store.list_mailboxes(acc)}
    assert {"Jobs", "Jobs/2025"} <= names and "Work" not in names
    assert "Jobs/2025" in await store.list_subscriptions(acc)
    inbox = await _inbox(store, acc)
    await store.append(inbox, await stage(MSG))
    await store.rename_mailbox(acc, "INBOX", "Old")
    old = await store.get_mailbox(acc, "Old")
    assert old is not None
    assert len(await store.list_messages(old.id)) == 1
    assert await store.list_messages(inbox) == []
    with pytest.raises(InvalidOperation):
        await store.delete_mailbox(inbox)


async def test_store_retention_expunges_old(store: Store, stage) -> None:
    acc = await _account(store)
    trash = await store.get_mailbox(acc, "Trash")
    assert trash is not None
    old = datetime.now(UTC) - timedelta(days=40)
    await store.append(trash.id, await stage(MSG), internaldate=old)
    await store.append(trash.id, await stage(MSG + b"new"))
    gone = await store.expunge_older_than(trash.id, datetime.now(UTC) - timedelta(days=30))
    assert gone == [1]


async def test_store_maildrop_lock(store: Store) -> None:
    acc = await _account(store)
    assert await store.lock_maildrop(acc, "s1", 60)
    assert not await store.lock_maildrop(acc, "s2", 60)
    await store.unlock_maildrop(acc, "s1")
    assert await store.lock_maildrop(acc, "s2", 60)


async def test_store_change_hub_wakes_subscriber(store: Store, stage) -> None:
    acc = await _account(store)
    inbox = await _inbox(store, acc)
    sub = store.changes.subscribe(inbox)
    waiter = asyncio.create_task(sub.wait(5))
    await asyncio.sleep(0)
    await store.append(inbox, await stage(MSG))
    assert await waiter
    sub.close()


async def test_store_queue_lifecycle(store: Store, stage) -> None:
    blob = await stage(MSG)
    ids = await store.queue_add(
        blob, "a@example.test", {"remote.test": [QueueRecipient("x@remote.test", "scheduled")]}
    )
    assert len(ids) == 1
    claimed = await store.queue_claim("node1", 60, 10)
    assert [e.id for e in claimed] == ids
    assert await store.queue_claim("node2", 60, 10) == []
    later = datetime.now(UTC) + timedelta(minutes=5)
    await store.queue_update(
        ids[0], "node1", [QueueRecipient("x@remote.test", "tempfail")], next_attempt=later,
        last_error="451 try later",
    )
    e = await store.queue_get(ids[0])
    assert e is not None and e.attempts == 1 and e.recipients[0].status == "tempfail"
    assert await store.queue_flush() == 1
    assert await store.queue_delete(ids[0])
    assert await store.check() == []


async def test_store_queue_ids_never_reused(store: Store, stage) -> None:
    blob = await stage(MSG)
    rcpt = {"remote.test": [QueueRecipient("x@remote.test", "scheduled")]}
    first = await store.queue_add(blob, "a@example.test", rcpt)
    assert await store.queue_delete(first[0])
    second = await store.queue_add(await stage(MSG), "a@example.test", rcpt)
    assert second[0] > first[0]


async def test_store_released_blob_taken_back_by_identical_content(store: Store, stage) -> None:
    acc = await _account(store)
    inbox = await _inbox(store, acc)
    first = await store.append(inbox, await stage(MSG))
    await store.expunge(inbox, [first.uid])
    again = await store.append(inbox, await stage(MSG))  # same content, same blob
    assert again.blob_id == first.blob_id
    await store.collect_garbage(min_age=0)  # type: ignore[call-arg]
    assert await store.read_blob(again.blob_id) == MSG
    assert await store.check() == []


async def test_store_account_channels_wake_a_watch(store: Store, stage) -> None:
    """Mailbox list, subscription and annotation changes wake the account's channels of the
    change hub (IMAP NOTIFY, RFC 5465), each on its own key; message_counts and
    metadata_digests answer for the whole account in one read. (PostgreSQL also echoes each
    change back through LISTEN, later: a wake-up may come twice, never one too few.)"""
    from mailwright.store.changes import (
        ANNOTATIONS,
        MAILBOX_LIST,
        SUBSCRIPTIONS,
        account_channel,
    )

    acc = await _account(store)
    kinds = (MAILBOX_LIST, SUBSCRIPTIONS, ANNOTATIONS)
    keys = {k: account_channel(acc, k) for k in kinds}
    # the channels of an account id next to alice's (no account: nothing of its own wakes them)
    theirs = frozenset(account_channel(acc + 1, k) for k in kinds)
    assert len(set(keys.values()) | theirs) == 6 and all(k < 0 for k in keys.values())
    watch, bystander = store.changes.watch(), store.changes.watch()
    watch.watch(frozenset(keys.values()))
    bystander.watch(theirs)
    mb = await store.create_mailbox(acc, "Lists")
    assert keys[MAILBOX_LIST] in watch.take()
    await store.rename_mailbox(acc, "Lists", "Lists2")
    assert keys[MAILBOX_LIST] in watch.take()
    await store.set_subscribed(acc, "Lists2", True)
    assert keys[SUBSCRIPTIONS] in watch.take()
    await store.metadata_set(acc, mb.id, [("/private/comment", b"x")], 100)
    await store.metadata_set(acc, None, [("/private/a", b"y")], 100)
    assert keys[ANNOTATIONS] in watch.take()
    digests = await store.metadata_digests(acc)
    assert set(digests) == {(mb.id, "/private/comment"), (None, "/private/a")}
    assert all(len(d) == 16 for d in digests.values())
    await store.append(mb.id, await stage(MSG))
    counts = await store.message_counts(acc)
    status = await store.mailbox_status(mb.id)
    assert counts[mb.id] == (1, status.uidnext, status.uidvalidity, status.highestmodseq)
    assert len(counts) == 7 and counts[await _inbox(store, acc)][0] == 0
    await store.delete_mailbox(mb.id)
    assert keys[MAILBOX_LIST] in watch.take()
    assert bystander.take() == set()  # nothing of alice's woke another account's channels
    watch.close()
    bystander.close()
    assert store.changes.watchers(keys[MAILBOX_LIST]) == 0
