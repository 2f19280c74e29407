"""Time-based one-time passwords (RFC 6238) over HOTP (RFC 4226), for the web sign-in.

Stdlib only: HMAC-SHA-1, 6 digits, 30-second steps, the parameters every authenticator app
assumes when the `otpauth://` URI names no others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

DIGITS = 6
STEP = 30  # RFC 6238 4.1: X, the time step in seconds
WINDOW = 1  # RFC 6238 5.2: one step either side allowed for clock drift


def new_secret() -> str:
    """A random 160-bit key (RFC 4226 4 R6 recommends 160 bits), base32 without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    s = secret.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def hotp(secret: str, counter: int) -> str:
    """RFC 4226 5.3: HMAC-SHA-1 of the counter, dynamically truncated, DIGITS decimal digits."""
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**DIGITS).zfill(DIGITS)


def counter_at(now: float | None = None) -> int:
    """RFC 6238 4.2: T = floor((now - T0) / X) with T0 = 0."""
    return int((time.time() if now is None else now) // STEP)


def verify(secret: str, code: str, *, now: float | None = None, after: int = -1) -> int | None:
    """The time step `code` is valid for (within WINDOW steps), or None.

    Steps up to and including `after` are refused: RFC 6238 5.2 says a code must not be
    accepted twice, so the caller keeps the last step used and passes it here.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    base = counter_at(now)
    for step in range(base - WINDOW, base + WINDOW + 1):
        if step > after and hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The `otpauth://totp/` URI authenticator apps read (Google Authenticator's Key Uri
    Format, which the apps all follow)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer, safe='')}"
