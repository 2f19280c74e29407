"""Just enough of RFC 5322 header syntax for authentication: fields with their raw bytes.

Authentication needs the header section exactly as received (DKIM hashes it, removal of forged
Authentication-Results must not touch anything else), so fields are kept as raw byte slices with
their folding and line endings, and only names and unfolded values are derived from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HeaderField", "split_message", "unfold"]

_NAME_RE = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: lower-case name ("" for a line that is not a field) and raw bytes."""

    name: str
    raw: bytes  # including the continuation lines and the final line ending

    @property
    def value(self) -> bytes:
        """The field body, unfolded (RFC 5322 2.2.3), without surrounding whitespace."""
        _, _, value = self.raw.partition(b":")
        return unfold(value).strip()


def unfold(value: bytes) -> bytes:
    return re.sub(rb"\r?\n(?=[ \t])", b"", value).rstrip(b"\r\n")


def split_message(message: bytes) -> tuple[list[HeaderField], bytes]:
    """Split into header fields and the rest (the blank line and the body, unchanged).

    A message without a blank line is all header. Lines ending in LF or CRLF are both accepted.
    """
    fields: list[HeaderField] = []
    pos = 0
    size = len(message)
    current_start = -1
    current_name = ""
    while pos < size:
        end = message.find(b"\n", pos)
        end = size if end < 0 else end + 1
        line = message[pos:end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and current_start >= 0:
            pos = end
            continue  # continuation of the current field
        if current_start >= 0:
            fields.append(HeaderField(current_name, message[current_start:pos]))
        m = _NAME_RE.match(line)
        current_name = m.group(1).decode("ascii").lower() if m else ""
        current_start = pos
        pos = end
    if current_start >= 0:
        fields.append(HeaderField(current_name, message[current_start:pos]))
    return fields, message[pos:]
