"""Connection counts behind the budgets of `net.server`: in one process, or shared by workers.

`[limits] max_connections`, the listeners' shares and `max_connections_per_ip` are promises about
the server, not about one process: with four workers each counting for itself, one address could
hold four times its share and the node four times its total. So with several workers the counts
live in one anonymous shared mapping that the supervisor makes before it forks
(`SharedCounts`), and every worker reads the sum of all.

Why rows, one per worker, instead of one shared counter with a lock: a worker only ever writes
its own row, so no lock is needed and none can be left held by a worker that was killed; the
supervisor zeroes a dead worker's row before it forks the replacement (the kernel closed that
worker's connections when it died). The price is that two workers admitting at the same instant
can both see room for one more, so a budget may be passed by at most one connection per other
worker, for as long as those connections last. Per-address counts sit in a fixed table of
slots indexed by a keyed hash of the address (`keyed_slot`, the key made before the fork): two
addresses that share a slot are counted together, which can only refuse early, never admit more
than the cap, and keeps the mapping's size fixed whatever an attacker's address space (no table
that grows with the addresses seen); the key keeps an attacker from choosing addresses that
share a victim's slot to have the victim refused.

The per-address command rate (`net.limits.CommandRateLimiter`) is the server's too: with a
bucket per worker, an address spread over N workers would get N times its rate. `SharedRates`
keeps each address's bucket as one time (when it is full again, GCRA), in rows per worker like
the counts: a worker reads the latest time of every row for the address's slot, adds the
command's cost and writes the result in its own row only. The latest time of all rows is then
the server's bucket; no lock, and two workers taking the same address's command at the same
instant may each miss the other's (one command's worth, once). Slots are chosen by a keyed hash
(BLAKE2b with a key made before the fork): an attacker cannot pick addresses that share a slot
with a victim's to slow it down. A dead worker's row is left as it is: its times are debts the
address really ran up, and they expire by themselves (a time in the past is a full bucket).
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections import Counter
from collections.abc import Sequence

from mailwright.net.limits import wait_until

# Per-address slots per worker: 4 octets each, 256 KiB a worker; a page is only backed by
# memory once an address hashes into it.
IP_SLOTS = 1 << 16
# Per-address command-rate slots per worker: 8 octets each (a time), 512 KiB a worker.
RATE_SLOTS = 1 << 16


class LocalCounts:
    """The counts of one process (a single-process server, and the tests' listeners)."""

    def __init__(self) -> None:
        self._total = 0
        self._per_listener: Counter[str] = Counter()
        self._per_ip: Counter[str] = Counter()

    def total(self) -> int:
        return self._total

    def listener(self, name: str) -> int:
        return self._per_listener[name]

    def ip(self, ip: str) -> int:
        return self._per_ip[ip]

    def open(self, name: str) -> None:
        self._total += 1
        self._per_listener[name] += 1

    def close(self, name: str) -> None:
        self._total -= 1
        self._per_listener[name] -= 1

    def open_ip(self, ip: str) -> None:
        self._per_ip[ip] += 1

    def close_ip(self, ip: str) -> None:
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


def keyed_slot(key: bytes, ip: str, slots: int) -> int:
    """The slot of `ip` among `slots`, by a hash keyed with `key` (BLAKE2b): the same in every
    process that has the key, and not to be predicted by a client choosing its addresses."""
    digest = hashlib.blake2b(ip.encode(), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "little") % slots


class SharedCounts:
    """The counts of every worker of one server, in a mapping shared across `fork`.

    Made by the supervisor with the listeners' names (the same order in every worker); each
    worker calls `attach(index)` once, then counts in its own row and reads the sum of all.
    """

    def __init__(self, workers: int, listeners: Sequence[str], ip_slots: int = IP_SLOTS) -> None:
        self._names = {name: i + 1 for i, name in enumerate(listeners)}  # slot 0: the total
        self._ip_slots = ip_slots
        self._key = os.urandom(16)  # made before the fork: every worker hashes alike
        counters = 8 * (1 + len(self._names))
        row = counters + 4 * ip_slots
        # Anonymous and MAP_SHARED (mmap's default): the workers forked later see one mapping.
        self._map = mmap.mmap(-1, row * workers)
        view = memoryview(self._map)
        self._counters = [view[r * row : r * row + counters].cast("q") for r in range(workers)]
        self._ips = [view[r * row + counters : (r + 1) * row].cast("i") for r in range(workers)]
        self._row = 0

    def attach(self, index: int) -> SharedCounts:
        """Count as worker `index` from now on (in the worker, once, after the fork)."""
        self._row = index
        return self

    def clear(self, index: int) -> None:
        """Forget worker `index`'s connections (in the supervisor, when that worker is dead)."""
        counters, ips = self._counters[index], self._ips[index]
        for i in range(len(counters)):
            counters[i] = 0
        ips[:] = memoryview(bytes(4 * self._ip_slots)).cast("i")

    def _slot(self, ip: str) -> int:
        # keyed, as the rate slots: with a public hash an attacker picks addresses that share
        # a victim's slot and, holding the per-address cap from them, locks the victim out
        return keyed_slot(self._key, ip, self._ip_slots)

    def total(self) -> int:
        return sum(c[0] for c in self._counters)

    def listener(self, name: str) -> int:
        i = self._names.get(name)
        return 0 if i is None else sum(c[i] for c in self._counters)

    def ip(self, ip: str) -> int:
        slot = self._slot(ip)
        return sum(t[slot] for t in self._ips)

    def open(self, name: str) -> None:
        row = self._counters[self._row]
        row[0] += 1
        i = self._names.get(name)
        if i is not None:
            row[i] += 1

    def close(self, name: str) -> None:
        row = self._counters[self._row]
        row[0] -= 1
        i = self._names.get(name)
        if i is not None:
            row[i] -= 1

    def open_ip(self, ip: str) -> None:
        self._ips[self._row][self._slot(ip)] += 1

    def close_ip(self, ip: str) -> None:
        self._ips[self._row][self._slot(ip)] -= 1


class SharedRates:
    """The command-rate buckets of every worker of one server, shared across `fork`
    (a `net.limits.RateTable`). Made by the supervisor; each worker calls `attach(index)`."""

    def __init__(self, workers: int, slots: int = RATE_SLOTS) -> None:
        self._slots = slots
        self._key = os.urandom(16)  # made before the fork: every worker hashes alike
        self._map = mmap.mmap(-1, 8 * slots * workers)
        view = memoryview(self._map)
        self._rows = [view[r * 8 * slots : (r + 1) * 8 * slots].cast("d") for r in range(workers)]
        self._row = 0

    def attach(self, index: int) -> SharedRates:
        """Write as worker `index` from now on (in the worker, once, after the fork)."""
        self._row = index
        return self

    def _slot(self, ip: str) -> int:
        return keyed_slot(self._key, ip, self._slots)

    def full_at(self, ip: str) -> float:
        """When `ip`'s bucket is full again, on the server's monotonic clock (0: never used)."""
        slot = self._slot(ip)
        return max(row[slot] for row in self._rows)

    def take(self, ip: str, now: float, spend: float, tolerance: float) -> float:
        slot = self._slot(ip)
        full = max(now, *(row[slot] for row in self._rows)) + spend
        self._rows[self._row][slot] = full
        return wait_until(full, now, tolerance)


ConnectionCounts = LocalCounts | SharedCounts
