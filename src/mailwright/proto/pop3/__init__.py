"""POP3 server protocol core, sans-I/O (RFC 1939, RFC 2449, RFC 2595, RFC 5034).

Stdlib only: bytes in, command events out, replies encoded to bytes.  The session logic
lives in ``mailwright.pop3d``; this package knows nothing of sockets or the store.
"""

from __future__ import annotations

from .connection import ServerConnection
from .errors import LocalProtocolError, PeerError, Pop3Error
from .events import (
    NEED_DATA,
    PAUSED,
    Auth,
    AuthCancel,
    AuthList,
    AuthResponse,
    Capa,
    Command,
    ConnectionClosed,
    Dele,
    Event,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)
from .message import top
from .replies import Code, Continuation, DotStuffer, Err, MultiLine, Ok, Reply, capabilities
from .state import State

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "Auth",
    "AuthCancel",
    "AuthList",
    "AuthResponse",
    "Capa",
    "Code",
    "Command",
    "ConnectionClosed",
    "Continuation",
    "Dele",
    "DotStuffer",
    "Err",
    "Event",
    "List",
    "LocalProtocolError",
    "MultiLine",
    "Noop",
    "Ok",
    "Pass",
    "PeerError",
    "Pop3Error",
    "Quit",
    "Reply",
    "Retr",
    "Rset",
    "ServerConnection",
    "Stat",
    "State",
    "Stls",
    "Top",
    "Uidl",
    "User",
    "capabilities",
    "top",
]
