"""SRS, the Sender Rewriting Scheme: forwarding that keeps SPF passing, bounces that come back.

When the MX forwards a message to another domain (an alias with a remote target), the next hop
checks SPF (RFC 7208) of the envelope sender against *our* address, and the original sender's
domain never listed us. So the reverse-path is rewritten into an address at the forwarding
domain that encodes the original one, as libsrs2 and postsrsd do::

    SRS0=HHHH=TT=orig-domain=orig-local@forwarder     (first forwarder)
    SRS1=HHHH=first-forwarder==HHHH=TT=...@forwarder  (forwarding an SRS0 address again)

``HHHH`` is a keyed hash (HMAC-SHA1 under the server's secret, base64, first four characters)
that makes the address unforgeable, so the MX cannot be used as an open relay by bouncing to
made-up SRS addresses; ``TT`` is the day number modulo 1024 in two base32 characters, so old
addresses expire. A bounce (or any mail) to a valid SRS address at one of our domains is relayed
to the address it decodes to; a forged or expired one is refused.

This module is pure: bytes of secret and strings in, strings out. The secret comes from
``[srs] secret`` or is generated once into the data directory with mode 0600 (`load_secret`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from mailwright.config import SRSConfig

__all__ = ["SRS", "SRSError", "is_srs", "load_secret", "srs_from_config"]

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_DAY = 86400
_TIME_SLOTS = 1024  # two base32 characters of day number
HASH_LENGTH = 4
SECRET_FILE = "srs.secret"


class SRSError(ValueError):
    """The address is not a valid SRS address of ours (forged, expired, or malformed)."""


def is_srs(local_part: str) -> bool:
    """Whether a local part claims to be an SRS address (and must be checked, not delivered)."""
    head = local_part[:5].upper()
    return len(local_part) > 5 and head[:4] in ("SRS0", "SRS1") and head[4] in "=+-"


def load_secret(configured: str, data_dir: Path) -> bytes:
    """The configured secret, else the one kept in ``data_dir/srs.secret`` (made on first use).

    The file is created with O_EXCL and mode 0600 so two processes starting together agree on
    one secret and no other local user can read it (whoever has it can forge bounces).
    """
    if configured:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_bytes().strip()
        if not value:
            raise SRSError(f"{path} is empty") from None
        return value
    try:
        value = base64.b64encode(secrets.token_bytes(32))
        os.write(fd, value + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return value


def _timestamp(now: float) -> str:
    day = int(now // _DAY) % _TIME_SLOTS
    return _BASE32[day >> 5] + _BASE32[day & 31]


def _day_of(stamp: str) -> int:
    stamp = stamp.upper()
    if len(stamp) != 2 or any(c not in _BASE32 for c in stamp):
        raise SRSError("bad SRS timestamp")
    return (_BASE32.index(stamp[0]) << 5) | _BASE32.index(stamp[1])


@dataclass(frozen=True, slots=True)
class SRS:
    """Forward and reverse rewriting under one secret (and older secrets still accepted)."""

    secret: bytes
    max_age_days: int = 21
    old_secrets: tuple[bytes, ...] = ()

    def _hash(self, *parts: str, secret: bytes | None = None) -> str:
        # Lower-cased: relays may change the case of local parts, the hash must survive it.
        data = "".join(parts).lower().encode("utf-8")
        digest = hmac.new(secret or self.secret, data, hashlib.sha1).digest()
        return base64.b64encode(digest).decode("ascii")[:HASH_LENGTH]

    def _hash_ok(self, given: str, *parts: str) -> bool:
        for secret in (self.secret, *self.old_secrets):
            # Case-insensitive: base64 is case-sensitive but some hops fold case; the loss of
            # strength (about 4 bits per character) is what libsrs2 also accepts.
            if hmac.compare_digest(self._hash(*parts, secret=secret).lower(), given.lower()):
                return True
        return False

    def forward(self, sender: str, alias_domain: str, *, now: float | None = None) -> str:
        """The reverse-path to use when forwarding mail from `sender` out of `alias_domain`."""
        local, at, domain = sender.rpartition("@")
        if not at or not local or not domain:
            raise SRSError(f"cannot rewrite {sender!r}")
        if domain.lower() == alias_domain.lower():
            return sender  # already ours: SPF passes for it without rewriting
        if is_srs(local) and local[:4].upper() == "SRS0":
            # Forwarding an SRS0 address again: keep its opaque part, note who made it (SRS1).
            opaque = local[4:]  # the separator and everything after it
            h = self._hash(domain, opaque)
            return f"SRS1={h}={domain}={opaque}@{alias_domain}"
        if is_srs(local) and local[:4].upper() == "SRS1":
            # SRS1 stays SRS1: the first forwarder's host and opaque part are kept, rehashed.
            parts = local[5:].split("=", 2)
            if len(parts) < 3:
                raise SRSError(f"malformed SRS1 address {sender!r}")
            _, host, opaque = parts
            h = self._hash(host, opaque)
            return f"SRS1={h}={host}={opaque}@{alias_domain}"
        stamp = _timestamp(time.time() if now is None else now)
        h = self._hash(stamp, domain, local)
        return f"SRS0={h}={stamp}={domain}={local}@{alias_domain}"

    def reverse(self, address: str, *, now: float | None = None) -> str:
        """The address an SRS address of ours stands for; `SRSError` when forged or expired.

        SRS0 decodes to the original sender; SRS1 decodes to the SRS0 address at the first
        forwarder (which checks its own hash and timestamp).
        """
        local, at, _ = address.rpartition("@")
        if not at or not is_srs(local):
            raise SRSError("not an SRS address")
        kind = local[:4].upper()
        body = local[5:]
        if kind == "SRS1":
            parts = body.split("=", 2)
            if len(parts) != 3 or not parts[1] or not parts[2]:
                raise SRSError("malformed SRS1 address")
            h, host, opaque = parts
            if not self._hash_ok(h, host, opaque):
                raise SRSError("SRS1 hash does not match")
            return f"SRS0{opaque}@{host}"
        parts = body.split("=", 3)
        if len(parts) != 4 or not all(parts):
            raise SRSError("malformed SRS0 address")
        h, stamp, domain, orig_local = parts
        if not self._hash_ok(h, stamp, domain, orig_local):
            raise SRSError("SRS0 hash does not match")
        today = int((time.time() if now is None else now) // _DAY) % _TIME_SLOTS
        age = (today - _day_of(stamp)) % _TIME_SLOTS
        if age > self.max_age_days:
            raise SRSError("SRS0 address expired")
        return f"{orig_local}@{domain}"


def srs_from_config(cfg: SRSConfig, data_dir: Path) -> SRS | None:
    """The server's SRS under `[srs]` (None when switched off), shared by every forwarding path:
    alias expansion on SMTP and Sieve redirect. Raises SRSError or OSError when no secret is
    usable."""
    if not cfg.enabled:
        return None
    secret = load_secret(cfg.secret, data_dir)
    return SRS(
        secret,
        max_age_days=int(cfg.max_age // 86400),
        old_secrets=tuple(s.encode("utf-8") for s in cfg.old_secrets),
    )
