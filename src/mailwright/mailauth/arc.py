"""ARC, RFC 8617: validating the Authenticated Received Chain of forwarded mail.

dkimpy validates the chain (ARC-Seal over the sets, ARC-Message-Signature over the message); we
prefetch the key records on our resolver as for DKIM, and report the chain validation status
(RFC 8617 4.4). A passing chain from a sealer the operator trusts can override a DMARC failure
(RFC 8617 7.2, RFC 7489 "local policy override"), which is how mailing lists keep working for
p=reject senders.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import dkim as dkimpy
from dkim.util import InvalidTagValueList, parse_tag_value

from .dkim import KeyAnswer, _dkimpy_log, _key_name, make_dnsfunc, prefetch_keys
from .dnsquery import AuthDNS
from .headers import split_message

__all__ = ["ARCOutcome", "verify_arc"]

MAX_INSTANCES = 50  # RFC 8617 4.2.1: i= is 1..50
MAX_KEYS = 24  # distinct (selector, domain) pairs we look up for one chain
_ARC_FIELDS = ("arc-seal", "arc-message-signature", "arc-authentication-results")


@dataclass(frozen=True, slots=True)
class ARCOutcome:
    """Chain validation status: none, pass, fail (or temperror when key lookups failed)."""

    result: str
    instances: int = 0
    sealer: str = ""  # d= of the newest ARC-Seal (who vouches for the chain)
    reason: str = ""
    #: RFC 8617 5.2 / 6: the oldest instance whose AMS still validates, 0 when all do.
    oldest_pass: int | None = None


def _chain_tags(message: bytes) -> tuple[list[dict[bytes, bytes]], int, str]:
    fields, _ = split_message(message)
    tags: list[dict[bytes, bytes]] = []
    newest = 0
    sealer = ""
    for field in fields:
        if field.name not in _ARC_FIELDS:
            continue
        value = field.value
        m = re.search(rb"(?:^|;)\s*i\s*=\s*(\d{1,6})", value)
        if m is not None:
            newest = max(newest, int(m.group(1)))
        if field.name == "arc-authentication-results":
            continue
        try:
            parsed: dict[bytes, bytes] = parse_tag_value(value)
        except (InvalidTagValueList, ValueError, TypeError, IndexError):
            continue
        tags.append(parsed)
        if field.name == "arc-seal" and m is not None and int(m.group(1)) >= newest:
            sealer = parsed.get(b"d", b"").decode("ascii", "replace").lower()
    return tags, newest, sealer


@dataclass(frozen=True, slots=True)
class _Checked:
    cv: Any
    reason: str
    oldest_pass: int | None
    sealer: str  # as dkimpy validated it, never from our own parse
    instances: int


def _verify(message: bytes, keys: dict[str, KeyAnswer]) -> _Checked:
    arc = dkimpy.ARC(message, logger=_dkimpy_log)
    cv, results, reason = arc.verify(dnsfunc=make_dnsfunc(keys))
    oldest: int | None = None
    # results run from the newest instance down; the chain of valid AMS ends at the first bad one.
    for item in results:
        if not item.get("ams-valid"):
            break
        oldest = int(item["instance"])
    if oldest is not None and all(r.get("ams-valid") for r in results):
        oldest = 0
    sealer, instances = "", 0
    if results:
        newest = results[0]
        raw = newest.get("as-domain", b"")
        sealer = raw.decode("ascii", "replace").lower() if isinstance(raw, bytes) else ""
        instances = int(newest.get("instance", 0))
    return _Checked(cv, str(reason), oldest, sealer, instances)


async def verify_arc(dns: AuthDNS, message: bytes) -> ARCOutcome:
    """Validate the ARC chain of a message; never raises."""
    tags, newest, sealer = _chain_tags(message)
    if newest == 0:
        return ARCOutcome("none", reason="no ARC sets")
    if newest > MAX_INSTANCES:
        return ARCOutcome("fail", newest, sealer, f"instance {newest} exceeds {MAX_INSTANCES}")
    names = [
        n for t in tags if (n := _key_name(t.get(b"s", b""), t.get(b"d", b""))) is not None
    ]
    if len(set(names)) > MAX_KEYS:
        # An honest chain of a few hops names a few keys; do not let a message fan out DNS.
        return ARCOutcome("fail", newest, sealer, f"more than {MAX_KEYS} ARC keys")
    keys = await prefetch_keys(dns, names)
    try:
        checked = await asyncio.to_thread(_verify, message, keys)
    except Exception as exc:  # dkimpy on hostile input: a failed chain, not a crash
        return ARCOutcome("fail", newest, sealer, f"unverifiable chain: {type(exc).__name__}")
    if checked.cv == dkimpy.CV_Pass:
        return ARCOutcome(
            "pass", checked.instances, checked.sealer, checked.reason, checked.oldest_pass
        )
    if any(k.temperror for k in keys.values()):
        return ARCOutcome("temperror", newest, sealer, "ARC key lookup failed")
    if checked.cv == dkimpy.CV_None:
        return ARCOutcome("none", newest, sealer, checked.reason)
    return ARCOutcome("fail", newest, sealer, checked.reason)
