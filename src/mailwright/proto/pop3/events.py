"""Events the POP3 server core produces from client bytes (RFC 1939, RFC 2449, RFC 5034).

Every client command is a frozen, slotted dataclass, so tests compare them with ``==``.
``NEED_DATA`` and ``PAUSED`` are the two non-event answers of ``next_event()``, as in h11.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class _Sentinel(Enum):
    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"

    def __repr__(self) -> str:
        return self.value


#: More bytes are needed before the next event can be produced.
NEED_DATA = _Sentinel.NEED_DATA
#: A command is waiting for its reply; send it before asking for the next event.
PAUSED = _Sentinel.PAUSED


@dataclass(frozen=True, slots=True)
class Command:
    """Base class of every client command event."""


@dataclass(frozen=True, slots=True)
class User(Command):
    name: str


@dataclass(frozen=True, slots=True)
class Pass(Command):
    # RFC 1939 7: the argument is the rest of the line, so passwords may hold spaces.
    password: str


@dataclass(frozen=True, slots=True)
class Auth(Command):
    """AUTH with a mechanism (RFC 5034 4), already checked against the offered ones.

    ``initial_response`` is the decoded initial client response, ``b""`` for ``=``, and
    None when the client sent none (the server must then send a continuation).
    """

    mechanism: str
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class AuthList(Command):
    """A bare ``AUTH``: older clients ask for the mechanism list this way (pre-RFC 5034)."""


@dataclass(frozen=True, slots=True)
class AuthResponse(Command):
    """A decoded client line answering a SASL continuation (RFC 5034 4)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthCancel(Command):
    """The client answered a continuation with ``*`` (RFC 5034 4)."""


@dataclass(frozen=True, slots=True)
class Stls(Command):
    pass


@dataclass(frozen=True, slots=True)
class Capa(Command):
    pass


@dataclass(frozen=True, slots=True)
class Quit(Command):
    pass


@dataclass(frozen=True, slots=True)
class Stat(Command):
    pass


@dataclass(frozen=True, slots=True)
class List(Command):
    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Uidl(Command):
    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Retr(Command):
    msg: int


@dataclass(frozen=True, slots=True)
class Top(Command):
    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Dele(Command):
    msg: int


@dataclass(frozen=True, slots=True)
class Noop(Command):
    pass


@dataclass(frozen=True, slots=True)
class Rset(Command):
    pass


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (``receive_data(b"")``)."""


Event = Command | ConnectionClosed
