"""Sans-I/O IMAP4rev2/IMAP4rev1 server core (RFC 9051, RFC 3501): grammar, state, responses."""

from __future__ import annotations

from mailwright.proto.imap.connection import (
    NEED_DATA,
    PAUSED,
    AppendData,
    AppendEnd,
    AppendMessageEnd,
    AppendMessageStart,
    ContinuationRequest,
    IdleDone,
    ImapConnection,
    SaslResponse,
)
from mailwright.proto.imap.errors import ImapInternalError, ProtocolError
from mailwright.proto.imap.state import State, check_allowed, next_state

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "AppendData",
    "AppendEnd",
    "AppendMessageEnd",
    "AppendMessageStart",
    "ContinuationRequest",
    "IdleDone",
    "ImapConnection",
    "ImapInternalError",
    "ProtocolError",
    "SaslResponse",
    "State",
    "check_allowed",
    "next_state",
]
