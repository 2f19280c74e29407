"""Cheap tests before DATA: greylisting and per-sender / per-client rate limits.

Both keep their state in memory, bounded (least recently used entries are dropped first), per
process: a restart forgets who was greylisted, which costs a legitimate sender one more retry
and nothing else, and several nodes behind one MX name each keep their own counts.

Greylisting (the idea of Harris' 2003 paper, as Postfix policy servers do it): the first
attempt of a (client network, sender, recipient) triplet is answered 451 4.7.1; a retry after
`delay` and before `expire` passes, and the triplet then passes for 36 days. Clients on an
allow list (networks, or a forward-confirmed reverse DNS name in a listed domain) and clients on
a DNS allow list are never greylisted.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Greylist", "RateLimiter", "client_network"]

PASSED_FOR = 36 * 86400.0


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


@dataclass(slots=True)
class _Triplet:
    first: float
    passed_until: float = 0.0


class Greylist:
    def __init__(self, delay: float, expire: float, *, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.delay = delay
        self.expire = expire
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[tuple[str, str, str], _Triplet] = OrderedDict()

    def check(self, client: str, sender: str, recipient: str) -> float:
        """0 when the attempt may pass, else the seconds the client still has to wait."""
        now = self.clock()
        key = (client_network(client), sender.lower(), recipient.lower())
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if entry.passed_until > now:
                entry.passed_until = now + PASSED_FOR
                return 0.0
            age = now - entry.first
            if self.delay <= age <= self.expire:
                entry.passed_until = now + PASSED_FOR
                return 0.0
            if age < self.delay:
                return self.delay - age
        self._entries[key] = _Triplet(now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return self.delay


class RateLimiter:
    """Events per key in a sliding hour, counted in six ten-minute buckets (so a key costs a
    few hundred bytes at most, and 100,000 keys some tens of megabytes)."""

    def __init__(self, per_hour: int, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.per_hour = per_hour
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, dict[int, int]] = OrderedDict()

    def hit(self, key: str) -> bool:
        """Count one event for `key`; False when that would exceed the limit (not counted)."""
        if self.per_hour <= 0:
            return True
        slot = int(self.clock() // 600)
        buckets = self._buckets.setdefault(key, {})
        self._buckets.move_to_end(key)
        for old in [m for m in buckets if m <= slot - 6]:
            del buckets[old]
        if sum(buckets.values()) >= self.per_hour:
            return False
        buckets[slot] = buckets.get(slot, 0) + 1
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return True
