"""Sans-I/O IMAP command reader: bytes in, typed commands out.

Theory of operation
-------------------
The client's byte stream is a sequence of commands, each one or more CRLF-terminated lines
glued together by literals: a line ending in ``{n}`` (synchronizing), ``{n+}`` (LITERAL+ /
LITERAL-, RFC 7888) or ``~{n}`` (literal8, RFC 3516) is followed by exactly ``n`` bytes of
data and then the rest of the command.  The framer here only finds command boundaries; once a
command is complete its wire form goes to :func:`grammar.parse_command`.

For a synchronizing literal the client waits for a continuation request, so the framer returns
:class:`ContinuationRequest` and the session sends ``+ ...`` (or calls
:meth:`ImapParser.reject_literal` and answers the command with NO/BAD, in which case the
client does not send the literal, RFC 9051 7.6).

Limits (constructor arguments): the text of one command (everything but literal data) is at
most ``max_line`` bytes; a literal at most ``max_literal`` bytes, except in APPEND where
``max_append`` applies.  A violation raises :class:`ProtocolError` and the framer skips the
rest of the offending command (including non-synchronizing literal data that the client sends
regardless), so the next command is read normally.

Two special modes, entered by the session: after IDLE the next line must be ``DONE``
(RFC 2177 / RFC 9051 6.3.13), and during AUTHENTICATE each line is a SASL response
(RFC 9051 6.2.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailwright.proto.imap import ast
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.grammar import CommandError, parse_command, parse_tag


@dataclass(frozen=True, slots=True)
class ContinuationRequest:
    """The client sent a synchronizing literal header and waits for ``+``."""

    size: int
    tag: str | None
    command: str | None


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The line that ends an IDLE: ``DONE`` (``valid``) or anything else, which also ends it
    and gets a BAD for the IDLE command (RFC 9051 6.3.13)."""

    valid: bool = True


@dataclass(frozen=True, slots=True)
class SaslResponse:
    """One line of an AUTHENTICATE exchange: the raw base64 text, or ``None`` for ``*``
    (the client cancelled, RFC 9051 6.2.2)."""

    data: bytes | None


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

Event = ast.Command | ContinuationRequest | IdleDone | SaslResponse

_LITERAL_AT_END = re.compile(rb"~?\{([0-9]{1,20})(\+?)\}\Z")
_HEAD = re.compile(rb"([^ ]+) (?:[Uu][Ii][Dd] )?([A-Za-z]+)")


class ImapParser:
    """Server-side reader of client commands (see module docstring)."""

    def __init__(
        self,
        *,
        max_line: int = 65536,
        max_literal: int = 1 << 20,
        max_append: int = 64 << 20,
        utf8: bool = True,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_append = max_append
        #: Whether 8-bit UTF-8 is allowed in quoted strings (IMAP4rev2 / UTF8=ACCEPT).
        self.utf8 = utf8
        self._buf = bytearray()
        self._cmd = bytearray()
        self._text_len = 0
        self._literal_left = 0
        self._skip_left = 0
        self._discarding = False
        self._discard_tail = b""
        self._mode = "command"
        self._head: tuple[str | None, str | None] = (None, None)
        self._awaiting_continuation = False
        self._scan = 0

    # -- input --------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed (the adapter stops reading when this is big)."""
        return len(self._buf)

    @property
    def in_command(self) -> bool:
        """Whether part of a command has been read (e.g. waiting for literal data)."""
        return bool(self._cmd) or self._literal_left > 0

    # -- modes --------------------------------------------------------------------------------

    def expect_idle_done(self) -> None:
        """The session started IDLE: the next line must be DONE."""
        self._mode = "idle"

    def expect_sasl_response(self) -> None:
        """The session sent a SASL challenge: the next line is the client's response."""
        self._mode = "sasl"

    def reject_literal(self) -> None:
        """Refuse the synchronizing literal just announced: the command is dropped (the client
        does not send the literal after a tagged NO/BAD)."""
        if self._awaiting_continuation:
            self._reset_command()

    # -- output -------------------------------------------------------------------------------

    def next_event(self) -> Event | _NeedData:
        """The next complete event, or NEED_DATA.

        Raises :class:`ProtocolError` for malformed or oversized input; the parser is then
        ready for the next command.
        """
        while True:
            if self._skip_left:
                n = min(self._skip_left, len(self._buf))
                del self._buf[:n]
                self._skip_left -= n
                if self._skip_left:
                    return NEED_DATA
            if self._literal_left:
                n = min(self._literal_left, len(self._buf))
                self._cmd += self._buf[:n]
                del self._buf[:n]
                self._literal_left -= n
                if self._literal_left:
                    return NEED_DATA
                self._awaiting_continuation = False
            idx = self._buf.find(b"\n", self._scan)
            if idx < 0:
                self._scan = len(self._buf)
                if self._discarding:
                    self._discard_tail = (self._discard_tail + bytes(self._buf))[-32:]
                    self._buf.clear()
                    self._scan = 0
                    return NEED_DATA
                if self._text_len + len(self._buf) > self.max_line:
                    tag = parse_tag(bytes(self._cmd or self._buf))
                    self._discard_tail = bytes(self._buf[-32:])
                    self._buf.clear()
                    self._scan = 0
                    self._reset_command()
                    self._discarding = True
                    raise ProtocolError("command line too long", tag=tag, code="TOOBIG")
                return NEED_DATA
            line = bytes(self._buf[:idx])
            del self._buf[: idx + 1]
            self._scan = 0
            if self._discarding:
                self._finish_discard((self._discard_tail + line).removesuffix(b"\r"))
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if self._mode == "idle":
                self._mode = "command"
                return IdleDone(line.upper() == b"DONE")
            if self._mode == "sasl":
                self._mode = "command"
                return SaslResponse(None if line == b"*" else line)
            event = self._command_line(line)
            if event is not None:
                return event

    def _finish_discard(self, tail: bytes) -> None:
        """End of a line of a command we are throwing away."""
        self._discard_tail = b""
        m = _LITERAL_AT_END.search(tail)
        if m and m.group(2):
            # A non-synchronizing literal comes regardless (RFC 7888 3): skip it and the rest
            # of the command line after it.
            self._skip_left = int(m.group(1))
            return
        self._discarding = False

    def _command_line(self, line: bytes) -> Event | None:
        if not self._cmd and not line:
            return None  # an empty line is not a command; be lenient like Dovecot
        if not self._cmd:
            m = _HEAD.match(line)
            self._head = (parse_tag(line), m.group(2).decode("ascii").upper() if m else None)
        self._text_len += len(line)
        if self._text_len > self.max_line:
            tag = self._head[0]
            self._reset_command()
            self._finish_discard(line)
            raise ProtocolError("command line too long", tag=tag, code="TOOBIG")
        m = _LITERAL_AT_END.search(line)
        if m is not None:
            size = int(m.group(1))
            nonsync = bool(m.group(2))
            tag, command = self._head
            limit = self.max_append if command == "APPEND" else self.max_literal
            if size > limit:
                self._reset_command()
                if nonsync:
                    self._skip_left = size
                    self._discarding = True
                if command == "APPEND":
                    # RFC 7889 APPENDLIMIT / RFC 9051 7.1: TOOBIG
                    raise ProtocolError(
                        "message too large", tag=tag, status="NO", code="TOOBIG"
                    )
                raise ProtocolError("literal too large", tag=tag, code="TOOBIG")
            self._cmd += line
            self._cmd += b"\r\n"
            self._literal_left = size
            if not nonsync:
                self._awaiting_continuation = True
                return ContinuationRequest(size, tag, command)
            return None
        self._cmd += line
        wire = self._cmd  # no copy: a literal may be an APPENDed message of many MiB
        self._reset_command()
        try:
            return parse_command(wire, utf8=self.utf8)
        except CommandError as exc:
            err = exc.error
            raise ProtocolError(err.text, tag=exc.tag, status=err.status, code=err.code) from None

    def _reset_command(self) -> None:
        self._cmd = bytearray()
        self._text_len = 0
        self._literal_left = 0
        self._awaiting_continuation = False
        self._head = (None, None)
