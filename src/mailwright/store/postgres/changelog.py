"""What changed in a mailbox, read once per change and node, shared by its sessions.

When a message changes, every session of the node that watches its mailbox wakes (the change
hub) and asks `changes_since(mailbox, its MODSEQ)`: twenty sessions on one INBOX made twenty
identical reads of the database for one STORE. This cache keeps, per mailbox, the last answer
read from the database, from MODSEQ `since` to the mailbox's HIGHESTMODSEQ `top` at that
snapshot, and answers any later request from a MODSEQ at or above `since` by filtering it
(the rows changed above m are exactly those of the answer whose MODSEQ is above m).

It is invalidated by NOTIFY: the store tells it every MODSEQ it hears of (its own commits at
once, before their callers are answered, and other nodes' through LISTEN), and an answer is
given only while `top` is at least the highest MODSEQ heard for that mailbox. So a session is
never told less than its own node committed; another node's change is seen once its NOTIFY has
arrived, which is also when that change wakes the session (the same delay IDLE has). While
the LISTEN connection is down nothing is answered from here, and everything is forgotten, as a
notification may have been lost.

Concurrent misses on one mailbox share one read: the sessions woken by one change ask at once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailwright.store.api import ChangeSet, MessageRecord

#: A read of the database: (HIGHESTMODSEQ, UIDNEXT, changed rows, (expunged UID, MODSEQ)s).
Read = tuple[int, int, tuple[MessageRecord, ...], tuple[tuple[int, int], ...]]


@dataclass(frozen=True, slots=True)
class _Entry:
    since: int
    top: int
    uidnext: int
    records: tuple[MessageRecord, ...]
    gone: tuple[tuple[int, int], ...]


class ChangeLog:
    """The shared `changes_since` answers of one node (see the module's rules)."""

    def __init__(self, max_mailboxes: int = 512, max_records: int = 5000) -> None:
        self.max_mailboxes = max_mailboxes
        self.max_records = max_records
        self.heard: dict[int, int] = {}  # mailbox -> highest MODSEQ heard of
        self.reliable = False  # LISTEN is up: every other node's change will be heard
        self.epoch = 0  # LISTEN connections lost so far: a read across a loss is not kept
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._inflight: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self.hits = 0
        self.reads = 0

    def hear(self, mailbox_id: int, modseq: int) -> None:
        """A change committed (here or on another node) up to `modseq`; 0: unknown."""
        if modseq <= 0:
            self._entries.pop(mailbox_id, None)
            self.heard.pop(mailbox_id, None)
            return
        if modseq > self.heard.get(mailbox_id, 0):
            self.heard[mailbox_id] = modseq
            if len(self.heard) > 8 * self.max_mailboxes:
                self.heard.clear()  # bounded; forgetting only costs reads
                self._entries.clear()

    def lost(self) -> None:
        """The LISTEN connection broke: notifications may be lost from now on."""
        self.reliable = False
        self.epoch += 1
        self._entries.clear()
        self.heard.clear()

    def _answer(self, mailbox_id: int, since: int) -> ChangeSet | None:
        e = self._entries.get(mailbox_id)
        # `since` above `top`: the caller knows a later state (it read one elsewhere)
        if (e is None or not self.reliable or not e.since <= since <= e.top
                or e.top < self.heard.get(mailbox_id, 0)):
            return None
        self._entries.move_to_end(mailbox_id)
        self.hits += 1
        return ChangeSet(e.top, e.uidnext, tuple(r for r in e.records if r.modseq > since),
                         tuple(uid for uid, ms in e.gone if ms > since))

    def _keep(self, mailbox_id: int, since: int, read: Read) -> None:
        top, uidnext, records, gone = read
        if len(records) + len(gone) > self.max_records:
            return
        old = self._entries.get(mailbox_id)
        if old is not None and (old.top > top or (old.top == top and old.since <= since)):
            return
        self._entries[mailbox_id] = _Entry(since, top, uidnext, records, gone)
        self._entries.move_to_end(mailbox_id)
        while len(self._entries) > self.max_mailboxes:
            self._entries.popitem(last=False)

    async def changes_since(
        self, mailbox_id: int, since: int, read: Callable[[int], Awaitable[Read]]
    ) -> ChangeSet:
        """The changes above `since`, from the cache or by `read(since)` (shared)."""
        answer = self._answer(mailbox_id, since)
        if answer is not None:
            return answer
        pending = self._inflight.get(mailbox_id)
        if pending is not None and pending[0] <= since and self.reliable:
            await asyncio.shield(pending[1])
            answer = self._answer(mailbox_id, since)
            if answer is not None:
                return answer
        epoch, reliable = self.epoch, self.reliable
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if pending is None:
            self._inflight[mailbox_id] = (since, done)
        try:
            self.reads += 1
            result = await read(since)
            if reliable and self.reliable and epoch == self.epoch:
                self._keep(mailbox_id, since, result)
        finally:
            if self._inflight.get(mailbox_id, (0, None))[1] is done:
                del self._inflight[mailbox_id]
            done.set_result(None)
        top, uidnext, records, gone = result
        return ChangeSet(top, uidnext, records, tuple(uid for uid, _ms in gone))
