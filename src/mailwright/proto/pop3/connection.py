"""The sans-I/O POP3 server connection (h11 style).

The session feeds bytes with ``receive_data``, takes commands from ``next_event`` and
answers each with ``send(reply)``, which returns the bytes to write.  One command is in
flight at a time: until its reply is sent, ``next_event`` answers ``PAUSED``.  That keeps
PIPELINING (RFC 2449 6.6) trivially ordered and lets the state table depend on the reply.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from . import events as ev
from .errors import LocalProtocolError, PeerError
from .parser import parse_command, parse_sasl_response
from .replies import Continuation, Err, MultiLine, Ok, Reply
from .state import CONTINUABLE_COMMANDS, MULTILINE_COMMANDS, Outcome, State, next_state


class _Greeting:
    """Marker: the greeting has not been sent yet."""


class _Error:
    """Marker: a PeerError is waiting for its -ERR."""

    def __init__(self, fatal: bool) -> None:
        self.fatal = fatal


_Pending = ev.Command | _Greeting | _Error | None


class ServerConnection:
    """One POP3 server connection's protocol state.

    ``max_line_length`` bounds a command line including its CRLF (RFC 2449 4: 255 octets);
    ``max_sasl_line_length`` bounds AUTH lines and SASL responses, which RFC 5034 4 lets
    grow beyond it.  The adapter should read from the socket only when ``next_event``
    answers ``NEED_DATA``, so unread pipelined input stays bounded by one read.
    """

    def __init__(
        self,
        *,
        max_line_length: int = 255,
        max_sasl_line_length: int = 8192,
        sasl_mechanisms: Iterable[str] = ("PLAIN",),
        tls_active: bool = False,
    ) -> None:
        if max_line_length < 8 or max_sasl_line_length < max_line_length:
            raise ValueError("line limits too small")
        self.max_line_length = max_line_length
        self.max_sasl_line_length = max_sasl_line_length
        self.sasl_mechanisms = tuple(m.upper() for m in sasl_mechanisms)
        self.tls_active = tls_active
        self.state = State.AUTHORIZATION
        self._buffer = bytearray()
        self._discarding = False
        self._eof = False
        self._pending: _Pending = _Greeting()

    # -- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self.state in (State.STLS_PENDING, State.CLOSED):
            # RFC 2595 4 / RFC 3207 6: nothing sent in clear after STLS may be acted on.
            return
        self._buffer += data

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Unprocessed bytes and whether EOF was seen (for tests and diagnostics)."""
        return bytes(self._buffer), self._eof

    def next_event(self) -> ev.Event | ev._Sentinel:
        """The next command, ``NEED_DATA``, ``PAUSED`` or ``ConnectionClosed``.

        Raises PeerError for a malformed line; the line is consumed and the session must
        ``send(err.reply)`` before asking again.
        """
        if self._pending is not None or self.state is State.STLS_PENDING:
            return ev.PAUSED
        if self.state is State.CLOSED:
            return ev.ConnectionClosed()
        limit = self.max_sasl_line_length if self.state is State.SASL else self.max_line_length
        while True:
            nl = self._buffer.find(b"\n")
            if self._discarding:
                if nl < 0:
                    self._buffer.clear()
                    return ev.ConnectionClosed() if self._eof else ev.NEED_DATA
                del self._buffer[: nl + 1]
                self._discarding = False
                self._fail("Line too long", fatal=False)
            if nl < 0:
                if len(self._buffer) >= self.max_sasl_line_length or (
                    len(self._buffer) >= limit and not self._may_be_auth()
                ):
                    # Throw the line away as it comes; answer once its end arrives, so
                    # its tail is never read as a command.
                    self._buffer.clear()
                    self._discarding = True
                    continue
                if self._eof:
                    self._buffer.clear()
                    return ev.ConnectionClosed()
                return ev.NEED_DATA
            line = bytes(self._buffer[: nl + 1])
            del self._buffer[: nl + 1]
            return self._handle_line(line, limit)

    def _may_be_auth(self) -> bool:
        return self.state is not State.SASL and bytes(self._buffer[:5]).upper() == b"AUTH "

    def _handle_line(self, line: bytes, limit: int) -> ev.Event:
        if len(line) > limit and not (
            len(line) <= self.max_sasl_line_length and line[:5].upper() == b"AUTH "
        ):
            self._fail("Line too long", fatal=False)
        # Bare LF is tolerated as a line end, as most servers do.
        body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        try:
            if self.state is State.SASL:
                command = parse_sasl_response(body)
            else:
                command = parse_command(body, self.state, self.sasl_mechanisms)
        except PeerError as exc:
            self._pending = _Error(exc.fatal)
            if self.state is State.SASL:
                # RFC 5034 4: a response that cannot be decoded fails the exchange.
                self.state = State.AUTHORIZATION
            raise
        if isinstance(command, ev.Stls) and self.tls_active:
            self._fail("Already using TLS", fatal=False)
        self._pending = command
        return command

    def _fail(self, text: str, *, fatal: bool) -> None:
        self._pending = _Error(fatal)
        if self.state is State.SASL:
            self.state = State.AUTHORIZATION
        raise PeerError(Err(text), fatal=fatal)

    # -- output ------------------------------------------------------------------------

    @property
    def pending(self) -> ev.Command | None:
        """The command awaiting its reply, if any."""
        return self._pending if isinstance(self._pending, ev.Command) else None

    def send(self, reply: Reply) -> bytes:
        """Encode the reply to the pending command (or greeting, or error) and advance."""
        return b"".join(self.send_chunks(reply))

    def send_chunks(self, reply: Reply, chunk_size: int = 65536) -> Iterator[bytes]:
        """Like ``send``, but a large multi-line reply comes in pieces (write each in turn).

        The state advances at once, when this is called, not as the pieces are taken.
        """
        self._advance(reply)
        if isinstance(reply, MultiLine):
            return reply.encode_chunks(chunk_size)
        return iter((reply.encode(),))

    def _advance(self, reply: Reply) -> None:
        pending = self._pending
        if pending is None:
            raise LocalProtocolError("no command is waiting for a reply")
        if isinstance(pending, _Greeting):
            if isinstance(reply, Err):
                self.state = State.CLOSED  # a refused greeting ends the connection
            elif not isinstance(reply, Ok):
                raise LocalProtocolError("the greeting is a single +OK or -ERR line")
            self._pending = None
            return
        if isinstance(pending, _Error):
            if not isinstance(reply, Err):
                raise LocalProtocolError("a protocol error must be answered with Err")
            self._pending = None
            if pending.fatal:
                self.state = State.CLOSED
            return

        command_type = type(pending)
        if isinstance(reply, MultiLine) and command_type not in MULTILINE_COMMANDS:
            raise LocalProtocolError(f"{command_type.__name__} has no multi-line reply")
        if isinstance(reply, Continuation) and command_type not in CONTINUABLE_COMMANDS:
            raise LocalProtocolError(f"{command_type.__name__} cannot be continued")
        if isinstance(reply, Continuation):
            outcome = Outcome.CONTINUE
        elif isinstance(reply, Err):
            outcome = Outcome.ERR
        else:
            outcome = Outcome.OK
        self.state = next_state(self.state, command_type, outcome)
        self._pending = None
        if self.state is State.STLS_PENDING:
            # RFC 2595 4: pipelined input after STLS is discarded, never carried into TLS.
            self._buffer.clear()
            self._discarding = False

    def close(self) -> None:
        """Mark the connection closed (the session decided to hang up)."""
        self.state = State.CLOSED
        self._pending = None

    def tls_started(self) -> None:
        """The TLS handshake after STLS finished; the session restarts (RFC 2595 4)."""
        if self.state is not State.STLS_PENDING:
            raise LocalProtocolError("tls_started() without a pending STLS")
        self._buffer.clear()
        self._discarding = False
        self.tls_active = True
        self.state = State.AUTHORIZATION
