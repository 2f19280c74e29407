"""Server replies as the client reads them (RFC 5321 4.2), and EHLO capabilities (4.1.1.1).

Reply lines are ``code SP text`` for the last line and ``code - text`` for the others; a bare
``code`` is a last line with empty text. Every line of one reply carries the same code. An
enhanced status code (RFC 2034, RFC 3463) at the start of the text is split off when its class
matches the reply's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import RemoteProtocolError

__all__ = ["Extensions", "Reply", "ReplyParser"]

_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -]?)(.*)$", re.S)
_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?: +|$)")


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete reply. ``lines`` holds the text of each line without code and separator."""

    code: int
    lines: tuple[str, ...] = ("",)
    enhanced: str | None = None

    @classmethod
    def build(cls, code: int, *lines: str) -> Reply:
        """A reply from text lines, splitting an enhanced code off the first line."""
        texts = tuple(lines) or ("",)
        match = _ENHANCED.match(texts[0])
        enhanced = None
        if match and int(match.group(1)[0]) == code // 100:
            enhanced = match.group(1)
            texts = (texts[0][match.end():], *texts[1:])
        return cls(code, texts, enhanced)

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return self.code >= 500

    @property
    def text(self) -> str:
        return " ".join(line for line in self.lines if line)

    def status(self) -> str:
        """The RFC 3463 code, or one derived from the basic code class when the server gave none."""
        if self.enhanced:
            return self.enhanced
        return f"{self.code // 100}.0.0"

    def __str__(self) -> str:
        parts = [str(self.code)]
        if self.enhanced:
            parts.append(self.enhanced)
        if self.text:
            parts.append(self.text)
        return " ".join(parts)


class ReplyParser:
    """Turns bytes from the server into ``Reply`` values, bounded in line length and count.

    RFC 5321 4.5.3.1.5 sets 512 octets per reply line; servers exceed it in practice, so the
    default bound is generous but finite.
    """

    def __init__(self, *, max_line_length: int = 4096, max_lines: int = 128) -> None:
        self._buffer = bytearray()
        self._pending: list[tuple[int, str]] = []
        self._max_line_length = max_line_length
        self._max_lines = max_lines

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None when more bytes are needed."""
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self._max_line_length:
                    raise RemoteProtocolError("reply line too long")
                return None
            if end > self._max_line_length:
                raise RemoteProtocolError("reply line too long")
            raw = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            match = _LINE.match(raw)
            if match is None:
                raise RemoteProtocolError(f"malformed reply line {raw[:80]!r}")
            code = int(match.group(1))
            sep = match.group(2)
            text = match.group(3).decode("utf-8", "replace")
            if sep == b"" and text:
                raise RemoteProtocolError(f"malformed reply line {raw[:80]!r}")
            if self._pending and self._pending[0][0] != code:
                raise RemoteProtocolError("reply code changed within a multi-line reply")
            self._pending.append((code, text))
            if len(self._pending) > self._max_lines:
                raise RemoteProtocolError("too many lines in one reply")
            if sep == b"-":
                continue
            lines = [t for _, t in self._pending]
            self._pending = []
            return Reply.build(code, *lines)


@dataclass(frozen=True, slots=True)
class Extensions:
    """EHLO keywords (upper case) mapped to their parameter text (RFC 5321 4.1.1.1)."""

    keywords: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    greeting: str = ""

    @classmethod
    def from_reply(cls, reply: Reply) -> Extensions:
        # The first line is the server's name and greeting; each further line is one extension.
        found: dict[str, str] = {}
        for line in reply.lines[1:]:
            word, _, params = line.strip().partition(" ")
            if word:
                found[word.upper()] = params.strip()
        first = reply.lines[0] if reply.lines else ""
        if reply.enhanced:
            first = f"{reply.enhanced} {first}"
        return cls(MappingProxyType(found), first)

    def has(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    @property
    def pipelining(self) -> bool:
        return self.has("PIPELINING")  # RFC 2920

    @property
    def starttls(self) -> bool:
        return self.has("STARTTLS")  # RFC 3207

    @property
    def eightbitmime(self) -> bool:
        return self.has("8BITMIME")  # RFC 6152

    @property
    def smtputf8(self) -> bool:
        return self.has("SMTPUTF8")  # RFC 6531

    @property
    def dsn(self) -> bool:
        return self.has("DSN")  # RFC 3461

    @property
    def enhanced_status_codes(self) -> bool:
        return self.has("ENHANCEDSTATUSCODES")  # RFC 2034

    @property
    def size(self) -> int | None:
        """RFC 1870: the announced limit; 0 means "no fixed limit", None "SIZE not offered"."""
        if not self.has("SIZE"):
            return None
        value = self.keywords["SIZE"].split(" ")[0]
        return int(value) if value.isdigit() else 0
