"""The listing of a mailbox (`Store.listing`), kept in memory for large mailboxes and brought up
to date by MODSEQ, the same on every backend.

SELECT of a large mailbox lists every message; building 100,000 records costs a few hundred
milliseconds. Like Dovecot's index, the store keeps the listings of the most recently used
large mailboxes and refreshes one with the rows whose MODSEQ is above the cached HIGHESTMODSEQ
plus the `expunged` rows above it: a warm listing costs one indexed read of the delta. The
three reads share one snapshot (`Tx.rows_batch`: one round trip on PostgreSQL). Every change, from
this process, another worker or another node, bumps HIGHESTMODSEQ and stamps its rows in the
same transaction, so a cached listing can never miss one.

House rules: a listing, once handed out, never changes (a refresh builds a new one); the cache
is shared by the threads of a backend's reads, hence the lock around its dictionary.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from mailwright.store.api import MessageListing, MessageRecord
from mailwright.store.core.tx import Row, Tx


def by_uid(record: MessageRecord) -> int:
    """Sort key of records read without ORDER BY (see `ListingCache.get`)."""
    return record.uid


class ListingCache:
    """The listings of the most recently used mailboxes, at most `max_records` records in all;
    mailboxes under `min_size` messages are cheap to list and are not kept."""

    def __init__(self, max_records: int = 1_000_000, min_size: int = 1000) -> None:
        self.max_records = max_records
        self.min_size = min_size
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, MessageListing] = OrderedDict()
        self._total = 0

    async def get(self, tx: Tx, mailbox_id: int) -> MessageListing:
        """The mailbox's listing now (an empty one for a mailbox that does not exist)."""
        with self._lock:
            cached = self._entries.get(mailbox_id)
        cols = tx.message_columns
        if cached is None:
            mb, rows = await tx.rows_batch([
                ("SELECT highestmodseq FROM mailboxes WHERE id = ?", (mailbox_id,)),
                (f"SELECT {cols} FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)),
            ])
            gone: list[Row] = []
        else:
            mb, rows, gone = await tx.rows_batch([
                ("SELECT highestmodseq FROM mailboxes WHERE id = ?", (mailbox_id,)),
                # no ORDER BY: the (mailbox_id, modseq) index finds the delta, where an order
                # by UID would walk the whole mailbox; sorted below
                (f"SELECT {cols} FROM messages WHERE mailbox_id = ? AND modseq > ?",
                 (mailbox_id, cached.modseq)),
                ("SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?",
                 (mailbox_id, cached.modseq)),
            ])
        if not mb:
            self._forget(mailbox_id)
            return MessageListing(mailbox_id, 0, {})
        modseq = int(mb[0][0])
        if cached is not None and cached.modseq == modseq:
            with self._lock:
                if mailbox_id in self._entries:
                    self._entries.move_to_end(mailbox_id)
            return cached
        if cached is None:
            records = {r.uid: r for r in tx.records(rows)}
            listing = MessageListing(mailbox_id, modseq, records)
            if len(listing) >= self.min_size:
                self._put(listing)
            return listing
        fresh = dict(cached.records)  # a copy: the cached listing is shared
        for (uid,) in gone:
            fresh.pop(int(uid), None)
        for r in sorted(tx.records(rows), key=by_uid):
            # new UIDs are above every cached one, so insertion order stays UID order
            fresh[r.uid] = r
        listing = MessageListing(mailbox_id, modseq, fresh)
        self._put(listing)
        return listing

    def has(self, mailbox_id: int) -> bool:
        """Whether the mailbox's listing is kept (then `get` costs only the delta)."""
        with self._lock:
            return mailbox_id in self._entries

    def _forget(self, mailbox_id: int) -> None:
        with self._lock:
            old = self._entries.pop(mailbox_id, None)
            if old is not None:
                self._total -= len(old)

    def _put(self, listing: MessageListing) -> None:
        with self._lock:
            # Replacing a newer entry with an older one is harmless: the next get applies the
            # delta again.
            old = self._entries.pop(listing.mailbox_id, None)
            if old is not None:
                self._total -= len(old)
            self._entries[listing.mailbox_id] = listing
            self._total += len(listing)
            while self._total > self.max_records and len(self._entries) > 1:
                _mb, evicted = self._entries.popitem(last=False)
                self._total -= len(evicted)
