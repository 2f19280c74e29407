"""Password hashing with argon2id (RFC 9106); never plaintext, never a fast hash.

Hashing is CPU work of tens of milliseconds, so the async helpers run it in a small bounded
pool: a flood of logins queues up there instead of starving the event loop.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" profile
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")

# A real hash of a random password, verified when the account does not exist, so that timing
# does not tell which login names exist.
_DUMMY = _hasher.hash("mailwright-no-such-account")


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password_async(stored: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, verify_password, stored, password)


def needs_rehash(stored: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return False
