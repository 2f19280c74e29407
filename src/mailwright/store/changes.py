"""Change hub: wakes sessions after a commit touches a mailbox they watch.

It carries no data beyond the mailbox and its new HIGHESTMODSEQ: a woken session asks the store
`changes_since(its_modseq)` at its next sync point, which keeps the hub lossless even when a
notification is coalesced, and lets a PostgreSQL backend feed it from LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Subscription:
    """One session's interest in one mailbox; `wait` returns once something changed."""

    __slots__ = ("_event", "_hub", "mailbox_id", "modseq")

    def __init__(self, hub: ChangeHub, mailbox_id: int) -> None:
        self._hub = hub
        self._event = asyncio.Event()
        self.mailbox_id = mailbox_id
        self.modseq = 0

    def _notify(self, modseq: int) -> None:
        self.modseq = max(self.modseq, modseq)
        self._event.set()

    @property
    def pending(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """True when a change arrived, False on timeout; clears the pending mark."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def clear(self) -> None:
        self._event.clear()

    def close(self) -> None:
        self._hub._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChangeHub:
    def __init__(self) -> None:
        self._subs: defaultdict[int, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, mailbox_id: int) -> Subscription:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        sub = Subscription(self, mailbox_id)
        self._subs[mailbox_id].add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.mailbox_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.mailbox_id]

    def publish(self, mailbox_id: int, modseq: int) -> None:
        """Call on the event loop after the change is committed."""
        for sub in list(self._subs.get(mailbox_id, ())):
            sub._notify(modseq)

    def publish_threadsafe(self, mailbox_id: int, modseq: int) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.publish, mailbox_id, modseq)

    def watchers(self, mailbox_id: int) -> int:
        return len(self._subs.get(mailbox_id, ()))
