"""DNS block lists and allow lists for the client address (RFC 5782).

A list answers an A query for the reversed address under its zone: `2.0.0.127.zen.example` for
127.0.0.2 (RFC 5782 2.1), nibbles for IPv6 (2.4). An answer in 127.0.0.0/8 means "listed" and
its last octets say why (2.3, each list documents its own codes); NXDOMAIN means "not listed".
Anything else (a timeout, SERVFAIL, an answer outside 127/8, such as the 127.255.255.x "you are
querying through a public resolver" refusals some lists send) is no result: a list that cannot
answer never refuses mail.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .settings import BlockList

__all__ = ["Listing", "lookup", "lookup_all", "query_name"]

log = logging.getLogger("mailwright.spam")


@dataclass(frozen=True, slots=True)
class Listing:
    """One list's verdict on one address."""

    zone: str
    answer: str  # the A record, e.g. "127.0.0.2"
    reason: str
    allow: bool
    score: float


def query_name(address: str, zone: str) -> str | None:
    """The name to look up for `address` under `zone` (RFC 5782 2.1, 2.4); None for a bad one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return ".".join(reversed(str(ip).split("."))) + "." + zone
    nibbles = ip.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + "." + zone


async def lookup(resolver: Any, address: str, zone: BlockList, timeout: float = 5.0) -> Listing | None:
    name = query_name(address, zone.zone)
    if name is None or resolver is None:
        return None
    try:
        answers = await asyncio.wait_for(resolver.a(name), timeout)
    except Exception as exc:  # noqa: BLE001 - not listed, NXDOMAIN, SERVFAIL, timeout alike
        if type(exc).__name__ not in ("DNSNameNotFound", "DNSNoData"):
            log.info("dns list %s did not answer for %s: %s", zone.zone, address, exc)
        return None
    for answer in answers:
        text = str(answer)
        # RFC 5782 2.3: only 127.0.0.0/8 means "listed"; 127.255.255.0/24 are error codes of
        # several lists (query refused, typo'd zone), never a listing.
        if not text.startswith("127.") or text.startswith("127.255.255."):
            log.info("dns list %s answered %s for %s: ignored", zone.zone, text, address)
            continue
        return Listing(zone.zone, text, zone.reason(text), zone.allow, zone.score)
    return None


async def lookup_all(
    resolver: Any, address: str, zones: Sequence[BlockList], timeout: float = 5.0
) -> list[Listing]:
    """Every list's listing of `address`, queried in parallel."""
    if not zones:
        return []
    found = await asyncio.gather(*(lookup(resolver, address, z, timeout) for z in zones))
    return [f for f in found if f is not None]
