"""Password authentication shared by every protocol, with failure delays and bans.

Failures are counted per client address across SMTP, IMAP and POP3 (as Stalwart's auto-ban or
fail2ban would). Each failure answers after a growing delay; past the threshold the address is
banned for a while and gets no password check at all, so one attacker cannot make us burn CPU
on argon2. Successful logins from an address reset its count.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mailwright.accounts.passwords import verify_password_async
from mailwright.address import AddressError, parse_address
from mailwright.store.api import Account, Store


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    banned_until: float = 0.0


class Authenticator:
    def __init__(
        self,
        store: Store,
        *,
        failures_before_ban: int = 10,
        ban_time: float = 900.0,
        base_delay: float = 0.5,
        max_delay: float = 5.0,
        forget_after: float = 3600.0,
        max_concurrent: int = 8,
        max_inflight_per_ip: int = 2,
        max_queued_per_ip: int = 16,
    ) -> None:
        self.store = store
        self.failures_before_ban = failures_before_ban
        self.ban_time = ban_time
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._failures: dict[str, _Failures] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        self._inflight: dict[str, int] = {}  # checks running or waiting, per address
        self._ip_slots: dict[str, asyncio.Semaphore] = {}
        self.max_inflight_per_ip = max_inflight_per_ip
        self.max_queued_per_ip = max_queued_per_ip
        # counters for metrics and tests: how much argon2 work attackers could make us do
        self.verifications = 0
        self.failures = 0
        self.refused_banned = 0

    def is_banned(self, ip: str) -> bool:
        f = self._failures.get(ip)
        return f is not None and f.banned_until > time.monotonic()

    def _record_failure(self, ip: str) -> float:
        now = time.monotonic()
        f = self._failures.get(ip)
        if f is None or now - f.last > self.forget_after:
            f = self._failures[ip] = _Failures()
        f.count += 1
        f.last = now
        if f.count >= self.failures_before_ban:
            f.banned_until = now + self.ban_time
        if len(self._failures) > 100_000:
            self._prune(now)
        return float(min(self.max_delay, self.base_delay * (2 ** min(f.count - 1, 8))))

    def _prune(self, now: float) -> None:
        for ip in [ip for ip, f in self._failures.items() if now - f.last > self.forget_after]:
            del self._failures[ip]

    async def authenticate(self, username: str, password: str, ip: str) -> Account | None:
        """The account, or None after the failure delay. Banned addresses always fail."""
        if self.is_banned(ip):
            self.refused_banned += 1
            await asyncio.sleep(self.base_delay)
            return None
        account: Account | None = None
        try:
            addr = str(parse_address(username))
        except AddressError:
            addr = None
        if addr is not None:
            account = await self.store.find_account(addr)
        # At most a few checks in flight per address: a flood of parallel guesses from one
        # address cannot queue up argon2 work ahead of everybody else. A few more wait their
        # turn (a mail client opens several connections at once, each logging in); past that
        # the attempt fails without a check.
        if self._inflight.get(ip, 0) >= self.max_inflight_per_ip + self.max_queued_per_ip:
            self.failures += 1
            await asyncio.sleep(self._record_failure(ip))
            return None
        self._inflight[ip] = self._inflight.get(ip, 0) + 1
        slot = self._ip_slots.get(ip)
        if slot is None:
            slot = self._ip_slots[ip] = asyncio.Semaphore(self.max_inflight_per_ip)
        try:
            async with slot, self._slots:
                if self.is_banned(ip):  # banned while this attempt waited for a slot
                    self.refused_banned += 1
                    return None
                self.verifications += 1
                ok = await verify_password_async(
                    account.password_hash if account else None, password
                )
        finally:
            left = self._inflight[ip] - 1
            if left:
                self._inflight[ip] = left
            else:
                del self._inflight[ip]
                del self._ip_slots[ip]
        if ok and account is not None and not account.disabled:
            self._failures.pop(ip, None)
            return account
        self.failures += 1
        await asyncio.sleep(self._record_failure(ip))
        return None
