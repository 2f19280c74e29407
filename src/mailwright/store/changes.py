"""Change hub: wakes sessions after a commit touches a mailbox they watch.

It carries no data beyond the mailbox and its new HIGHESTMODSEQ: a woken session asks the store
`changes_since(its_modseq)` at its next sync point, which keeps the hub lossless even when a
notification is coalesced, and lets a PostgreSQL backend feed it from LISTEN/NOTIFY.

Keys are integers. A mailbox is its (positive) row id; an account's mailbox list, its
subscriptions and its annotations are negative keys from `account_channel`, so that they travel
the same roads as mailbox changes (the worker relay, PostgreSQL's NOTIFY) with no new message
kind. IMAP NOTIFY (RFC 5465) watches many keys at once through one `Watch`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Protocol

MAILBOX_LIST = 0  # a mailbox created, deleted or renamed
SUBSCRIPTIONS = 1  # a name subscribed or unsubscribed
ANNOTATIONS = 2  # an annotation (RFC 5464 METADATA) of a mailbox or of the server changed
_CHANNELS = 4
#: domains, accounts or aliases changed (nodes forget their cached look-ups,
#: store/postgres/lookups.py); account 0 never exists and kind 3 is no account channel
DIRECTORY = -3


def account_channel(account_id: int, kind: int) -> int:
    """The hub key of one kind of account-wide change (MAILBOX_LIST, SUBSCRIPTIONS,
    ANNOTATIONS); negative, so never a mailbox id."""
    return -(account_id * _CHANNELS + kind)


class Subscription:
    """One session's interest in one mailbox; `wait` returns once something changed."""

    __slots__ = ("_event", "_hub", "mailbox_id", "modseq")

    def __init__(self, hub: ChangeHub, mailbox_id: int) -> None:
        self._hub = hub
        self._event = asyncio.Event()
        self.mailbox_id = mailbox_id
        self.modseq = 0

    def _notify(self, key: int, modseq: int) -> None:
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


class Watch:
    """One session's interest in a set of keys (mailboxes and account channels), woken by a
    change to any of them; `take` says which changed. Memory is bounded by the keys watched:
    a key that changes many times before `take` is one entry."""

    __slots__ = ("_changed", "_event", "_hub", "keys")

    def __init__(self, hub: ChangeHub) -> None:
        self._hub = hub
        self._event = asyncio.Event()
        self._changed: set[int] = set()
        self.keys: frozenset[int] = frozenset()

    def _notify(self, key: int, modseq: int) -> None:
        self._changed.add(key)
        self._event.set()

    def watch(self, keys: frozenset[int]) -> None:
        """Watch exactly *keys* from now on."""
        for key in self.keys - keys:
            self._hub._drop(key, self)
        for key in keys - self.keys:
            self._hub._subs[key].add(self)
        self.keys = keys
        self._changed &= keys

    @property
    def pending(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    def take(self) -> set[int]:
        """The keys changed since the last call; clears the pending mark."""
        changed, self._changed = self._changed, set()
        self._event.clear()
        return changed

    def close(self) -> None:
        self.watch(frozenset())


class Listener(Protocol):
    """Anything woken by a plain call, with no event or task of its own: an IMAP session
    hibernated in IDLE (imapd/hibernate.py) costs the hub one set entry."""

    def _notify(self, key: int, modseq: int) -> None: ...


class ChangeHub:
    def __init__(self) -> None:
        self._subs: defaultdict[int, set[Subscription | Watch | Listener]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, mailbox_id: int) -> Subscription:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        sub = Subscription(self, mailbox_id)
        self._subs[mailbox_id].add(sub)
        return sub

    def watch(self) -> Watch:
        """A watch of no keys yet (`Watch.watch` sets them)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return Watch(self)

    def attach(self, key: int, listener: Listener) -> None:
        """Call ``listener._notify(key, modseq)`` on the loop after each change to *key*,
        until `detach`. The call must not block: it may start a task."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._subs[key].add(listener)

    def detach(self, key: int, listener: Listener) -> None:
        self._drop(key, listener)

    def _remove(self, sub: Subscription) -> None:
        self._drop(sub.mailbox_id, sub)

    def _drop(self, key: int, sub: Subscription | Watch | Listener) -> None:
        subs = self._subs.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[key]

    def publish(self, mailbox_id: int, modseq: int) -> None:
        """Call on the event loop after the change is committed."""
        for sub in list(self._subs.get(mailbox_id, ())):
            sub._notify(mailbox_id, modseq)

    def publish_threadsafe(self, mailbox_id: int, modseq: int) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.publish, mailbox_id, modseq)

    def watchers(self, mailbox_id: int) -> int:
        return len(self._subs.get(mailbox_id, ()))

    def watched(self) -> list[int]:
        """Every key someone watches (a backend that may have missed changes wakes them all)."""
        return list(self._subs)
