"""Abuse controls shared by every protocol: per-address command rate, ban refusals, deadlines.

One client address may open up to `max_connections_per_ip` sessions (net.server); what those
sessions do together is bounded here. The rate limiter is one token bucket per client address,
shared by all its sessions over every protocol, so fifty pipelining sessions from one address
get the same command rate as one. A command over the rate is not refused: it is answered late,
and since the adapters only read when the protocol core needs data, the flood waits in the
peer's socket buffer, not in our memory (back-pressure, as in uvicorn's flow control).

Addresses banned by the authenticator (too many failed logins) are refused when they connect,
on every protocol listener, like fail2ban's firewall rule but without the firewall. Sessions
that must log in and do not within `login_timeout` are hung up on (`LOGIN_TIMEOUT`).

`Deadline` is the slow-sender guard: the idle timeout runs from the last complete command, not
from the last byte, so a client trickling one byte a minute (slowloris) cannot hold a session
open for ever with a command that never ends.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Protocol

# Said to a banned address that connects, before any protocol code runs.
BANNED: dict[str, bytes] = {
    "smtp": b"421 4.7.0 Too many failed logins from your address, try again later\r\n",
    "submission": b"421 4.7.0 Too many failed logins from your address, try again later\r\n",
    "submissions": b"421 4.7.0 Too many failed logins from your address, try again later\r\n",
    "imap": b"* BYE Too many failed logins from your address, try again later\r\n",
    "imaps": b"* BYE Too many failed logins from your address, try again later\r\n",
    "pop3": b"-ERR [SYS/TEMP] Too many failed logins from your address, try again later\r\n",
    "pop3s": b"-ERR [SYS/TEMP] Too many failed logins from your address, try again later\r\n",
    "managesieve": b'BYE "Too many failed logins from your address, try again later"\r\n',
}

# Said to a session that has not logged in within `[limits] login_timeout` (net.server), on the
# protocols whose clients must authenticate; the MX never does and is not listed.
LOGIN_TIMEOUT: dict[str, bytes] = {
    "submission": b"421 4.7.0 Timeout waiting for authentication, closing connection\r\n",
    "submissions": b"421 4.7.0 Timeout waiting for authentication, closing connection\r\n",
    "imap": b"* BYE Disconnected: no login within the time allowed\r\n",
    "imaps": b"* BYE Disconnected: no login within the time allowed\r\n",
    "pop3": b"-ERR Disconnected: no login within the time allowed\r\n",
    "pop3s": b"-ERR Disconnected: no login within the time allowed\r\n",
    # RFC 5804 4 (response-bye): the last thing the server says before it closes
    "managesieve": b'BYE "Disconnected: no login within the time allowed"\r\n',
}


class RateTable(Protocol):
    """Where the limiter keeps, per client address, when its bucket will be full again."""

    def take(self, ip: str, now: float, spend: float, tolerance: float) -> float:
        """Spend `spend` seconds of `ip`'s allowance at `now`; how long to wait (0 = now).

        The bucket is kept as one time per address (the GCRA form of a token bucket): the
        moment its tokens would all be back (`full`, never before `now`). A command costs
        `spend` = cost / rate seconds of it; the command waits as long as `full` lies more
        than `tolerance` = burst / rate ahead.
        """
        ...


def wait_until(full: float, now: float, tolerance: float) -> float:
    """The wait for a bucket full at `full`: 0 within the burst (a nanosecond of rounding in
    the sums of spends is no debt)."""
    delay = full - now - tolerance
    return delay if delay > 1e-9 else 0.0


class LocalRates:
    """The rate state of one process (a single-process server, the tests' listeners)."""

    def __init__(self, max_addresses: int = 100_000) -> None:
        self.max_addresses = max_addresses
        self._buckets: dict[str, float] = {}  # address -> when its bucket is full

    def take(self, ip: str, now: float, spend: float, tolerance: float) -> float:
        full = self._buckets.get(ip)
        if full is None:
            if len(self._buckets) >= self.max_addresses:
                self._prune(now)
            full = now
        full = max(full, now) + spend
        self._buckets[ip] = full
        return wait_until(full, now, tolerance)

    def _prune(self, now: float) -> None:
        # Buckets that have refilled carry no information: forget them first.
        for ip in [ip for ip, full in self._buckets.items() if full <= now]:
            del self._buckets[ip]
        if len(self._buckets) >= self.max_addresses:  # still full of debtors: oldest go
            for ip in sorted(self._buckets, key=self._buckets.__getitem__)[
                : self.max_addresses // 10
            ]:
                del self._buckets[ip]


class CommandRateLimiter:
    """Commands per second per client address, across all its sessions and protocols.

    A token bucket: `burst` commands at once, then `rate` per second. Tokens may go negative
    (debt): each command waits until its token would have been there, so concurrent sessions
    of one address queue behind each other and the address as a whole gets `rate`.
    A `rate` of 0 turns the limiter off; `exempt` networks (trusted relays, webmail on
    loopback) are never delayed. With several worker processes `table` is the server's
    (`net.budgets.SharedRates`), so an address gets `rate` from the server, not from each
    worker; the clock must then be one all processes share (`time.monotonic` is).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        exempt: Iterable[str] = (),
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        table: RateTable | None = None,
    ) -> None:
        self.rate = max(0.0, float(rate))
        self.burst = float(burst) if burst is not None else max(1.0, 4.0 * self.rate)
        self.exempt = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)
        self._clock = clock
        self.table: RateTable = table if table is not None else LocalRates(max_addresses)
        self._tolerance = self.burst / self.rate if self.rate else 0.0
        self._exempt_cache: dict[str, bool] = {}
        # counters for metrics and tests
        self.delayed = 0
        self.delayed_seconds = 0.0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def is_exempt(self, ip: str) -> bool:
        hit = self._exempt_cache.get(ip)
        if hit is None:
            try:
                addr = ipaddress.ip_address(ip)
                hit = any(addr in net for net in self.exempt)
            except ValueError:
                hit = False
            if len(self._exempt_cache) > 10_000:
                self._exempt_cache.clear()
            self._exempt_cache[ip] = hit
        return hit

    def delay_for(self, ip: str, cost: float = 1.0) -> float:
        """Take `cost` tokens for `ip`; how long the command must wait for them (0 = now)."""
        if not self.enabled or self.is_exempt(ip):
            return 0.0
        return self.table.take(ip, self._clock(), cost / self.rate, self._tolerance)

    async def wait(self, ip: str, cost: float = 1.0) -> None:
        """Return when `ip` may have its next command answered."""
        delay = self.delay_for(ip, cost)
        if delay > 0:
            self.delayed += 1
            self.delayed_seconds += delay
            await asyncio.sleep(delay)


class Deadline:
    """When the current command must be complete; reset at each complete command."""

    def __init__(self, timeout: float, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self.timeout = timeout
        self.at = self._clock() + timeout

    def reset(self, timeout: float | None = None) -> None:
        if timeout is not None:
            self.timeout = timeout
        self.at = self._clock() + self.timeout

    def remaining(self) -> float:
        return max(0.0, self.at - self._clock())
