"""Server responses (RFC 5804 4): `OK`/`NO`/`BYE` with an optional response code and text."""

from __future__ import annotations

from dataclasses import dataclass

_MAX_QUOTED = 1024


def quoted(text: str) -> bytes:
    """A quoted string (RFC 5804 4: `"` and `\\` escaped; no CR or LF inside)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + escaped.encode("utf-8") + b'"'


def literal(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return b"{" + str(len(data)).encode() + b"}\r\n" + data


def string(text: str) -> bytes:
    """A quoted string when it can be one, else a literal."""
    if "\r" in text or "\n" in text or "\x00" in text or len(text) > _MAX_QUOTED:
        return literal(text)
    return quoted(text)


@dataclass(frozen=True, slots=True)
class Reply:
    status: str  # OK, NO, BYE
    code: str = ""  # e.g. "NONEXISTENT", "QUOTA/MAXSIZE", "SASL \"...\""
    text: str = ""

    def encode(self) -> bytes:
        out = self.status.encode()
        if self.code:
            out += b" (" + self.code.encode("utf-8") + b")"
        if self.text:
            out += b" " + string(self.text)
        return out + b"\r\n"


def ok(text: str = "", code: str = "") -> Reply:
    return Reply("OK", code, text)


def no(text: str = "", code: str = "") -> Reply:
    return Reply("NO", code, text)


def bye(text: str = "", code: str = "") -> Reply:
    return Reply("BYE", code, text)
