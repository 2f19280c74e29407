"""Password checks: argon2id, shared failure delays, bans that stop argon2 work for attackers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from mailwright.accounts.authenticator import Authenticator
from mailwright.accounts.passwords import (
    DUMMY,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from mailwright.config import PasswordsConfig
from mailwright.store.api import Store


def test_authenticator_hash_is_argon2id_and_verifies() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "x")
    assert not needs_rehash(h)


def test_hash_cost_comes_from_the_config_and_the_dummy_matches_it() -> None:
    # the default: RFC 9106 4's second recommended option, and the built-in dummy hash has it
    assert "$m=65536,t=3,p=4$" in hash_password("pw", PasswordsConfig())
    assert "$m=65536,t=3,p=4$" in DUMMY and dummy_hash(PasswordsConfig()) == DUMMY
    assert not verify_password(DUMMY, "")
    cheap = PasswordsConfig(hash_passes=1, hash_memory=64 * 1024)
    h = hash_password("pw", cheap)
    assert "$m=64,t=1,p=4$" in h and verify_password(h, "pw") and not verify_password(h, "pv")
    # an unknown login name costs what a known one does: the dummy has the configured cost
    d = dummy_hash(cheap)
    assert d != DUMMY and "$m=64,t=1,p=4$" in d
    assert not verify_password(None, "pw", d)


def test_importing_passwords_hashes_nothing() -> None:
    """Every command and server process imports the module: no argon2 work at import."""
    code = ("import argon2\n"
            "calls = []\n"
            "argon2.PasswordHasher.hash = lambda self, *a, **k: calls.append(a)\n"
            "import mailwright.accounts.passwords\n"
            "assert not calls, calls\n")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))


async def test_authenticator_login_and_failure(store: Store) -> None:
    await store.add_domain("example.test")
    await store.add_account("alice@example.test", hash_password("pw"))
    auth = Authenticator(store, base_delay=0.0)
    acc = await auth.authenticate("Alice@Example.TEST", "pw", "192.0.2.1")
    assert acc is not None and acc.address == "alice@example.test"
    assert await auth.authenticate("alice@example.test", "bad", "192.0.2.1") is None
    assert await auth.authenticate("nobody@example.test", "pw", "192.0.2.1") is None
    assert await auth.authenticate("not an address", "pw", "192.0.2.1") is None


async def test_authenticator_10000_wrong_passwords_are_banned_cheaply(store: Store) -> None:
    await store.add_domain("example.test")
    await store.add_account("alice@example.test", hash_password("pw"))
    auth = Authenticator(store, failures_before_ban=10, ban_time=900, base_delay=0.0, max_delay=0.0)
    attacker, user = "198.51.100.7", "192.0.2.55"

    async def attempt(i: int) -> object:
        return await auth.authenticate("alice@example.test", f"guess{i}", attacker)

    results = []
    for start in range(0, 10_000, 500):
        results += await asyncio.gather(*(attempt(i) for i in range(start, start + 500)))
    assert all(r is None for r in results)
    assert auth.is_banned_for(attacker, "alice@example.test")
    # hundreds of guesses at once, past the in-flight cap: the whole address is banned too
    assert auth.is_banned(attacker)
    # argon2 ran only for the attempts before the ban (at most two in flight per address)
    assert auth.verifications <= 10 + 2
    assert auth.refused_banned >= 9_000
    # the ban is per address: the real user still logs in, even with the right password
    assert await auth.authenticate("alice@example.test", "pw", user) is not None
    # and the banned address fails even with the right password
    assert await auth.authenticate("alice@example.test", "pw", attacker) is None


async def test_authenticator_delay_grows_with_failures(store: Store) -> None:
    auth = Authenticator(store, base_delay=0.5, max_delay=5.0, failures_before_ban=100)
    delays = [auth._record_failure("203.0.113.9") for _ in range(6)]
    assert delays == sorted(delays) and delays[0] == 0.5 and delays[-1] == 5.0
