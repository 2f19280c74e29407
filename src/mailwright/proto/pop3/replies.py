"""Server replies and their byte encoding (RFC 1939 3, RFC 2449 8, RFC 5034 4).

A reply is a frozen dataclass; ``encode()`` turns it into the exact bytes for the wire.
Multi-line bodies are dot-stuffed here and nowhere else, so the framing rule lives in one place.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


class Code:
    """Extended response codes (RFC 2449 8, RFC 3206)."""

    IN_USE = "IN-USE"  # RFC 2449 8.1.2: the maildrop is locked by another session
    LOGIN_DELAY = "LOGIN-DELAY"  # RFC 2449 8.1.1
    SYS_TEMP = "SYS/TEMP"  # RFC 3206 4: a transient system failure
    SYS_PERM = "SYS/PERM"  # RFC 3206 4: a permanent system failure
    AUTH = "AUTH"  # RFC 3206 5: the credentials were wrong


def _clean_text(text: str) -> bytes:
    # A reply line must never carry a line break of its own (RFC 1939 3), whatever the caller passes.
    data = text.encode("utf-8", "replace")
    return data.replace(b"\r", b" ").replace(b"\n", b" ")


@dataclass(frozen=True, slots=True)
class Ok:
    text: str = ""

    def status_line(self) -> bytes:
        text = _clean_text(self.text)
        return b"+OK " + text + b"\r\n" if text else b"+OK\r\n"

    def encode(self) -> bytes:
        return self.status_line()


@dataclass(frozen=True, slots=True)
class Err:
    text: str
    code: str | None = None

    def encode(self) -> bytes:
        text = _clean_text(self.text)
        if self.code:
            text = b"[" + self.code.encode("ascii") + b"] " + text
        return b"-ERR " + text + b"\r\n" if text else b"-ERR\r\n"


@dataclass(frozen=True, slots=True)
class MultiLine:
    """``+OK`` followed by lines and the terminating ``.`` (RFC 1939 3).

    ``lines`` are given without line endings; ``data`` is raw message bytes (RETR/TOP) and
    is sent byte for byte, dot-stuffed, with a final CRLF added only if it lacks one.
    """

    text: str = ""
    lines: tuple[str, ...] = ()
    data: bytes = b""

    def encode(self) -> bytes:
        return b"".join(self.encode_chunks())

    def encode_chunks(self, chunk_size: int = 65536) -> Iterator[bytes]:
        """The same bytes as ``encode()``, produced lazily in pieces of about ``chunk_size``,
        so a large message is stuffed and written without a second whole copy in memory."""
        stuffer = DotStuffer()
        head = Ok(self.text).status_line()
        if self.lines:
            head += stuffer.feed(b"".join(_clean_text(line) + b"\r\n" for line in self.lines))
        data = self.data
        if len(data) <= chunk_size:
            yield head + stuffer.feed(data) + stuffer.end()
            return
        yield head
        view = memoryview(data)
        for start in range(0, len(data), chunk_size):
            yield stuffer.feed(bytes(view[start : start + chunk_size]))
        yield stuffer.end()


@dataclass(frozen=True, slots=True)
class Continuation:
    """A SASL server challenge, sent base64-encoded after ``+ `` (RFC 5034 4)."""

    challenge: bytes = b""

    def encode(self) -> bytes:
        return b"+ " + base64.b64encode(self.challenge) + b"\r\n"


Reply = Ok | Err | MultiLine | Continuation


@dataclass(slots=True)
class DotStuffer:
    """Incremental dot-stuffing for a multi-line body (RFC 1939 3).

    A ``.`` at the start of any line gets a second ``.`` before it.  A line starts after
    every LF, bare or not, so that a stored bare LF can never end the response early for a
    client that splits lines on LF alone.  State crosses ``feed`` calls, so chunk borders
    never matter.
    """

    _at_line_start: bool = True
    _ends_with_crlf: bool = False
    _last: bytes = field(default=b"")

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        out = chunk.replace(b"\n.", b"\n..")
        if self._at_line_start and chunk[:1] == b".":
            out = b"." + out
        tail = chunk[-2:] if len(chunk) >= 2 else (self._last + chunk)[-2:]
        self._last = tail
        self._at_line_start = tail.endswith(b"\n")
        self._ends_with_crlf = tail == b"\r\n"
        return out

    def end(self) -> bytes:
        if self._last == b"" or self._ends_with_crlf:
            return b".\r\n"
        # RFC 1939 3: the terminator is CRLF "." CRLF, so a body without a final CRLF gets
        # one.  A trailing lone CR stays data, as Dovecot serves it (the CRLF is added after).
        return b"\r\n.\r\n"


def capabilities(
    *,
    user: bool,
    sasl: Iterable[str],
    stls: bool,
    implementation: str | None = None,
    expire: str | None = None,
    login_delay: int | None = None,
) -> tuple[str, ...]:
    """The CAPA lines (RFC 2449 6) for the current state of a session."""
    lines = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
    if user:
        lines.append("USER")
    mechanisms = " ".join(sasl)
    if mechanisms:
        lines.append("SASL " + mechanisms)
    if stls:
        lines.append("STLS")
    if expire is not None:
        lines.append("EXPIRE " + expire)
    if login_delay is not None:
        lines.append(f"LOGIN-DELAY {login_delay}")
    if implementation:
        lines.append("IMPLEMENTATION " + implementation)
    return tuple(lines)
