"""Comparators (RFC 4790 as used by RFC 5228 2.7.3) and match types (RFC 5228 2.7.1,
RFC 5231 relational, draft regex), with the match variables of RFC 5229 3.2.

A match returns the captured strings of the first value/key pair that matched (`${0}` is the
whole value), or None; the caller keeps the previous match variables when it is None.
"""

from __future__ import annotations

import re
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


def _wildcard_regex(key: str, ignore_case: bool) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(key):
        c = key[i]
        if c == "\\" and i + 1 < len(key):
            out.append(re.escape(key[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append("(.*?)")
        elif c == "?":
            out.append("(.)")
        else:
            out.append(re.escape(c))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if ignore_case else 0)
    return _cached(("".join(out), flags))


_CACHE: dict[tuple[str, int], re.Pattern[str]] = {}


def _cached(key: tuple[str, int]) -> re.Pattern[str]:
    pat = _CACHE.get(key)
    if pat is None:
        if len(_CACHE) > 1024:
            _CACHE.clear()
        pat = _CACHE[key] = re.compile(key[0], key[1])
    return pat


def match_values(
    values: Sequence[str],
    keys: Sequence[str],
    *,
    match_type: str,
    comparator: str,
    relation: str = "eq",
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
                m = _wildcard_regex(key, ignore_case).fullmatch(value)
                if m is not None:
                    return [value, *m.groups()]
            elif match_type == "regex":
                try:
                    pat = compile_posix(key, ignore_case)
                except RegexError as exc:
                    raise MatchError(f"invalid regular expression {key!r}: {exc}") from None
                m = pat.search(value)
                if m is not None:
                    return [m.group(0), *(g or "" for g in m.groups())]
            elif match_type == "value" and _relation(relation, _compare(comparator, value, key)):
                return []
    return None
