"""An in-memory copy of recently listed mailboxes, refreshed by MODSEQ.

SELECT of a large mailbox lists every message; building 100,000 records from SQLite costs a few
hundred milliseconds. Like Dovecot's index, we keep the listing of the most recently used
mailboxes in memory and bring it up to date with the rows whose MODSEQ is above the cached
HIGHESTMODSEQ plus the `expunged` rows: a warm listing costs one indexed query for the delta.
Every change, from this process or another one (worker processes, operator commands), bumps
HIGHESTMODSEQ, which is read in the same snapshot, so the cache can never miss a change.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable

from mailwright.store.api import MessageListing, MessageRecord

Row = tuple[int, int, int, str, float, int, str]
_COLS = "mailbox_id, uid, modseq, flags, internaldate, size, blob_id"


class ListingCache:
    def __init__(self, max_records: int = 1_000_000, min_size: int = 1000) -> None:
        self.max_records = max_records
        self.min_size = min_size  # small mailboxes are cheap to list: not worth the memory
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, MessageListing] = OrderedDict()
        self._total = 0

    def get(
        self,
        c: sqlite3.Connection,
        mailbox_id: int,
        make: Callable[[Row], MessageRecord],
        flag_parser: Callable[[str], frozenset[str]],
    ) -> MessageListing:
        row = c.execute("SELECT highestmodseq FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
        if row is None:
            return MessageListing(mailbox_id, 0, {})
        modseq = int(row[0])
        with self._lock:
            entry = self._entries.get(mailbox_id)
            if entry is not None:
                self._entries.move_to_end(mailbox_id)
        if entry is not None and entry.modseq == modseq:
            return entry
        if entry is not None and entry.modseq < modseq:
            updated = c.execute(
                f"SELECT {_COLS} FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                (mailbox_id, entry.modseq),
            ).fetchall()
            gone = c.execute(
                "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?",
                (mailbox_id, entry.modseq),
            ).fetchall()
            fresh = dict(entry.records)  # copy: a listing, once handed out, never changes
            for (uid,) in gone:
                fresh.pop(uid, None)
            for r in updated:
                # new UIDs are above every cached UID, so insertion order stays UID order
                fresh[r[1]] = make(r)
            listing = MessageListing(mailbox_id, modseq, fresh)
            self._put(listing)
            return listing
        rows = c.execute(
            f"SELECT {_COLS} FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
        ).fetchall()
        flags = flag_parser
        # tuple unpacking in one comprehension: the cheapest way CPython builds 100k records
        listing = MessageListing(mailbox_id, modseq, {
            u: MessageRecord(m, u, ms, flags(f), ts, sz, b) for m, u, ms, f, ts, sz, b in rows
        })
        if len(listing) >= self.min_size:
            self._put(listing)
        return listing

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

    def has(self, mailbox_id: int) -> bool:
        """Whether the mailbox's listing is kept (then `get` costs only the delta)."""
        with self._lock:
            return mailbox_id in self._entries
