"""Cheap tests before DATA: greylisting and per-sender / per-client rate limits.

Both keep their state in the store (`spam_greylist`, `spam_rates`), so that every worker
process and every node on one store sees the same triplets and the same counts, and a restart
forgets nothing. Times are wall-clock Unix seconds (shared between processes). Rows that can no
longer matter are purged (`purge`, called by the filter every few minutes), so the tables stay
bounded by the traffic of the last `expire` (greylisting) and hour (rates).

Greylisting (the idea of Harris' 2003 paper, as Postfix policy servers do it): the first
attempt of a (client network, sender, recipient) triplet is answered 451 4.7.1; a retry after
`delay` and before `expire` passes, and the triplet then passes for 36 days. Clients on an
allow list (networks, or a forward-confirmed reverse DNS name in a listed domain) and clients on
a DNS allow list are never greylisted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable

from mailwright.store.api import SpamStore

__all__ = ["Greylist", "RateLimiter", "client_network"]

PASSED_FOR = 36 * 86400.0
SLOT = 600  # rate limits count in ten-minute slots, six to the sliding hour


def client_network(address: str) -> str:
    """The unit of reputation for a client: its /24 (IPv4) or /64 (IPv6), as senders with
    large pools retry from neighbouring addresses."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if isinstance(ip, ipaddress.IPv4Address) else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _key(*parts: str) -> str:
    """A fixed-size key: the parts come from the client (a 1,000-byte sender costs no more)."""
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "replace"), digest_size=16).hexdigest()


class Greylist:
    def __init__(self, store: SpamStore, delay: float, expire: float, *,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store = store
        self.delay = delay
        self.expire = expire
        self.clock = clock

    async def check(self, client: str, sender: str, recipient: str) -> float:
        """0 when the attempt may pass, else the seconds the client still has to wait."""
        now = self.clock()
        key = _key("grey", client_network(client), sender.lower(), recipient.lower())
        first, passed_until = await self.store.spam_greylist_seen(key, now)
        if passed_until > now:
            if passed_until - now < PASSED_FOR - 86400:  # refreshed once a day, not per RCPT
                await self.store.spam_greylist_set(key, first, now + PASSED_FOR)
            return 0.0
        age = now - first
        if first < now and self.delay <= age <= self.expire:
            await self.store.spam_greylist_set(key, first, now + PASSED_FOR)
            return 0.0
        if 0 <= age < self.delay:
            return self.delay - age
        await self.store.spam_greylist_set(key, now, 0.0)  # too late (or clock skew): again
        return self.delay


class RateLimiter:
    """Events per key in a sliding hour, counted in six ten-minute slots in the store."""

    def __init__(self, store: SpamStore, name: str, per_hour: int, *,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store = store
        self.name = name
        self.per_hour = per_hour
        self.clock = clock

    async def hit(self, key: str) -> bool:
        """Count one event for `key`; False when that would exceed the limit (not counted)."""
        if self.per_hour <= 0:
            return True
        slot = int(self.clock() // SLOT)
        return await self.store.spam_rate_add(_key("rate", self.name, key), slot, slot - 5,
                                              self.per_hour)  # fmt: skip


async def purge(store: SpamStore, expire: float, now: float | None = None) -> int:
    """Remove greylisting triplets and rate slots that can no longer change a decision."""
    now = time.time() if now is None else now
    return await store.spam_envelope_purge(now, now - expire, int(now // SLOT) - 6)
