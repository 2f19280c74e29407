"""Small helpers shared by the IMAP command modules."""

from __future__ import annotations

from collections.abc import Iterable


def ordered_flags(flags: Iterable[str]) -> list[str]:
    """System flags first, then keywords, each case-insensitively sorted (as imapd.fetch)."""
    return sorted(flags, key=lambda f: (not f.startswith("\\"), f.lower()))


def uid_set_string(numbers: Iterable[int]) -> str:
    """Compact sequence set for sorted or unsorted numbers: ``1:3,7,9:10`` (RFC 9051 9)."""
    return ordered_set_string(sorted(set(numbers)))


def ordered_set_string(numbers: list[int]) -> str:
    """Sequence set keeping the given order (COPYUID lists source and destination UIDs in
    corresponding order, RFC 4315 3)."""
    if not numbers:
        return ""
    out: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)
