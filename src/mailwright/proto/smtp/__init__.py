"""SMTP server protocol core, sans-I/O (RFC 5321 and the extensions issue 3 lists).

`ServerConnection` takes bytes and gives events (`events`), the session answers with
`accept()`/`reject()`, and replies (`replies.Reply`) come back out as bytes. `state` holds the
one transition table; `address` parses envelope paths; `data` reads message content.
"""

from __future__ import annotations

from .address import Path, PathError, parse_path
from .errors import LocalProtocolError, SMTPProtocolError
from .events import (
    NEED_DATA,
    PAUSED,
    AuthCredentials,
    BdatChunkEnd,
    BurlPart,
    ConnectionClosing,
    DataChunk,
    Event,
    Hello,
    MailFrom,
    MailParams,
    MessageAborted,
    MessageEnd,
    MessageStart,
    Quit,
    RcptParams,
    RcptTo,
    StartTLS,
    TransactionReset,
    Verify,
)
from .replies import Reply
from .server import ServerConnection
from .state import State

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "AuthCredentials",
    "BdatChunkEnd",
    "BurlPart",
    "ConnectionClosing",
    "DataChunk",
    "Event",
    "Hello",
    "LocalProtocolError",
    "MailFrom",
    "MailParams",
    "MessageAborted",
    "MessageEnd",
    "MessageStart",
    "Path",
    "PathError",
    "Quit",
    "RcptParams",
    "RcptTo",
    "Reply",
    "SMTPProtocolError",
    "ServerConnection",
    "StartTLS",
    "State",
    "TransactionReset",
    "Verify",
    "parse_path",
]
