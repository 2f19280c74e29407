"""Modified UTF-7 mailbox names (RFC 3501 5.1.3), for IMAP4rev1 clients without UTF8=ACCEPT.

IMAP4rev2 (RFC 9051 5.1) and UTF8=ACCEPT (RFC 6855 3) sessions use UTF-8 names directly; the
store always keeps names in UTF-8.
"""

from __future__ import annotations

import base64
import binascii


class MUTF7Error(ValueError):
    """The name is not valid modified UTF-7."""


def encode(name: str) -> str:
    """UTF-8 (str) to modified UTF-7."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """Modified UTF-7 to str; raises :class:`MUTF7Error` on malformed input."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ord(ch) > 0x7E or ord(ch) < 0x20:
            raise MUTF7Error("non-ASCII character in modified UTF-7 name")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise MUTF7Error("unterminated modified base64")
        chunk = name[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        b64 = chunk.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        try:
            raw = base64.b64decode(b64, validate=True)
            text = raw.decode("utf-16-be")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise MUTF7Error("invalid modified base64") from None
        # RFC 3501 5.1.3: printable US-ASCII must not be encoded; the encoding must be minimal.
        if any(0x20 <= ord(c) <= 0x7E for c in text) or encode(text) != "&" + chunk + "-":
            raise MUTF7Error("non-canonical modified UTF-7")
        out.append(text)
    return "".join(out)
