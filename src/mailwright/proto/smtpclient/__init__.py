"""Sans-I/O SMTP client core (RFC 5321 with RFC 1870 SIZE, RFC 2920 PIPELINING, RFC 3207
STARTTLS, RFC 3461 DSN, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8).

stdlib only: bytes in, events out. The asyncio driver lives in ``mailwright.queue.smtp``.
"""

from __future__ import annotations

from .connection import (
    NEED_DATA,
    ClientConnection,
    ClientState,
    Command,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfData,
    Event,
    Greeting,
    Helo,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Response,
    Rset,
    StartTLS,
)
from .data import DotStuffer, MessageTraits, scan_message, stuff
from .envelope import Envelope, Recipient, mail_params, rcpt_params, xtext_encode
from .errors import DeliveryRefused, LocalProtocolError, RemoteProtocolError
from .replies import Extensions, Reply, ReplyParser

__all__ = [
    "NEED_DATA",
    "ClientConnection",
    "ClientState",
    "Command",
    "ConnectionClosed",
    "Data",
    "DeliveryRefused",
    "DotStuffer",
    "Ehlo",
    "EndOfData",
    "Envelope",
    "Event",
    "Extensions",
    "Greeting",
    "Helo",
    "LocalProtocolError",
    "Mail",
    "MessageTraits",
    "Noop",
    "Quit",
    "Rcpt",
    "Recipient",
    "RemoteProtocolError",
    "Reply",
    "ReplyParser",
    "Response",
    "Rset",
    "StartTLS",
    "mail_params",
    "rcpt_params",
    "scan_message",
    "stuff",
    "xtext_encode",
]
