"""Password hashing with argon2id (RFC 9106); never plaintext, never a fast hash.

Hashing is CPU work of tens of milliseconds, so the async helpers run it in a small bounded
pool: a flood of logins queues up there instead of starving the event loop.

The cost of new hashes is `[passwords] hash_passes` and `hash_memory` (default:
RFC 9106 4's second recommended option, t=3 and 64 MiB, the library's own default). Verifying
reads the cost from the stored hash itself, so changing it affects only hashes made afterwards.
Nothing is hashed at import: every `mailwright` command and server process imports this module.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

if TYPE_CHECKING:
    from mailwright.config import PasswordsConfig

DEFAULT_PASSES = 3
DEFAULT_MEMORY_KIB = 65536
PARALLELISM = 4
_hasher = PasswordHasher(time_cost=DEFAULT_PASSES, memory_cost=DEFAULT_MEMORY_KIB,
                         parallelism=PARALLELISM)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")

# A real argon2id hash, at the default cost, of a random password nobody knows (made once with
# secrets.token_urlsafe(24) and thrown away): verified when the account does not exist, so that
# timing does not tell which login names exist. A constant, not hashed at import time.
DUMMY = ("$argon2id$v=19$m=65536,t=3,p=4$G5D0aTpdLkqFtCU5xoXwyw"
          "$xHGa3NCA02REQNY5FPrIKvF9msgGvNAT2dQom9n0nIM")


@functools.lru_cache(maxsize=8)
def _hasher_for(passes: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=passes, memory_cost=memory_kib, parallelism=PARALLELISM)


def hash_password(password: str, cost: PasswordsConfig | None = None) -> str:
    """An argon2id hash at the configured cost (`[passwords]`), else at the default one."""
    if not password:
        raise ValueError("empty password")
    if cost is None:
        return _hasher.hash(password)
    return _hasher_for(cost.hash_passes, cost.hash_memory // 1024).hash(password)


def dummy_hash(cost: PasswordsConfig) -> str:
    """The hash verified for a login name that has no account: one of the configured cost, so
    that an unknown name takes as long as a known one (hashed once, at the server's start)."""
    if (cost.hash_passes, cost.hash_memory) == (DEFAULT_PASSES, DEFAULT_MEMORY_KIB * 1024):
        return DUMMY
    return hash_password(secrets.token_urlsafe(24), cost)


def verify_password(stored: str | None, password: str, dummy: str = DUMMY) -> bool:
    """Whether `password` matches `stored`; with no stored hash, `dummy` is verified all the
    same (and the answer is False)."""
    try:
        return _hasher.verify(stored or dummy, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password_async(stored: str | None, password: str, dummy: str = DUMMY) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, verify_password, stored, password, dummy)


def needs_rehash(stored: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return False
