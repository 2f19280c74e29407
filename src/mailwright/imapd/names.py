"""Mailbox names: validation, INBOX rules, LIST patterns (RFC 9051 5.1, 6.3.9).

Names are kept in UTF-8 with ``/`` as the hierarchy delimiter.  Validation makes sure a client
can only ever name a mailbox inside its own account's tree: there are no absolute paths,
no empty or dot components, no wildcards or control characters.
"""

from __future__ import annotations

import re
from functools import lru_cache

from mailwright.proto.imap import mutf7

DELIMITER = "/"
MAX_NAME = 512
MAX_COMPONENT = 255
MAX_DEPTH = 16


class NameError_(ValueError):  # noqa: N801 - "NameError" is a builtin
    """Invalid mailbox name; the message is safe to show to the client."""


def normalize_inbox(name: str) -> str:
    """RFC 9051 5.1: INBOX is case-insensitive, also as the first level of a hierarchy."""
    head, sep, rest = name.partition(DELIMITER)
    if head.upper() == "INBOX":
        return "INBOX" + sep + rest
    return name


def from_client(name: str, *, utf8: bool) -> str:
    """Client name to stored name: mUTF-7 decoded for IMAP4rev1, INBOX normalised, checked."""
    if not utf8:
        try:
            name = mutf7.decode(name)
        except mutf7.MUTF7Error as exc:
            raise NameError_(f"invalid mailbox name: {exc}") from None
    return validate(normalize_inbox(name))


def to_client(name: str, *, utf8: bool) -> str:
    return name if utf8 else mutf7.encode(name)


def validate(name: str) -> str:
    """Return the name (trailing delimiter removed, RFC 9051 6.3.4) or raise NameError_."""
    if name.endswith(DELIMITER):
        name = name.rstrip(DELIMITER)
    if not name:
        raise NameError_("empty mailbox name")
    if len(name) > MAX_NAME:
        raise NameError_("mailbox name too long")
    if name.startswith(DELIMITER):
        raise NameError_("mailbox name must not start with /")
    parts = name.split(DELIMITER)
    if len(parts) > MAX_DEPTH:
        raise NameError_("mailbox hierarchy too deep")
    for part in parts:
        if not part:
            raise NameError_("empty level in mailbox name")
        if part in (".", ".."):
            raise NameError_("mailbox name level may not be . or ..")
        if len(part) > MAX_COMPONENT:
            raise NameError_("mailbox name level too long")
        for ch in part:
            if ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "*%" or 0x80 <= ord(ch) < 0xA0:
                raise NameError_("mailbox name contains a forbidden character")
    return name


def parents(name: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def list_pattern(reference: str, pattern: str) -> str:
    """Join LIST reference and pattern (RFC 9051 6.3.9): the pattern is interpreted relative
    to the reference unless it starts with the delimiter (which we do not allow: no absolute
    names), in which case the reference is ignored."""
    if pattern.startswith(DELIMITER):
        return pattern.lstrip(DELIMITER)
    if reference and not reference.endswith(DELIMITER) and pattern:
        return reference + DELIMITER + pattern
    return reference + pattern


def matcher(reference: str, pattern: str, *, utf8: bool) -> re.Pattern[str] | None:
    """Regex matching stored names for a LIST pattern, or None if it can match nothing."""
    full = list_pattern(reference, pattern)
    if not utf8:
        try:
            full = mutf7.decode(full)
        except mutf7.MUTF7Error:
            return None
    # INBOX is case-insensitive (RFC 9051 5.1): normalise the pattern's first level too.
    head, sep, rest = full.partition(DELIMITER)
    if head.upper() == "INBOX":
        full = "INBOX" + sep + rest
    return _compile(full)


def matches(rx: re.Pattern[str], name: str) -> bool:
    return rx.match(name) is not None
