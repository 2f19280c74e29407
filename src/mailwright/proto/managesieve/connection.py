"""Command framing for ManageSieve (RFC 5804 4).

Theory of operation: bytes accumulate in a buffer; `next_event` parses one whole command when
the buffer holds one (its line and every literal it announces) and returns a `Command`, or
NEED_DATA. A literal is `{n+}` CRLF n octets (non-synchronising, what clients send) or `{n}`
CRLF n octets, which we accept the same way and never answer with a continuation (RFC 5804
4: clients wait for nothing). During an AUTHENTICATE exchange the session calls `expect_sasl`,
and the next line is one string (the client's SASL response) rather than a command.

Limits are constructor arguments: a line without its literals is at most `max_line` octets and
a literal at most `max_literal`. A literal over the limit is skipped without buffering (the
peer gets a NO and the connection stays in step); a line over the limit closes the session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .replies import Reply, bye, no


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # upper case
    args: tuple[str | int, ...]  # strings decoded as UTF-8, numbers as int


@dataclass(frozen=True, slots=True)
class SaslResponse:
    data: str  # the client's response string (base64, or "*" to cancel)


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    pass


class PeerError(Exception):
    """The client sent something we cannot parse; `reply` says so, `fatal` ends the session."""

    def __init__(self, reply: Reply, fatal: bool = False) -> None:
        super().__init__(reply.text)
        self.reply = reply
        self.fatal = fatal


_ATOM = re.compile(rb"[A-Za-z][A-Za-z0-9_-]*")
_NUMBER = re.compile(rb"[0-9]+")
_LITERAL = re.compile(rb"\{([0-9]{1,10})(\+?)\}\r\n")


class ServerConnection:
    def __init__(self, *, max_line: int = 8192, max_literal: int = 1024 * 1024) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self._buf = bytearray()
        self._closed = False
        self._sasl = False
        self._skip = 0  # octets of an oversized literal still to drop
        self._skip_line: Reply | None = None  # then drop the rest of the line, answer this

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._closed = True
            return
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        self._buf += data

    def expect_sasl(self) -> None:
        self._sasl = True

    def next_event(self) -> Command | SaslResponse | ConnectionClosed | _NeedData:
        if self._skip:
            return ConnectionClosed() if self._closed else NEED_DATA
        if self._skip_line is not None:
            end = self._buf.find(b"\r\n")
            if end < 0:
                # keep a trailing CR: it may be the first half of the line end
                keep = 1 if self._buf.endswith(b"\r") else 0
                del self._buf[: len(self._buf) - keep]
                return ConnectionClosed() if self._closed else NEED_DATA
            del self._buf[: end + 2]
            reply, self._skip_line = self._skip_line, None
            raise PeerError(reply)
        try:
            parsed = self._parse()
        except _BadLine as exc:
            self._skip_line = exc.reply
            return self.next_event()
        if parsed is None and self._skip_line is not None:
            return self.next_event()  # an oversized literal: drop it, then answer once
        if parsed is None:
            # `_parse` has already refused a line (literals aside) longer than max_line
            return ConnectionClosed() if self._closed else NEED_DATA
        items, consumed = parsed
        del self._buf[:consumed]
        if self._sasl:
            self._sasl = False
            if len(items) != 1 or not isinstance(items[0], bytes):
                raise PeerError(no("Expected one string as the SASL response"))
            return SaslResponse(_text(items[0]))
        if not items or not isinstance(items[0], _Atom):
            raise PeerError(no("Expected a command"))
        name = items[0].value.upper()
        args: list[str | int] = []
        for item in items[1:]:
            if isinstance(item, _Atom):
                raise PeerError(no(f"Unexpected atom {item.value!r}"))
            args.append(item if isinstance(item, int) else _text(item))
        return Command(name, tuple(args))

    def _parse(self) -> tuple[list[_Atom | bytes | int], int] | None:
        """One whole command from the buffer: (items, octets used), or None if incomplete."""
        buf = self._buf
        i = 0
        items: list[_Atom | bytes | int] = []
        line_start = 0
        while True:
            if i - line_start > self.max_line:
                raise PeerError(bye("Line too long"), fatal=True)
            if i >= len(buf):
                return None
            c = buf[i]
            if c == 0x20:  # SP
                i += 1
            elif buf.startswith(b"\r\n", i):
                return items, i + 2
            elif c == 0x0D and i + 1 >= len(buf):
                return None
            elif c == 0x22:  # quoted string
                j = i + 1
                out = bytearray()
                while True:
                    if j - line_start > self.max_line:
                        raise PeerError(bye("Line too long"), fatal=True)
                    if j >= len(buf):
                        return None
                    ch = buf[j]
                    if ch == 0x5C and j + 1 < len(buf):
                        out.append(buf[j + 1])
                        j += 2
                        continue
                    if ch == 0x5C:
                        return None
                    if ch == 0x22:
                        break
                    if ch == 0x0A or (ch == 0x0D and j + 1 < len(buf) and buf[j + 1] == 0x0A):
                        raise _resync(buf, j, "Line end inside a quoted string")
                    if ch == 0x0D and j + 1 >= len(buf):
                        return None
                    out.append(ch)
                    j += 1
                items.append(bytes(out))
                i = j + 1
            elif c == 0x7B:  # {
                m = _LITERAL.match(buf, i)
                if m is None:
                    if buf.find(b"\r\n", i) < 0 and len(buf) - i < 16:
                        return None
                    raise _resync(buf, i, "Malformed literal")
                size = int(m.group(1))
                start = m.end()
                if size > self.max_literal:
                    # drop the literal as it arrives, then the rest of the line
                    available = len(buf) - start
                    take = min(available, size)
                    del buf[:start + take]
                    self._skip = size - take
                    self._skip_line = no("Literal too large", "QUOTA/MAXSIZE")
                    return None
                if len(buf) < start + size:
                    return None
                items.append(bytes(buf[start : start + size]))
                i = start + size
                line_start = i
            else:
                m = _NUMBER.match(buf, i)
                if m is not None and (m.end() >= len(buf) or buf[m.end()] in b" \r"):
                    if m.end() - line_start > self.max_line:
                        raise PeerError(bye("Line too long"), fatal=True)
                    if m.end() >= len(buf):
                        return None
                    items.append(int(m.group(0)))
                    i = m.end()
                    continue
                m = _ATOM.match(buf, i)
                if m is None:
                    raise _resync(buf, i, "Syntax error")
                if m.end() - line_start > self.max_line:
                    raise PeerError(bye("Line too long"), fatal=True)
                if m.end() >= len(buf):
                    return None
                items.append(_Atom(m.group(0).decode("ascii")))
                i = m.end()


@dataclass(frozen=True, slots=True)
class _Atom:
    value: str


class _BadLine(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def _resync(buf: bytearray, at: int, message: str) -> _BadLine:
    """The rest of the line is dropped (as it arrives) so the next command parses cleanly;
    the error is answered once, when its line has ended, however the bytes were split."""
    return _BadLine(no(message))


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PeerError(no("Strings must be UTF-8")) from None
