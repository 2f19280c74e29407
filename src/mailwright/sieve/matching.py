"""Comparators (RFC 4790 as used by RFC 5228 2.7.3) and match types (RFC 5228 2.7.1,
RFC 5231 relational, draft regex), with the match variables of RFC 5229 3.2.

A match returns the captured strings of the first value/key pair that matched (`${0}` is the
whole value), or None; the caller keeps the previous match variables when it is None.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from .regex import RegexError, compile_posix


class MatchError(Exception):
    """A key that cannot be used at run time (a regex built from variables, say)."""


def _casemap(s: str) -> str:
    # i;ascii-casemap folds ASCII letters only (RFC 4790 9.2)
    return s.translate(_UPPER)


_UPPER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _numeric(s: str) -> int | None:
    """RFC 4790 9.1: the leading digits; None (positive infinity) when there are none."""
    m = re.match(r"[0-9]+", s)
    return int(m.group(0)) if m else None


def _compare(comparator: str, a: str, b: str) -> int:
    """-1, 0, 1 ordering of a and b under the comparator."""
    if comparator == "i;ascii-numeric":
        na, nb = _numeric(a), _numeric(b)
        if na is None and nb is None:
            return 0
        if na is None:
            return 1
        if nb is None:
            return -1
        return (na > nb) - (na < nb)
    if comparator == "i;ascii-casemap":
        a, b = _casemap(a), _casemap(b)
    ea, eb = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    return (ea > eb) - (ea < eb)


def _relation(op: str, cmp: int) -> bool:
    return {
        "gt": cmp > 0, "ge": cmp >= 0, "lt": cmp < 0, "le": cmp <= 0, "eq": cmp == 0, "ne": cmp != 0,
    }[op]


def _seg_match(value: str, at: int, seg: str, fold: bool) -> bool:
    if at + len(seg) > len(value):
        return False
    for k, c in enumerate(seg):
        if c == "\x00":  # '?' placeholder: any one character
            continue
        v = value[at + k]
        if fold:
            if _casemap(v) != _casemap(c):
                return False
        elif v != c:
            return False
    return True


def _parse_wildcards(key: str) -> list[str]:
    """Segments between '*'s; '?' becomes NUL, escapes resolved (RFC 5228 2.7.1)."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        c = key[i]
        if c == "\\" and i + 1 < len(key):
            current.append(key[i + 1])
            i += 2
            continue
        if c == "*":
            segments.append("".join(current))
            current = []
        elif c == "?":
            current.append("\x00")
        else:
            current.append(c)
        i += 1
    segments.append("".join(current))
    return segments


def wildcard_match(value: str, key: str, fold: bool) -> list[str] | None:
    """`:matches` in O(len(value) * len(key)), with the match variables of RFC 5229 3.2.

    Each '*' takes as little as it can (a segment is placed at its first occurrence), which
    is also what Pigeonhole returns; placing every segment as early as possible leaves the
    most room for the rest, so when this fails no other placement succeeds.
    """
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    segments = _parse_wildcards(key)
    captures: list[str] = []

    def qmarks(seg: str, at: int) -> None:
        captures.extend(value[at + k] for k, c in enumerate(seg) if c == "\x00")

    first = segments[0]
    if not _seg_match(value, 0, first, fold):
        return None
    qmarks(first, 0)
    pos = len(first)
    if len(segments) == 1:
        return [value, *captures] if pos == len(value) else None
    for seg in segments[1:-1]:
        at = pos
        while at + len(seg) <= len(value) and not _seg_match(value, at, seg, fold):
            at += 1
        if at + len(seg) > len(value):
            return None
        captures.append(value[pos:at])  # the '*' before this segment
        qmarks(seg, at)
        pos = at + len(seg)
    last = segments[-1]
    end = len(value) - len(last)
    if end < pos or not _seg_match(value, end, last, fold):
        return None
    captures.append(value[pos:end])
    qmarks(last, end)
    return [value, *captures]


def match_values(
    values: Sequence[str],
    keys: Sequence[str],
    *,
    match_type: str,
    comparator: str,
    relation: str = "eq",
    deadline: float | None = None,
) -> list[str] | None:
    """True-ish (the match variables) when any value matches any key."""
    if match_type == "count":
        count = str(len(values))
        for key in keys:
            if _relation(relation, _compare(comparator, count, key)):
                return []
        return None
    ignore_case = comparator == "i;ascii-casemap"
    for value in values:
        for key in keys:
            if match_type == "is":
                if _compare(comparator, value, key) == 0:
                    return []
            elif match_type == "contains":
                if ignore_case:
                    if _casemap(key) in _casemap(value):
                        return []
                elif key in value:
                    return []
            elif match_type == "matches":
                found = wildcard_match(value, key, ignore_case)
                if found is not None:
                    return found
            elif match_type == "regex":
                try:
                    pat = compile_posix(key, ignore_case)
                except RegexError as exc:
                    raise MatchError(f"invalid regular expression {key!r}: {exc}") from None
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
                try:
                    m = pat.search(value, timeout=remaining)
                except TimeoutError:
                    raise MatchError("regular expression ran too long") from None
                if m is not None:
                    return [m.group(0), *(g or "" for g in m.groups())]
            elif match_type == "value" and _relation(relation, _compare(comparator, value, key)):
                return []
    return None
