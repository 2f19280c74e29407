"""The SQLite listing cache must always agree with a fresh read of the messages table."""

from __future__ import annotations

from pathlib import Path

from mailwright.store.api import FlagOp, MessageRecord
from mailwright.store.core.listing import ListingCache
from mailwright.store.sqlite import SQLiteStore
from mailwright.store.sqlite.tx import SQLiteTx


async def test_sqlite_listing_cache_tracks_every_change(tmp_path: Path) -> None:
    cached = SQLiteStore(tmp_path / "d")
    cached._listing = ListingCache(min_size=1)
    await cached.open()
    try:
        await cached.add_domain("example.test")
        acc = await cached.add_account("a@example.test", "x")
        inbox = await cached.get_mailbox(acc.id, "INBOX")
        trash = await cached.get_mailbox(acc.id, "Trash")
        assert inbox is not None and trash is not None

        async def add(i: int) -> None:
            w = cached.blob_writer()
            w.write(f"Subject: {i}\r\n\r\nx\r\n".encode())
            await cached.append(inbox.id, await w.finish())

        async def fresh() -> list[MessageRecord]:
            return await cached.db.read(
                lambda c: SQLiteTx(c).records(c.execute(
                    "SELECT mailbox_id, uid, modseq, flags, internaldate, size, blob_id"
                    " FROM messages WHERE mailbox_id = ? ORDER BY uid", (inbox.id,)
                ).fetchall())
            )

        for i in range(5):
            await add(i)
        assert await cached.list_messages(inbox.id) == await fresh()
        await cached.store_flags(inbox.id, [2, 4], FlagOp.ADD, ["\\Seen"])
        await cached.expunge(inbox.id, [3])
        await add(9)
        await cached.move(inbox.id, [1], trash.id)
        listed = await cached.list_messages(inbox.id)
        assert listed == await fresh()
        assert [r.uid for r in listed] == [2, 4, 5, 6]
        assert listed[0].flags == frozenset({"\\Seen"})
        # a deleted and re-created mailbox never inherits a cached listing
        box = await cached.create_mailbox(acc.id, "Tmp")
        await cached.copy(inbox.id, [2], box.id)
        assert len(await cached.list_messages(box.id)) == 1
        await cached.delete_mailbox(box.id)
        box2 = await cached.create_mailbox(acc.id, "Tmp")
        assert box2.id != box.id
        assert await cached.list_messages(box2.id) == []
    finally:
        await cached.close()
