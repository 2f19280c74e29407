"""IMAP response encoding (RFC 9051 7): status responses, data, continuation requests.

Session code builds untagged data with the value helpers here (``astring``, ``string``,
``nstring``, ``flag_list``...), which pick the right wire form: an atom when the grammar
allows one, a quoted string when the characters allow it, a literal otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# RFC 9051 9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
# resp-specials
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
_QUOTED_SPECIALS = frozenset(b'"\\')
#: Longest value we send as a quoted string; longer ones go as literals (easier on clients).
_MAX_QUOTED = 1000


def is_atom(value: bytes) -> bool:
    """Whether *value* can be sent as an IMAP atom."""
    if not value:
        return False
    return all(0x20 < c < 0x7F and c not in _ATOM_SPECIALS for c in value)


def is_astring_atom(value: bytes) -> bool:
    """Whether *value* can be sent bare where the grammar says astring (``]`` allowed)."""
    if not value:
        return False
    return all(0x20 < c < 0x7F and (c not in _ATOM_SPECIALS or c == 0x5D) for c in value)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def can_quote(value: bytes, *, utf8: bool = True) -> bool:
    """RFC 9051 9 quoted: TEXT-CHARs (no CR, LF, NUL), 8-bit only as UTF-8 for rev2/UTF8."""
    if len(value) > _MAX_QUOTED:
        return False
    if b"\r" in value or b"\n" in value or b"\x00" in value:
        return False
    if any(c >= 0x80 for c in value):
        if not utf8:
            return False
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def quoted(value: str | bytes) -> bytes:
    """A quoted string; the caller made sure :func:`can_quote` holds."""
    raw = _as_bytes(value)
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(value: str | bytes, *, binary: bool = False) -> bytes:
    """A literal ``{n}`` CRLF data (``~{n}`` for literal8, RFC 3516)."""
    raw = _as_bytes(value)
    prefix = b"~{" if binary else b"{"
    return prefix + str(len(raw)).encode() + b"}\r\n" + raw


def string(value: str | bytes, *, utf8: bool = True) -> bytes:
    """A string: quoted if possible, otherwise a literal."""
    raw = _as_bytes(value)
    return quoted(raw) if can_quote(raw, utf8=utf8) else literal(raw)


def nstring(value: str | bytes | None, *, utf8: bool = True) -> bytes:
    """NIL or a string."""
    return b"NIL" if value is None else string(value, utf8=utf8)


def astring(value: str | bytes, *, utf8: bool = True) -> bytes:
    """An atom if possible (but never the word NIL, which would read as nil), else a string."""
    raw = _as_bytes(value)
    if is_astring_atom(raw) and raw.upper() != b"NIL":
        return raw
    return string(raw, utf8=utf8)


def number(value: int) -> bytes:
    return str(value).encode()


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Label)``: flags are atoms by construction (the parser only accepts atoms)."""
    return b"(" + b" ".join(f.encode("utf-8") for f in flags) + b")"


def paren(items: Iterable[bytes]) -> bytes:
    return b"(" + b" ".join(items) + b")"


def _clean_text(text: str) -> bytes:
    # Human-readable text must stay on one line (RFC 9051 9 "text": no CR/LF).
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class Tagged:
    """``tag OK|NO|BAD [code] text``."""

    tag: str
    status: str
    text: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Untagged:
    """``* data``; ``data`` is the already-encoded remainder of the line (may hold literals)."""

    data: bytes

    @classmethod
    def status(cls, status: str, text: str, code: str | None = None) -> Untagged:
        """``* OK|NO|BAD|BYE|PREAUTH [code] text``."""
        head = status.encode() + b" "
        if code:
            head += b"[" + code.encode("utf-8") + b"] "
        return cls(head + _clean_text(text))


@dataclass(frozen=True, slots=True)
class Continuation:
    """``+ text`` or ``+ base64`` (SASL challenges, RFC 9051 7.6)."""

    text: str = ""
    data: bytes | None = None


Response = Tagged | Untagged | Continuation


def encode(resp: Response) -> bytes:
    """Encode one response, with its CRLF."""
    if isinstance(resp, Tagged):
        out = resp.tag.encode("utf-8") + b" " + resp.status.encode() + b" "
        if resp.code:
            out += b"[" + resp.code.encode("utf-8") + b"] "
        return out + _clean_text(resp.text or resp.status) + b"\r\n"
    if isinstance(resp, Untagged):
        return b"* " + resp.data + b"\r\n"
    if resp.data is not None:
        return b"+ " + resp.data + b"\r\n"
    return b"+ " + _clean_text(resp.text) + b"\r\n"


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    return encode(Tagged(tag, status, text, code))


def untagged(data: bytes) -> bytes:
    return b"* " + data + b"\r\n"
