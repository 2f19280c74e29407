"""Look up the records a domain should publish and say which are missing or wrong.

Each expected record (`mailauth.records.DNSRecord`: name, type, rdata in zone syntax) is looked
up with its own type and compared as DNS data, not as text: names case-insensitively, TXT by
the concatenation of its strings (RFC 7208 3.3, RFC 6376 3.6.2.2: a resolver may split them
differently). A TXT name may hold unrelated records (site verification, other services): only
the one of the same kind (`v=spf1`, `v=DKIM1`...) is compared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from mailwright.dns.resolver import DNSError, DNSPermanentError, Resolver

OK, MISSING, WRONG, UNKNOWN = "ok", "missing", "wrong", "unknown"


@dataclass(frozen=True, slots=True)
class RecordCheck:
    name: str
    rdtype: str
    expected: str
    status: str  # OK, MISSING, WRONG, or UNKNOWN (the lookup failed for now)
    found: tuple[str, ...] = ()
    detail: str = ""


def _txt(rdata: Any) -> bytes:
    return b"".join(rdata.strings)


def _kind(text: bytes) -> bytes:
    """`v=spf1 a -all` -> `v=spf1`; `v=DKIM1; k=rsa...` -> `v=dkim1`."""
    return text.split(b";", 1)[0].split(b" ", 1)[0].strip().lower()


def compare(rdtype: str, expected: str, found: list[Any]) -> tuple[str, tuple[str, ...]]:
    """The status of one expected record among the records found at its name."""
    want = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), expected)
    shown = tuple(r.to_text() for r in found)
    if rdtype == "TXT":
        text = _txt(want)
        if any(_txt(r) == text for r in found):
            return OK, shown
        same_kind = [r for r in found if _kind(_txt(r)) == _kind(text)]
        return (WRONG, tuple(r.to_text() for r in same_kind)) if same_kind else (MISSING, shown)
    if any(r == want for r in found):
        return OK, shown
    return (WRONG if found else MISSING), shown


async def check_one(resolver: Resolver, name: str, rdtype: str, expected: str) -> RecordCheck:
    try:
        found, _secure = await resolver.authenticated(name, rdtype)
    except DNSPermanentError as exc:
        return RecordCheck(name, rdtype, expected, MISSING, detail=exc.reason)
    except DNSError as exc:
        return RecordCheck(name, rdtype, expected, UNKNOWN, detail=exc.reason)
    status, shown = compare(rdtype, expected, found)
    return RecordCheck(name, rdtype, expected, status, shown)


async def check_records(resolver: Resolver, records: list[Any]) -> list[RecordCheck]:
    """Every record of `records` (objects with name, rdtype, rdata) checked, in order."""
    return list(await asyncio.gather(*(check_one(resolver, r.name, r.rdtype, r.rdata)
                                       for r in records)))
