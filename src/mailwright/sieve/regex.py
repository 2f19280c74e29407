"""POSIX extended regular expressions for the `:regex` match type (draft-ietf-sieve-regex).

Pigeonhole compiles keys with regcomp(REG_EXTENDED); the `regex` package accepts nearly the
same language, so keys are translated rather than reimplemented: POSIX bracket classes
(`[[:alpha:]]`) become their ASCII sets, and `.` matches a line end as regcomp's does without
REG_NEWLINE. `regex` rather than `re` because a search takes a timeout: a key written to
backtrack forever is stopped at the script's deadline (`matching.search`). Compiled keys are
cached, and a key is bounded in length.
"""

from __future__ import annotations

import functools
from typing import Any

import regex

MAX_PATTERN = 1024

_CLASSES = {
    "alpha": "A-Za-z", "digit": "0-9", "alnum": "A-Za-z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\r\n\v\f", "blank": r" \t", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9A-Fa-f",
    "cntrl": r"\x00-\x1f\x7f", "print": r" -~", "graph": r"!-~", "word": "A-Za-z0-9_",
}


class RegexError(ValueError):
    pass


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1
            part = ["["]
            if j < n and pattern[j] == "^":
                part.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                part.append(r"\]")
                j += 1
            while j < n and pattern[j] != "]":
                if pattern.startswith("[:", j):
                    end = pattern.find(":]", j + 2)
                    if end < 0:
                        raise RegexError("unterminated character class")
                    name = pattern[j + 2 : end]
                    if name not in _CLASSES:
                        raise RegexError(f"unknown character class [:{name}:]")
                    part.append(_CLASSES[name])
                    j = end + 2
                    continue
                ch = pattern[j]
                part.append("\\\\" if ch == "\\" else "\\[" if ch == "[" else ch)
                j += 1
            if j >= n:
                raise RegexError("unterminated bracket expression")
            part.append("]")
            out.append("".join(part))
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def compile_posix(pattern: str, ignore_case: bool) -> Any:
    """The compiled key (a `regex.Pattern`); raises RegexError for an invalid one."""
    if len(pattern) > MAX_PATTERN:
        raise RegexError("regular expression too long")
    flags = regex.DOTALL | regex.V0 | (regex.IGNORECASE | regex.ASCII if ignore_case else 0)
    try:
        return regex.compile(_translate(pattern), flags)
    except (regex.error, ValueError, OverflowError) as exc:
        raise RegexError(str(exc)) from None
