"""The client side of one SMTP connection, sans-I/O (RFC 5321, RFC 2920, RFC 3207).

Theory of operation. The caller sends commands with ``send(command) -> bytes`` and writes the
bytes; it feeds whatever the server sends to ``receive_data`` and drains ``next_event()``, which
gives ``Greeting`` first, then one ``Response(command, reply)`` per command in the order the
commands were sent. Pairing replies with commands through a FIFO is what makes PIPELINING
(RFC 2920) work: a driver may send MAIL, every RCPT and DATA at once and still know which reply
belongs to which recipient.

The client's state moves when a command is sent and again when its reply arrives; every legal
move is in ``_SEND`` and ``_on_reply`` below. Commands that must stand alone in a pipeline group
(EHLO, HELO, STARTTLS, DATA, QUIT: RFC 2920 3.1) put the state in a waiting state in which
nothing may be sent until their reply has come.

After a 220 to STARTTLS the caller performs the TLS handshake and calls ``tls_established()``;
everything learnt from the earlier EHLO is forgotten and EHLO must be sent again (RFC 3207 4.2).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .data import DotStuffer
from .errors import LocalProtocolError, RemoteProtocolError
from .replies import Extensions, Reply, ReplyParser

__all__ = [
    "NEED_DATA",
    "ClientConnection",
    "ClientState",
    "Command",
    "ConnectionClosed",
    "Data",
    "Ehlo",
    "Event",
    "Greeting",
    "Helo",
    "Mail",
    "Noop",
    "Quit",
    "Rcpt",
    "Response",
    "Rset",
    "StartTLS",
]


# -- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ehlo:
    hostname: str


@dataclass(frozen=True, slots=True)
class Helo:
    hostname: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    pass


@dataclass(frozen=True, slots=True)
class Mail:
    sender: str  # "" is the null reverse-path
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rcpt:
    address: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Data:
    pass


@dataclass(frozen=True, slots=True)
class Rset:
    pass


@dataclass(frozen=True, slots=True)
class Noop:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class EndOfData:
    """Stands for the final "." line in the reply FIFO; sent with ``end_data()``."""


Command: TypeAlias = Ehlo | Helo | StartTLS | Mail | Rcpt | Data | Rset | Noop | Quit

# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Greeting:
    """The server's opening reply (RFC 5321 3.1); 220 means go on, anything else means leave."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Response:
    """The reply to ``command``; ``EndOfData`` stands for the end of the message text."""

    command: Command | EndOfData
    reply: Reply


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The server closed the connection; ``unanswered`` commands never got a reply."""

    unanswered: int = 0


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Literal[_NeedData.NEED_DATA] = _NeedData.NEED_DATA

Event: TypeAlias = Greeting | Response | ConnectionClosed


class ClientState(enum.Enum):
    GREETING = "greeting"  # waiting for the 220
    HELLO = "hello"  # must send EHLO or HELO
    HELLO_WAIT = "hello-wait"  # EHLO/HELO sent
    READY = "ready"  # no transaction in progress
    TLS_WAIT = "tls-wait"  # STARTTLS sent
    TLS = "tls"  # 220 to STARTTLS: the caller does the handshake now
    TRANSACTION = "transaction"  # MAIL sent, RCPT and DATA may follow
    DATA_WAIT = "data-wait"  # DATA sent, waiting for 354
    DATA = "data"  # sending the message text
    DATA_END_WAIT = "data-end-wait"  # "." sent, waiting for the final reply
    QUIT = "quit"  # QUIT sent
    CLOSED = "closed"


S = ClientState

# Which command may be sent in which state, and the state it leads to.
_SEND: dict[ClientState, dict[type, ClientState]] = {
    S.HELLO: {Ehlo: S.HELLO_WAIT, Helo: S.HELLO_WAIT, Noop: S.HELLO, Rset: S.HELLO, Quit: S.QUIT},
    S.READY: {
        Ehlo: S.HELLO_WAIT,
        Helo: S.HELLO_WAIT,
        StartTLS: S.TLS_WAIT,
        Mail: S.TRANSACTION,
        Rset: S.READY,
        Noop: S.READY,
        Quit: S.QUIT,
    },
    S.TRANSACTION: {Rcpt: S.TRANSACTION, Data: S.DATA_WAIT, Rset: S.READY, Noop: S.TRANSACTION,
                    Quit: S.QUIT},
    S.GREETING: {Quit: S.QUIT},
    S.TLS: {},
    S.HELLO_WAIT: {},
    S.TLS_WAIT: {},
    S.DATA_WAIT: {},
    S.DATA: {},
    S.DATA_END_WAIT: {},
    S.QUIT: {},
    S.CLOSED: {},
}


def _encode(command: Command) -> bytes:
    match command:
        case Ehlo(hostname):
            line = f"EHLO {hostname}"
        case Helo(hostname):
            line = f"HELO {hostname}"
        case StartTLS():
            line = "STARTTLS"
        case Mail(sender, params):
            line = " ".join([f"MAIL FROM:<{sender}>", *params])
        case Rcpt(address, params):
            line = " ".join([f"RCPT TO:<{address}>", *params])
        case Data():
            line = "DATA"
        case Rset():
            line = "RSET"
        case Noop():
            line = "NOOP"
        case Quit():
            line = "QUIT"
    if any(c in line for c in "\r\n\0"):
        raise LocalProtocolError(f"control character in command {line!r}")
    # RFC 6531 3.3: UTF-8 is sent as is once SMTPUTF8 was given on MAIL.
    return line.encode("utf-8") + b"\r\n"


class ClientConnection:
    """One SMTP client connection's protocol state (see the module docstring)."""

    def __init__(self, *, max_reply_line: int = 4096, max_reply_lines: int = 128) -> None:
        self._parser = ReplyParser(max_line_length=max_reply_line, max_lines=max_reply_lines)
        self._pending: deque[Command | EndOfData] = deque()
        self._state = S.GREETING
        self._greeted = False
        self._eof = False
        self._closed_reported = False
        self._stuffer: DotStuffer | None = None
        self.extensions: Extensions | None = None  # None until a successful EHLO
        self.greeting: Reply | None = None

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def unanswered(self) -> int:
        """Commands sent whose reply has not been read yet."""
        return len(self._pending)

    # -- sending -------------------------------------------------------------------------------

    def send(self, command: Command) -> bytes:
        allowed = _SEND[self._state]
        target = allowed.get(type(command))
        if target is None:
            raise LocalProtocolError(f"{type(command).__name__} not allowed in state {self._state.value}")
        data = _encode(command)
        self._pending.append(command)
        self._state = target
        return data

    def send_data(self, chunk: bytes) -> bytes:
        """Message text after the 354, dot-stuffed and with CRLF line endings."""
        if self._state is not S.DATA or self._stuffer is None:
            raise LocalProtocolError("message data outside DATA")
        return self._stuffer.feed(chunk)

    def end_data(self) -> bytes:
        if self._state is not S.DATA or self._stuffer is None:
            raise LocalProtocolError("end of data outside DATA")
        data = self._stuffer.end()
        self._stuffer = None
        self._pending.append(EndOfData())
        self._state = S.DATA_END_WAIT
        return data

    def tls_established(self) -> None:
        """The TLS handshake after STARTTLS succeeded: start over with EHLO (RFC 3207 4.2)."""
        if self._state is not S.TLS:
            raise LocalProtocolError("tls_established() without a 220 to STARTTLS")
        self.extensions = None
        self._state = S.HELLO

    # -- receiving -----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; ``b""`` means the server closed the connection."""
        if not data:
            self._eof = True
        else:
            self._parser.receive_data(data)

    def next_event(self) -> Event | Literal[_NeedData.NEED_DATA]:
        if self._state is S.CLOSED and self._closed_reported:
            return ConnectionClosed(len(self._pending))
        reply = self._parser.next_reply()
        if reply is None:
            if self._eof:
                self._state = S.CLOSED
                self._closed_reported = True
                return ConnectionClosed(len(self._pending))
            return NEED_DATA
        if not self._greeted:
            self._greeted = True
            self.greeting = reply
            if self._state is S.GREETING:
                self._state = S.HELLO
            return Greeting(reply)
        if not self._pending:
            if reply.code == 421:
                # RFC 5321 3.8: a server may send 421 at any time before closing.
                self._state = S.CLOSED
                return Response(Noop(), reply)
            raise RemoteProtocolError(f"unexpected reply with no command pending: {reply}")
        command = self._pending.popleft()
        self._on_reply(command, reply)
        return Response(command, reply)

    def _on_reply(self, command: Command | EndOfData, reply: Reply) -> None:
        if reply.code == 421:
            # RFC 5321 4.2.2: service closing; nothing more will be answered.
            self._state = S.CLOSED
            return
        match command:
            case Ehlo():
                if reply.is_positive:
                    self.extensions = Extensions.from_reply(reply)
                    self._state = S.READY
                else:
                    self._state = S.HELLO
            case Helo():
                self.extensions = Extensions() if reply.is_positive else None
                self._state = S.READY if reply.is_positive else S.HELLO
            case StartTLS():
                self._state = S.TLS if reply.code == 220 else S.READY
            case Data():
                if reply.code == 354:
                    self._state = S.DATA
                    self._stuffer = DotStuffer()
                else:
                    self._state = S.READY
            case EndOfData():
                self._state = S.READY
            case Quit():
                self._state = S.CLOSED
            case _:
                pass
