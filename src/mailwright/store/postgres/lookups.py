"""A node-local cache of the directory reads every delivery makes: domains, accounts, aliases,
the active Sieve scripts.

Each SMTP recipient costs `has_domain`, `find_account` and often `get_alias`, and each
delivery `sieve_active_many`: on PostgreSQL each is a pool checkout and a round trip, for data
an administrator or a user changes a few times a day. This node keeps the answers (negative ones too: an unknown address
tried again is not read again) and forgets all of them whenever the directory changes:

- Every rule that writes `domains`, `accounts` or `aliases`, or changes which Sieve script
  is active or what it says, marks the hub key `DIRECTORY`
  (`store/changes.py`) in its transaction, so the `NOTIFY` that tells the other nodes travels
  in the same transaction, delivered only if it commits (PostgreSQL sends notifications at
  COMMIT). This node forgets at once, before the writer's caller is answered; another node
  forgets when the notification arrives: a deleted or disabled account, a removed alias, a new
  domain take effect everywhere within the NOTIFY delay, the delay IDLE already has.
- Answers are served only while the LISTEN connection is up (`ChangeLog.reliable`); while it is
  down every read goes to the database, and what was kept before the loss is forgotten, since
  a notification may have been missed (`ChangeLog.epoch` counts the losses).
- A read that was in flight when the directory changed is returned to its caller but not kept
  (it may predate the change): the generation counter says so.

Memory is bounded (an LRU of `max_entries` answers): RCPT TO with made-up addresses of a local
domain only pushes older answers out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar, cast

from mailwright.store.api import Account, Alias
from mailwright.store.core.accounts import Accounts
from mailwright.store.core.fanout import FanOut

V = TypeVar("V")


class LookupCache:
    """Answers kept until the directory changes (see the module's rules). `live()` says
    whether every change will be heard (LISTEN is up) and how many LISTEN losses there were."""

    def __init__(self, live: Callable[[], tuple[bool, int]], max_entries: int = 4096) -> None:
        self.live = live
        self.max_entries = max_entries
        self.generation = 0  # directory changes heard so far
        self._epoch = -1
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.reads = 0

    def invalidate(self) -> None:
        """The directory changed (here or on another node): forget everything."""
        self.generation += 1
        self._entries.clear()

    def find(self, key: Hashable) -> tuple[bool, Any]:
        """(True, the answer kept) or (False, None)."""
        reliable, epoch = self.live()
        if epoch != self._epoch:  # LISTEN was lost since these were kept
            self._entries.clear()
            self._epoch = epoch
        if not reliable or key not in self._entries:
            return False, None
        self._entries.move_to_end(key)
        self.hits += 1
        return True, self._entries[key]

    def token(self) -> tuple[int, bool, int]:
        """Taken before a read: `keep` keeps its answer only if nothing changed meanwhile."""
        self.reads += 1
        reliable, epoch = self.live()
        return self.generation, reliable, epoch

    def keep(self, token: tuple[int, bool, int], key: Hashable, value: object) -> None:
        generation, reliable, epoch = token
        if not reliable or generation != self.generation or self.live() != (True, epoch):
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def get(self, key: Hashable, read: Callable[[], Awaitable[V]]) -> V:
        """The answer kept for `key`, or `read()`'s (kept if nothing changed meanwhile)."""
        hit, value = self.find(key)
        if hit:
            return cast(V, value)
        token = self.token()
        fresh = await read()
        self.keep(token, key, fresh)
        return fresh


class CachedLookups(Accounts, FanOut):
    """The directory reads of the core, answered from `self.lookups` (a backend sets it)."""

    lookups: LookupCache

    async def has_domain(self, name: str) -> bool:
        return await self.lookups.get(("domain", name), lambda: super(
            CachedLookups, self).has_domain(name))

    async def find_account(self, address: str) -> Account | None:
        return await self.lookups.get(("address", address), lambda: super(
            CachedLookups, self).find_account(address))

    async def get_account(self, account_id: int) -> Account | None:
        return await self.lookups.get(("account", account_id), lambda: super(
            CachedLookups, self).get_account(account_id))

    async def get_alias(self, source: str) -> Alias | None:
        return await self.lookups.get(("alias", source), lambda: super(
            CachedLookups, self).get_alias(source))

    async def sieve_active_many(self, account_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """Read on every delivery (sieve/delivery.py); kept per account, None: no script."""
        out: dict[int, tuple[str, str]] = {}
        missing: list[int] = []
        for account_id in sorted(set(account_ids)):
            hit, value = self.lookups.find(("sieve", account_id))
            if not hit:
                missing.append(account_id)
            elif value is not None:
                out[account_id] = value
        if missing:
            token = self.lookups.token()
            read = await super().sieve_active_many(missing)
            for account_id in missing:
                self.lookups.keep(token, ("sieve", account_id), read.get(account_id))
            out.update(read)
        return out
