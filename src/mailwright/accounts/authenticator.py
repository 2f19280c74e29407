"""Password authentication shared by every protocol, with failure delays and bans.

Failed logins are counted twice, across SMTP AUTH, IMAP and POP3 (as Stalwart's auto-ban or
fail2ban would):

* per (client address, account): past `failures_before_ban` that account is banned *for that
  address*: even its right password is refused from there until the ban ends. This is what
  stops a guesser, however the guesses are interleaved with other accounts' logins.
* per client address, over every account: each failure answers after a delay that grows with
  the address's count, and every login from a noisy address waits that long too, so the other
  users behind a shared NAT are slowed, not locked out. Only past
  `address_failures_before_ban` (a password sprayer trying many accounts) is the whole address
  banned: refused at connect on every listener, and given no password check at all, so one
  attacker cannot make us burn CPU on argon2.

Counts decay with time only: a success, on that account or another, clears nothing (a success
for the attacker's own account must not buy more guesses at someone else's). Each count leaks
away at `threshold / forget_after` per second, so a guesser gets `threshold` tries, then as
many as have leaked away (about `threshold * ban_time / forget_after`) per ban, and a user who
mistypes now and then never reaches one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailwright.accounts import settings
from mailwright.accounts.passwords import DUMMY, verify_password_async
from mailwright.accounts.roles import LoginStore
from mailwright.address import AddressError, parse_address
from mailwright.store.api import Account

MAX_TRACKED = 100_000  # addresses and (address, account) pairs kept before pruning
MAX_USERNAME_KEY = 320  # RFC 5321 4.5.3.1: local part 64 + "@" + domain 255


@dataclass(slots=True)
class _Failures:
    score: float = 0.0  # failures, leaking away with time
    last: float = 0.0
    banned_until: float = 0.0


class _FailureCounter:
    """Leaky failure counts per key, with a ban when a count reaches the threshold."""

    def __init__(self, threshold: int, ban_time: float, forget_after: float) -> None:
        self.threshold = threshold
        self.ban_time = ban_time
        self.leak = threshold / forget_after if forget_after > 0 else 0.0
        self._entries: dict[object, _Failures] = {}

    def score(self, key: object, now: float) -> float:
        f = self._entries.get(key)
        if f is None:
            return 0.0
        return max(0.0, f.score - (now - f.last) * self.leak)

    def banned(self, key: object, now: float) -> bool:
        f = self._entries.get(key)
        return f is not None and f.banned_until > now

    def add(self, key: object, now: float) -> float:
        """Count one failure; the score after it."""
        f = self._entries.get(key)
        if f is None:
            if len(self._entries) >= MAX_TRACKED:
                self._prune(now)
            f = self._entries[key] = _Failures()
        # Capped, so that one who stops is forgiven about `forget_after` later, however long
        # the hammering went on.
        leaked = max(0.0, f.score - (now - f.last) * self.leak)
        f.score = min(leaked + 1.0, 2.0 * self.threshold)
        f.last = now
        # "> threshold - 1", not ">= threshold": the earlier failures have leaked a little.
        # The score is kept through the ban: a guesser who comes back when it ends has leaked
        # only a few failures' worth and is banned again after those few.
        if f.score > self.threshold - 1 and f.banned_until <= now:
            f.banned_until = now + self.ban_time
        return f.score

    def _prune(self, now: float) -> None:
        # Entries that have leaked to nothing and are not banned carry no information.
        for key in [k for k, f in self._entries.items()
                    if f.banned_until <= now and f.score - (now - f.last) * self.leak <= 0]:  # fmt: skip
            del self._entries[key]
        if len(self._entries) >= MAX_TRACKED:  # still full: the oldest go
            for key in sorted(self._entries, key=lambda k: self._entries[k].last)[
                : MAX_TRACKED // 10
            ]:
                del self._entries[key]


class Authenticator:
    def __init__(
        self,
        store: LoginStore,
        *,
        failures_before_ban: int = 10,
        address_failures_before_ban: int = 50,
        ban_time: float = 900.0,
        base_delay: float = 0.5,
        max_delay: float = 5.0,
        forget_after: float = 3600.0,
        max_concurrent: int = 8,
        max_inflight_per_ip: int = 2,
        max_queued_per_ip: int = 16,
        dummy_hash: str = DUMMY,
    ) -> None:
        self.store = store
        # verified for unknown login names: the configured hash cost (passwords.dummy_hash)
        self.dummy_hash = dummy_hash
        self.failures_before_ban = failures_before_ban
        self.address_failures_before_ban = address_failures_before_ban
        self.ban_time = ban_time
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._per_account = _FailureCounter(failures_before_ban, ban_time, forget_after)
        self._per_address = _FailureCounter(address_failures_before_ban, ban_time, forget_after)
        self._slots = asyncio.Semaphore(max_concurrent)
        self._inflight: dict[str, int] = {}  # checks running or waiting, per address
        self._ip_slots: dict[str, asyncio.Semaphore] = {}
        self.max_inflight_per_ip = max_inflight_per_ip
        self.max_queued_per_ip = max_queued_per_ip
        # counters for metrics and tests: how much argon2 work attackers could make us do
        self.verifications = 0
        self.failures = 0
        self.refused_banned = 0
        # Several worker processes: each failure is told to the others (workers.channel),
        # which count it with `record_remote_failure`, so bans hold across workers.
        self.relay: Callable[[str, str], None] | None = None

    def is_banned(self, ip: str) -> bool:
        """The whole address is banned: refused at connect, on every protocol."""
        return self._per_address.banned(ip, time.monotonic())

    def is_banned_for(self, ip: str, username: str) -> bool:
        """`username` may not log in from `ip` now, even with the right password."""
        now = time.monotonic()
        return self._per_address.banned(ip, now) or self._per_account.banned(
            (ip, _username_key(username)), now
        )

    def _delay(self, score: float) -> float:
        if score <= 0:
            return 0.0
        steps = min(max(0, round(score) - 1), 8)
        return float(min(self.max_delay, self.base_delay * (2**steps)))

    def _record_failure(self, ip: str, username: str = "") -> float:
        """Count one failed login; how long to wait before answering it."""
        now = time.monotonic()
        self.failures += 1
        self._per_account.add((ip, _username_key(username)), now)
        if self.relay is not None:
            self.relay(ip, username)
        return self._delay(self._per_address.add(ip, now))

    def record_remote_failure(self, ip: str, username: str) -> None:
        """Another worker's failed login: counted as ours (bans, delays), answered by it."""
        now = time.monotonic()
        self._per_account.add((ip, _username_key(username)), now)
        self._per_address.add(ip, now)

    def _noisy_address_delay(self, ip: str) -> float:
        # Logins from an address with recent failures wait as a failure would, right or wrong:
        # the other users behind a NAT are slowed, and the answer's timing tells nothing.
        return self._delay(self._per_address.score(ip, time.monotonic()))

    async def authenticate(
        self, username: str, password: str, ip: str, *, web: bool = False
    ) -> Account | None:
        """The account, or None after the failure delay. Banned logins always fail.

        Mail protocols (``web=False``) also accept the account's app passwords, and only
        those once the account has a second factor (TOTP) for the web: the main password
        alone then opens nothing but the web sign-in, which asks for the code next. The web
        sign-in (``web=True``) accepts the main password only.
        """
        if self.is_banned_for(ip, username):
            self.refused_banned += 1
            # No argon2 work, and no count against the address either: hammering an account
            # that is banned already gets nowhere, and must not lock the others behind the
            # same NAT out. It is slowed like every attempt from a noisy address.
            await asyncio.sleep(max(self.base_delay, self._noisy_address_delay(ip)))
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
            await asyncio.sleep(self._record_failure(ip, username))
            return None
        self._inflight[ip] = self._inflight.get(ip, 0) + 1
        slot = self._ip_slots.get(ip)
        if slot is None:
            slot = self._ip_slots[ip] = asyncio.Semaphore(self.max_inflight_per_ip)
        try:
            async with slot, self._slots:
                if self.is_banned_for(ip, username):  # banned while this attempt waited
                    self.refused_banned += 1
                    return None
                self.verifications += 1
                ok = await verify_password_async(
                    account.password_hash if account else None, password, self.dummy_hash
                )
                if account is not None and not web:
                    ok = await self._mail_password_ok(account, password, ok)
        finally:
            left = self._inflight[ip] - 1
            if left:
                self._inflight[ip] = left
            else:
                del self._inflight[ip]
                del self._ip_slots[ip]
        if ok and account is not None and not account.disabled:
            # Nothing is cleared: failures decay with time only.
            delay = self._noisy_address_delay(ip)
            if delay:
                await asyncio.sleep(delay)
            return account
        await asyncio.sleep(self._record_failure(ip, username))
        return None


    async def _mail_password_ok(self, account: Account, password: str, main_ok: bool) -> bool:
        """A mail client's password: an app password, or the main one without TOTP."""
        if main_ok and await self.store.account_setting(account.id, settings.TOTP) is None:
            return True
        digest = app_password_digest(password)
        return any(hmac.compare_digest(p.digest, digest)
                   for p in await self.store.app_passwords(account.id))

    async def fail(self, ip: str, username: str) -> None:
        """Count a failed second step of a login (a wrong TOTP code) like a wrong password,
        and wait as long."""
        await asyncio.sleep(self._record_failure(ip, username))


def app_password_digest(password: str) -> str:
    """What the store keeps of an app password (see `store.api.AppPassword`)."""
    return hashlib.sha256(password.encode("utf-8", "surrogateescape")).hexdigest()


def _username_key(username: str) -> str:
    """The account a login names, as the failure counts know it (bounded, case-folded)."""
    try:
        return str(parse_address(username))
    except AddressError:
        return username[:MAX_USERNAME_KEY].lower()
