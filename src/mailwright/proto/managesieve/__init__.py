"""ManageSieve (RFC 5804) server core, sans-I/O: bytes in, commands out; replies to bytes.

`ServerConnection` frames commands (atoms, quoted strings, literals, numbers) with bounded
lines and literals; `replies` encodes OK/NO/BYE with response codes, and the string forms.
The session logic (`mailwright.managesieved`) decides what each command means.
"""

from __future__ import annotations

from .connection import (
    NEED_DATA,
    Command,
    ConnectionClosed,
    PeerError,
    SaslResponse,
    ServerConnection,
)
from .replies import Reply, bye, literal, no, ok, quoted, string

__all__ = [
    "NEED_DATA", "Command", "ConnectionClosed", "PeerError", "Reply", "SaslResponse",
    "ServerConnection", "bye", "literal", "no", "ok", "quoted", "string",
]
