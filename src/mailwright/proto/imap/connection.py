"""The IMAP server connection: bytes in, events out (RFC 9051, sans-I/O, in the style of h11).

Theory of operation
-------------------
The client's byte stream is a sequence of commands, each one or more CRLF-terminated lines
glued together by literals: a line ending in ``{n}`` (synchronizing), ``{n+}`` (non-
synchronizing, RFC 7888) or ``~{n}`` (literal8, RFC 3516) is followed by exactly ``n`` octets
and then the rest of the command.  :class:`ImapConnection` owns this framing and every rule
about literals; a complete command goes to :func:`grammar.parse_command`.

House rules:

* The adapter calls :meth:`ImapConnection.receive_data`, then :meth:`~ImapConnection.next_event`
  until it returns NEED_DATA.  The core never reads ahead of what it was given and holds at
  most one command in memory, so what a peer can make us buffer is bounded by the limits below,
  literals included (the limits count literal data, not only the command text).
* A literal is decided on before its data is read.  A synchronizing literal within the limits
  becomes a :class:`ContinuationRequest`; the session answers it with
  :meth:`~ImapConnection.accept_literal` (which returns the ``+`` line to send) or
  :meth:`~ImapConnection.reject_literal` (and a tagged NO/BAD: the client then does not send
  the literal, RFC 9051 7.5).  Until it does, :meth:`~ImapConnection.next_event` returns PAUSED.
* The connection knows whether the session is authenticated (the session sets
  :attr:`~ImapConnection.authenticated` after LOGIN/AUTHENTICATE succeed).  Before that, RFC
  7888 LITERAL- rules apply: no literal above 4,096 octets, and a whole command of at most
  ``preauth_command`` octets.  A synchronizing literal that is too large is refused without
  ``+``; a non-synchronizing one is refused (tagged BAD [TOOBIG], RFC 7888 4) and, before
  authentication, the connection is closed (``fatal``) instead of reading and discarding data
  nobody asked for; after authentication its data is skipped without being kept.
* Once authenticated, APPEND message literals are not buffered: the connection announces each
  message with :class:`AppendMessageStart` (accept or reject it like a continuation request,
  so a missing mailbox or a full quota is refused before the upload, RFC 9051 6.3.12), streams
  its octets as :class:`AppendData` chunks, ends it with :class:`AppendMessageEnd`, and ends the
  command with :class:`AppendEnd`.  MULTIAPPEND (RFC 3502) repeats start, data and end.
* CATENATE (RFC 4469) is streamed the same way: an :class:`AppendMessageStart` with
  ``catenate`` set (no literal to answer), then its parts in order, :class:`CatenateUrlPart`
  for a URL and :class:`CatenateTextStart` (answered like a message literal) followed by
  :class:`AppendData` for a TEXT literal, and :class:`AppendMessageEnd` at its ``)``.  One
  line may carry several parts, so events wait in a short queue (bounded by the line).
* Malformed or oversized input raises :class:`ProtocolError` carrying the response; the
  connection has already skipped the rest of the offending command (including non-
  synchronizing literal data that the client sends regardless), so the next command is read
  normally, unless ``fatal`` is set.

Two special modes, entered by the session: after IDLE the next line must be ``DONE``
(RFC 2177 / RFC 9051 6.3.13), and during AUTHENTICATE each line is a SASL response
(RFC 9051 6.2.2).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from mailwright.proto.imap import ast
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.grammar import (
    AppendItem,
    AppendMessageHead,
    AppendState,
    CatenateEnd,
    CatenateText,
    CatenateUrl,
    CatenateUrlLiteral,
    CommandError,
    parse_append_head,
    parse_append_next,
    parse_command,
    parse_replace_head,
    parse_tag,
)

#: RFC 7888 4: LITERAL- allows non-synchronizing literals of at most 4,096 octets; before
#: authentication this is the bound for every literal.
PREAUTH_MAX_LITERAL: Final = 4096
CONTINUE: Final = b"+ Ready for literal data\r\n"


@dataclass(frozen=True, slots=True)
class ContinuationRequest:
    """The client announced a synchronizing literal and waits for ``+`` (or a tagged NO/BAD)."""

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


@dataclass(frozen=True, slots=True)
class AppendMessageStart:
    """An APPEND message literal was announced (``index`` 0 for the first, RFC 3502 for the
    others); answer with ``accept_literal()`` or ``reject_literal()`` before its data is read.
    ``total`` counts this message and the ones before it in the same command."""

    tag: str
    mailbox: str
    flags: tuple[str, ...]
    internaldate: datetime | None
    size: int
    synchronizing: bool
    binary: bool
    index: int
    total: int
    #: REPLACE (RFC 8508): the message set to expunge and whether it is UIDs
    replace: tuple[ast.SequenceSet, bool] | None = None
    #: CATENATE (RFC 4469): the message is made of the parts that follow; there is no
    #: literal to accept or reject (``size`` is 0), a failure is reported at the end
    catenate: bool = False


@dataclass(frozen=True, slots=True)
class CatenateUrlPart:
    """A ``URL`` part of the current CATENATE message (RFC 4469 5)."""

    tag: str
    url: str


@dataclass(frozen=True, slots=True)
class CatenateTextStart:
    """A ``TEXT`` literal of the current CATENATE message was announced; answer it like an
    APPEND message literal (accept_literal()/reject_literal()); AppendData follows."""

    tag: str
    size: int
    synchronizing: bool
    binary: bool


@dataclass(frozen=True, slots=True)
class AppendData:
    """A chunk of the current APPEND message, as received (at most one read's worth)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AppendMessageEnd:
    """The current APPEND message literal is complete."""


@dataclass(frozen=True, slots=True)
class AppendEnd:
    """The APPEND command is complete: store every message of it, or none (RFC 3502 3)."""

    tag: str


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final = _Sentinel("NEED_DATA")
#: A continuation request or an APPEND message waits for accept_literal()/reject_literal().
PAUSED: Final = _Sentinel("PAUSED")

Event = (
    ast.Command
    | ContinuationRequest
    | IdleDone
    | SaslResponse
    | AppendMessageStart
    | AppendData
    | AppendMessageEnd
    | AppendEnd
    | CatenateUrlPart
    | CatenateTextStart
)

_LITERAL_AT_END = re.compile(rb"~?\{([0-9]{1,20})(\+?)\}\Z")
_HEAD = re.compile(rb"([^ ]+) (?:[Uu][Ii][Dd] )?([A-Za-z]+)")


@dataclass(slots=True)
class _Append:
    """An APPEND being streamed."""

    tag: str
    mailbox: str
    index: int = -1
    total: int = 0
    binary: bool = False
    close_paren: bool = False
    in_literal: bool = False
    replace: tuple[ast.SequenceSet, bool] | None = None
    #: where the APPEND's parse stands for the next segment (grammar.AppendState)
    state: AppendState = "first"
    #: the literal being streamed: "message" or "text" (a CATENATE TEXT part)
    literal_kind: str = "message"
    #: parts of the current CATENATE message so far
    parts: int = 0
    #: a URL sent as a literal (RFC 4469 5 ``URL astring``): octets still to read, and them
    url_left: int = 0
    url_buf: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True, slots=True)
class _Pending:
    """The literal announced last, waiting for the session's answer."""

    size: int
    synchronizing: bool
    append: bool
    #: "literal" (command data), "message", "text" (CATENATE TEXT) or "url" (a URL literal)
    kind: str = "literal"


#: RFC 5092 sets no bound on a URL; one naming a message part is short
MAX_URL_LITERAL = 8192


class ImapConnection:
    """Server side of one IMAP connection's framing (see the module docstring)."""

    def __init__(
        self,
        *,
        max_line: int = 65536,
        max_literal: int = 1 << 20,
        max_command: int = 4 << 20,
        max_append: int = 64 << 20,
        max_append_messages: int = 1000,
        max_catenate_parts: int = 1000,
        preauth_literal: int = PREAUTH_MAX_LITERAL,
        preauth_command: int = 32768,
        utf8: bool = True,
        authenticated: bool = False,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_command = max_command
        self.max_append = max_append
        self.max_append_messages = max_append_messages
        #: RFC 4469: URL and TEXT parts in one CATENATE message (each URL is a store lookup)
        self.max_catenate_parts = max_catenate_parts
        self.preauth_literal = preauth_literal
        self.preauth_command = preauth_command
        #: Whether 8-bit UTF-8 is allowed in quoted strings (IMAP4rev2 / UTF8=ACCEPT).
        self.utf8 = utf8
        #: Set by the session once LOGIN/AUTHENTICATE succeeded: lifts the LITERAL- limits and
        #: streams APPEND.
        self.authenticated = authenticated
        #: A fatal error was raised: the session must close the connection.
        self.closed = False
        self._buf = bytearray()
        self._cmd = bytearray()
        self._text_len = 0
        self._literal_left = 0
        self._stream_left = 0
        self._skip_left = 0
        self._discarding = False
        self._discard_tail = b""
        self._mode = "command"
        self._head: tuple[str | None, str | None] = (None, None)
        self._append: _Append | None = None
        self._pending: _Pending | None = None
        #: events already parsed from one line (CATENATE parts), with the literal answer
        #: the last one waits for
        self._queue: deque[tuple[Event, _Pending | None]] = deque()
        self._scan = 0

    # -- input --------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not self.closed:
            self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed."""
        return len(self._buf)

    @property
    def in_command(self) -> bool:
        """Whether part of a command has been read (e.g. waiting for literal data)."""
        return (
            bool(self._cmd)
            or self._literal_left > 0
            or self._append is not None
            or self._pending is not None
            or bool(self._queue)
        )

    @property
    def awaiting_answer(self) -> bool:
        """A literal was announced and waits for accept_literal()/reject_literal()."""
        return self._pending is not None

    @property
    def literal_capability(self) -> str:
        """RFC 7888: LITERAL- while the LITERAL- limits apply, LITERAL+ after login."""
        return "LITERAL+" if self.authenticated else "LITERAL-"

    def _max_literal(self) -> int:
        return self.max_literal if self.authenticated else self.preauth_literal

    def _max_command(self) -> int:
        return self.max_command if self.authenticated else self.preauth_command

    # -- modes --------------------------------------------------------------------------------

    def expect_idle_done(self) -> None:
        """The session started IDLE: the next line must be DONE."""
        self._mode = "idle"

    @property
    def idling(self) -> bool:
        """Whether the next line must be IDLE's DONE (IDLE reports changes on its own)."""
        return self._mode == "idle"

    def expect_sasl_response(self) -> None:
        """The session sent a SASL challenge: the next line is the client's response."""
        self._mode = "sasl"

    # -- answers to ContinuationRequest / AppendMessageStart -----------------------------------

    def accept_literal(self) -> bytes:
        """Read the literal just announced; returns the continuation line to send (empty for a
        non-synchronizing literal)."""
        p = self._pending
        if p is None:
            return b""
        self._pending = None
        if p.kind == "url":
            assert self._append is not None
            self._append.url_left = p.size
        elif p.append:
            assert self._append is not None
            self._append.in_literal = True
            self._append.literal_kind = p.kind
            self._stream_left = p.size
        else:
            self._literal_left = p.size
        return CONTINUE if p.synchronizing else b""

    def reject_literal(self) -> None:
        """Refuse the literal just announced: the command is dropped.  A synchronizing literal
        is never sent after a tagged NO/BAD; a non-synchronizing one is on its way and is
        skipped, with the rest of its command."""
        p = self._pending
        if p is None:
            return
        self._pending = None
        self._append = None
        self._queue.clear()
        self._reset_command()
        if not p.synchronizing:
            self._skip_left = p.size
            self._discarding = True

    # -- output -------------------------------------------------------------------------------

    def next_event(self) -> Event | _Sentinel:
        """The next complete event, NEED_DATA, or PAUSED (a literal awaits an answer).

        Raises :class:`ProtocolError` for malformed or oversized input; the connection is
        then ready for the next command (unless the error is ``fatal``).
        """
        if self._pending is not None:
            return PAUSED
        if self.closed:
            return NEED_DATA
        if self._queue:
            queued, self._pending = self._queue.popleft()
            return queued
        while True:
            if self._skip_left:
                n = min(self._skip_left, len(self._buf))
                del self._buf[:n]
                self._skip_left -= n
                if self._skip_left:
                    return NEED_DATA
            ap = self._append
            if ap is not None and ap.in_literal:
                if self._stream_left:
                    if not self._buf:
                        return NEED_DATA
                    n = min(self._stream_left, len(self._buf))
                    chunk = bytes(self._buf[:n])
                    del self._buf[:n]
                    self._stream_left -= n
                    if not ap.binary and b"\x00" in chunk:
                        # RFC 9051 4.3: NUL only in literal8.
                        self._skip_left = self._stream_left
                        self._append = None
                        self._reset_command()
                        self._discarding = True
                        raise ProtocolError("NUL in literal (use literal8)", tag=ap.tag)
                    return AppendData(chunk)
                ap.in_literal = False
                self._mode = "append"
                if ap.literal_kind == "text":
                    ap.state = "catpart"  # RFC 4469 5: more parts or ")" follow
                    continue
                ap.state = "message"
                return AppendMessageEnd()
            if ap is not None and ap.url_left:
                n = min(ap.url_left, len(self._buf))
                ap.url_buf += self._buf[:n]
                del self._buf[:n]
                ap.url_left -= n
                if ap.url_left:
                    return NEED_DATA
                raw, ap.url_buf = bytes(ap.url_buf), bytearray()
                ap.state = "catpart"
                self._mode = "append"
                try:
                    url = raw.decode("utf-8")
                except UnicodeDecodeError:
                    self._append = None
                    self._reset_command()
                    self._discarding = True
                    raise ProtocolError("URL is not UTF-8", tag=ap.tag) from None
                return CatenateUrlPart(ap.tag, url)
            if self._literal_left:
                n = min(self._literal_left, len(self._buf))
                self._cmd += self._buf[:n]
                del self._buf[:n]
                self._literal_left -= n
                if self._literal_left:
                    return NEED_DATA
            idx = self._buf.find(b"\n", self._scan)
            if idx < 0:
                self._scan = len(self._buf)
                if self._discarding:
                    self._discard_tail = (self._discard_tail + bytes(self._buf))[-32:]
                    self._buf.clear()
                    self._scan = 0
                    return NEED_DATA
                if len(self._buf) > self._line_room() + 1:  # + 1: the CR of a CRLF to come
                    tag = self._head[0] if self._cmd else parse_tag(bytes(self._buf))
                    if self._append is not None:
                        tag = self._append.tag
                    self._discard_tail = bytes(self._buf[-32:])
                    self._buf.clear()
                    self._scan = 0
                    self._append = None
                    self._queue.clear()
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
            if self._mode == "append":
                event = self._append_line(line)
            else:
                event = self._command_line(line)
            if event is not None:
                return event

    def _line_room(self) -> int:
        """How many more octets of command text the current command may have."""
        return max(0, min(self.max_line - self._text_len, self._max_command() - len(self._cmd)))

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

    def _fail(self, line: bytes, exc: ProtocolError) -> ProtocolError:
        """Drop the current command, skip what the client still sends of it, return *exc*."""
        self._append = None
        self._queue.clear()
        self._reset_command()
        self._discarding = True
        self._finish_discard(line)
        if exc.fatal:
            self.closed = True
            self._buf.clear()
            self._discarding = False
            self._skip_left = 0
        return exc

    def _too_big(self, line: bytes, nonsync: bool, tag: str | None, text: str,
                 status: str = "BAD") -> ProtocolError:
        # RFC 7888 4: a non-synchronizing literal over the LITERAL- limit is rejected; before
        # authentication we close instead of reading data nobody asked for.
        fatal = nonsync and not self.authenticated
        if fatal:
            status = "BAD"
        return self._fail(line, ProtocolError(text, tag=tag, status=status, code="TOOBIG",
                                              fatal=fatal))

    def _command_line(self, line: bytes) -> Event | None:
        if not self._cmd and not line:
            return None  # an empty line is not a command; be lenient like Dovecot
        if not self._cmd:
            m = _HEAD.match(line)
            self._head = (parse_tag(line), m.group(2).decode("ascii").upper() if m else None)
        tag, command = self._head
        self._text_len += len(line)
        if self._text_len > self.max_line or len(self._cmd) + len(line) > self._max_command():
            raise self._fail(line, ProtocolError("command line too long", tag=tag, code="TOOBIG"))
        m = _LITERAL_AT_END.search(line)
        if self.authenticated and command == "APPEND":
            # every APPEND of an authenticated session is streamed, CATENATE (RFC 4469)
            # included, whose first line may carry the whole command
            try:
                head = parse_append_head(self._cmd + line, utf8=self.utf8)
            except CommandError as exc:
                err = exc.error
                raise self._fail(line, ProtocolError(err.text, tag=exc.tag, status=err.status,
                                                     code=err.code)) from None
            if head is not None:
                atag, mailbox, items, state = head
                self._reset_command()
                self._append = _Append(atag, mailbox)
                return self._append_items(line, items, state)
        if m is None:
            self._cmd += line
            wire = self._cmd  # no copy
            self._reset_command()
            try:
                return parse_command(wire, utf8=self.utf8)
            except CommandError as exc:
                err = exc.error
                raise ProtocolError(err.text, tag=exc.tag, status=err.status,
                                    code=err.code) from None
        size = int(m.group(1))
        nonsync = bool(m.group(2))
        if self.authenticated and command == "REPLACE":
            # RFC 8508: REPLACE streams its one message like APPEND
            try:
                rhead = parse_replace_head(self._cmd + line, utf8=self.utf8)
            except CommandError as exc:
                err = exc.error
                raise self._fail(line, ProtocolError(err.text, tag=exc.tag, status=err.status,
                                                     code=err.code)) from None
            if rhead is not None:
                rtag, ruid, rset, mailbox, mhead = rhead
                self._reset_command()
                self._append = _Append(rtag, mailbox, replace=(rset, ruid))
                return self._message_start(line, mhead)
        if size > self._max_literal() or len(self._cmd) + len(line) + 2 + size > self._max_command():
            raise self._too_big(line, nonsync, tag, "literal too large")
        self._cmd += line
        self._cmd += b"\r\n"
        if nonsync:
            self._literal_left = size
            return None
        self._pending = _Pending(size, True, append=False)
        return ContinuationRequest(size, tag, command)

    def _message_start(self, line: bytes, head: AppendMessageHead) -> Event:
        event, pending = self._message_event(line, head)
        self._pending = pending
        return event

    def _message_event(
        self, line: bytes, head: AppendMessageHead
    ) -> tuple[Event, _Pending | None]:
        ap = self._append
        assert ap is not None
        ap.index += 1
        ap.total += head.size
        ap.binary = head.binary
        ap.close_paren = head.utf8
        nonsync = not head.synchronizing
        if head.size > self.max_append:
            # RFC 7889 APPENDLIMIT / RFC 9051 7.1: TOOBIG
            raise self._too_big(line, nonsync, ap.tag, "message too large", status="NO")
        if ap.index >= self.max_append_messages:
            raise self._fail(line, ProtocolError("too many messages in one APPEND", tag=ap.tag,
                                                 status="NO", code="LIMIT"))
        if head.catenate:
            ap.parts = 0
            return AppendMessageStart(ap.tag, ap.mailbox, head.flags, head.internaldate, 0,
                                      False, False, ap.index, ap.total, ap.replace,
                                      catenate=True), None
        pending = _Pending(head.size, head.synchronizing, append=True, kind="message")
        return AppendMessageStart(ap.tag, ap.mailbox, head.flags, head.internaldate, head.size,
                                  head.synchronizing, head.binary, ap.index, ap.total,
                                  ap.replace), pending

    def _append_items(
        self, line: bytes, items: list[AppendItem], state: AppendState
    ) -> Event | None:
        """Queue the events of one parsed segment of an APPEND and return the first."""
        ap = self._append
        assert ap is not None
        ap.state = state
        out: list[tuple[Event, _Pending | None]] = []
        for item in items:
            if isinstance(item, AppendMessageHead):
                if ap.replace is not None and (item.catenate or ap.index >= 0):
                    # RFC 8508 3: REPLACE carries exactly one plain message
                    raise self._fail(line, ProtocolError("REPLACE takes one message",
                                                         tag=ap.tag))
                out.append(self._message_event(line, item))
                continue
            if isinstance(item, CatenateEnd):
                out.append((AppendMessageEnd(), None))
                continue
            ap.parts += 1
            if ap.parts > self.max_catenate_parts:
                raise self._fail(line, ProtocolError("too many CATENATE parts", tag=ap.tag,
                                                     status="NO", code="LIMIT"))
            if isinstance(item, CatenateUrl):
                out.append((CatenateUrlPart(ap.tag, item.url), None))
            elif isinstance(item, CatenateUrlLiteral):
                if item.size > MAX_URL_LITERAL:
                    raise self._too_big(line, not item.synchronizing, ap.tag, "URL too long")
                pending = _Pending(item.size, item.synchronizing, append=True, kind="url")
                if item.synchronizing:
                    out.append((ContinuationRequest(item.size, ap.tag, "APPEND"), pending))
                else:
                    ap.url_left = item.size
            elif isinstance(item, CatenateText):
                if item.size > self.max_append:
                    raise self._too_big(line, not item.synchronizing, ap.tag,
                                        "message too large", status="NO")
                ap.binary = item.binary
                out.append((CatenateTextStart(ap.tag, item.size, item.synchronizing, item.binary),
                            _Pending(item.size, item.synchronizing, append=True, kind="text")))
        if state == "end":
            out.append((AppendEnd(ap.tag), None))
            self._append = None
            self._mode = "command"
        if not out:
            return None  # only a non-synchronizing URL literal on this line: read it
        self._queue.extend(out[1:])
        first, self._pending = out[0]
        return first

    def _append_line(self, line: bytes) -> Event | None:
        """The text after an APPEND message literal, up to the next literal or the end."""
        ap = self._append
        assert ap is not None
        if len(line) > self.max_line:
            raise self._fail(line, ProtocolError("command line too long", tag=ap.tag,
                                                 code="TOOBIG"))
        close_paren = ap.close_paren and ap.state == "message"
        try:
            items, state = parse_append_next(ap.tag, line, state=ap.state,
                                             close_paren=close_paren, utf8=self.utf8)
        except CommandError as exc:
            err = exc.error
            raise self._fail(line, ProtocolError(err.text, tag=ap.tag, status=err.status,
                                                 code=err.code)) from None
        return self._append_items(line, items, state)

    def _reset_command(self) -> None:
        self._cmd = bytearray()
        self._text_len = 0
        self._literal_left = 0
        self._stream_left = 0
        self._head = (None, None)
        if self._mode == "append":
            self._mode = "command"
