"""Authentication-Results, RFC 8601: building ours and removing forged ones.

RFC 8601 section 5: a border MTA MUST remove (or rename) any Authentication-Results field that
claims its own authserv-id before adding its own, or a sender could hand the delivery agent a
ready-made "dkim=pass". We remove them; fields of other authserv-ids are left alone (they are
only informative, and ARC seals may cover them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .headers import HeaderField, split_message

__all__ = [
    "ResultInfo",
    "authserv_id_of",
    "build_header",
    "remove_own_results",
]

# RFC 2045 5.1 token: any CHAR except SPACE, CTLs and tspecials.
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$")
# RFC 6532 3.2: atext also takes UTF-8 (any non-ASCII character) in internationalized headers.
_DOT_ATOM_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
    r"(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+)*$"
)
_DOMAIN_RE = re.compile(
    r"^[A-Za-z0-9_\u0080-\U0010ffff](?:[A-Za-z0-9_\-.\u0080-\U0010ffff]*"
    r"[A-Za-z0-9\u0080-\U0010ffff])?$"
)


@dataclass(frozen=True, slots=True)
class ResultInfo:
    """One resinfo (RFC 8601 2.2): ``method=result (comment) ptype.property=value ...``."""

    method: str
    result: str
    comment: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    reason: str | None = None  # reason= (RFC 8601 2.2), quoted as needed


def _pvalue(value: str) -> str:
    """RFC 8601 2.2 pvalue: a token, an addr-spec/domain as is, else a quoted-string."""
    if _TOKEN_RE.match(value):
        return value
    local, at, domain = value.rpartition("@")
    if at and _DOMAIN_RE.match(domain) and (not local or _DOT_ATOM_RE.match(local)):
        return value
    return _quoted(value, utf8=True)


def _printable(ch: str, utf8: bool) -> bool:
    o = ord(ch)
    if o < 0x80:
        return 0x20 <= o < 0x7F
    return utf8 and o >= 0xA0 and ch not in "\u2028\u2029"


def _quoted(value: str, *, utf8: bool = False) -> str:
    """A quoted-string.  Property values keep UTF-8 (RFC 8601 2.2 with RFC 6532 3.2: an
    SMTPUTF8 sender is reported as it is, not as ``?``); they only ever come from a message or
    transaction that is itself internationalized.  Reasons and comments stay ASCII."""
    clean = "".join(ch if _printable(ch, utf8) else "?" for ch in value)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    clean = "".join(ch if _printable(ch, False) else "?" for ch in text)[:200]
    return "(" + re.sub(r"([()\\])", r"\\\1", clean) + ")"


def _format(info: ResultInfo) -> str:
    parts = [f"{info.method}={info.result}"]
    if info.comment:
        parts.append(_comment(info.comment))
    if info.reason:
        parts.append(f"reason={_quoted(info.reason)}")
    for name, value in info.properties:
        parts.append(f"{name}={_pvalue(value)}")
    return " ".join(parts)


def build_header(authserv_id: str, results: Sequence[ResultInfo]) -> bytes:
    """The complete header field, CRLF-terminated, one resinfo per folded line.

    With no results, RFC 8601 2.2 says ``none`` stands alone.
    """
    lines = [f"Authentication-Results: {authserv_id};"]
    if not results:
        lines[0] += " none"
    else:
        formatted = [_format(info) for info in results]
        for i, text in enumerate(formatted):
            lines.append("\t" + text + (";" if i < len(formatted) - 1 else ""))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _skip_cfws(text: str, pos: int) -> int:
    depth = 0
    while pos < len(text):
        ch = text[pos]
        if depth:
            if ch == "\\":
                pos += 1
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
        elif ch == "(":
            depth = 1
        elif ch not in " \t\r\n":
            break
        pos += 1
    return pos


def authserv_id_of(value: bytes) -> str | None:
    """The authserv-id of an Authentication-Results field body (RFC 8601 2.2), lower case."""
    text = value.decode("utf-8", errors="replace")
    pos = _skip_cfws(text, 0)
    if pos >= len(text):
        return None
    if text[pos] == '"':
        out: list[str] = []
        pos += 1
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\":
                pos += 1
            if pos < len(text):
                out.append(text[pos])
            pos += 1
        ident = "".join(out)
    else:
        m = re.match(r"[^\s;()]+", text[pos:])
        ident = m.group(0) if m else ""
    ident = ident.strip().rstrip(".").lower()
    return ident or None


def _claims(field: HeaderField, ours: str) -> bool:
    return field.name == "authentication-results" and authserv_id_of(field.value) == ours


def remove_own_results(message: bytes, authserv_id: str) -> tuple[bytes, int]:
    """Drop every Authentication-Results claiming ``authserv_id``; returns (message, count)."""
    ours = authserv_id.strip().rstrip(".").lower()
    fields, rest = split_message(message)
    kept = [f for f in fields if not _claims(f, ours)]
    removed = len(fields) - len(kept)
    if not removed:
        return message, 0
    return b"".join(f.raw for f in kept) + rest, removed
