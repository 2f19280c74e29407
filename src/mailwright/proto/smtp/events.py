"""Events the SMTP core emits (RFC 5321 3, 4.1).

Events marked "answer" leave the core paused until the session calls `accept()` or
`reject(reply)`; the others are information the session acts on without replying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from .address import Path


class _Sentinel(Enum):
    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"


#: `next_event()` needs more bytes from the peer before it can say anything more.
NEED_DATA: Final = _Sentinel.NEED_DATA
#: `next_event()` waits for the session's answer to the event it returned last.
PAUSED: Final = _Sentinel.PAUSED


@dataclass(frozen=True, slots=True)
class Hello:
    """EHLO or HELO (RFC 5321 4.1.1.1); answer. `valid` says the name is a Domain or literal."""

    name: str
    extended: bool
    valid: bool


@dataclass(frozen=True, slots=True)
class MailParams:
    """MAIL FROM parameters, parsed and kept (RFC 1870, 6152, 6531, 3461, 4954 5)."""

    size: int | None = None
    body: str | None = None  # "7BIT" or "8BITMIME"
    smtputf8: bool = False
    ret: str | None = None  # RFC 3461 4.3: "FULL" or "HDRS"
    envid: str | None = None  # RFC 3461 4.4, xtext-decoded
    auth: str | None = None  # RFC 4954 5, xtext-decoded, "<>" when unknown
    requiretls: bool = False  # RFC 8689 4: the message must only travel over verified TLS


@dataclass(frozen=True, slots=True)
class RcptParams:
    """RCPT TO parameters (RFC 3461 4.1, 4.2)."""

    notify: tuple[str, ...] | None = None  # ("NEVER",) or any of SUCCESS, FAILURE, DELAY
    orcpt: tuple[str, str] | None = None  # (addr-type, xtext-decoded address)


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM (RFC 5321 4.1.1.2); answer. `path` is None for the null reverse-path <>."""

    path: Path | None
    params: MailParams = field(default_factory=MailParams)


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO (RFC 5321 4.1.1.3); answer."""

    path: Path
    params: RcptParams = field(default_factory=RcptParams)


@dataclass(frozen=True, slots=True)
class MessageStart:
    """DATA, or the first BDAT of a transaction (RFC 3030); answer.

    Accepting a DATA sends 354; accepting a BDAT lets its chunk through. Rejecting a BDAT
    still consumes the chunk's octets, as RFC 3030 2 requires.
    """

    chunking: bool


@dataclass(frozen=True, slots=True)
class DataChunk:
    """Message octets, dot-unstuffed, in order; information."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """The end of the message (<CRLF>.<CRLF> or BDAT LAST); answer.

    The reply to accept is the final word on the message: RFC 5321 4.1.1.4 and issue 3 say
    250 only once the message is durably stored. `bare_lf` says the content had LF without CR
    (stored messages are canonicalised to CRLF at ingest).
    """

    size: int
    bare_lf: bool


@dataclass(frozen=True, slots=True)
class MessageAborted:
    """The message will not be delivered (too big, bare CR, session abort); information.

    The core keeps consuming the message's octets and sends `reply` when they end; the session
    only drops what it had started storing.
    """

    reply_text: str


@dataclass(frozen=True, slots=True)
class BdatChunkEnd:
    """A non-LAST BDAT chunk was read completely (RFC 3030 2); information.

    The core answers 250 itself; a session that must refuse (disk full) calls
    `abort_message()` before asking for the next event.
    """

    size: int


@dataclass(frozen=True, slots=True)
class TransactionReset:
    """The mail transaction is gone (RSET, EHLO/HELO, STARTTLS, failure); information."""


@dataclass(frozen=True, slots=True)
class AuthCredentials:
    """A SASL exchange produced credentials to check (RFC 4954 4); answer.

    Accepting sends 235 2.7.0, rejecting with `AUTH_FAILED` sends 535 5.7.8.
    """

    mechanism: str
    authzid: str
    authcid: str
    password: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    """STARTTLS was accepted and 220 queued (RFC 3207 4); information.

    The adapter flushes `data_to_send()`, runs the handshake on the raw socket (discarding any
    plaintext it had read ahead) and then calls `tls_started()`.
    """


@dataclass(frozen=True, slots=True)
class Verify:
    """VRFY (RFC 5321 3.5.3); information, the core already answered 252."""

    argument: str


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT was answered with 221; the adapter flushes and closes."""


@dataclass(frozen=True, slots=True)
class ConnectionClosing:
    """The core ended the session itself (421 after too many errors); flush and close."""

    reason: str


@dataclass(frozen=True, slots=True)
class BurlPart:
    """``BURL url [LAST]`` (RFC 4468 3): the message goes on with the data the URL names;
    answer with `burl_data(data)` once resolved, or `reject(reply)` (554, RFC 4468 6)."""

    url: str
    last: bool


Event = (
    Hello
    | MailFrom
    | RcptTo
    | MessageStart
    | DataChunk
    | MessageEnd
    | MessageAborted
    | BdatChunkEnd
    | TransactionReset
    | AuthCredentials
    | StartTLS
    | Verify
    | Quit
    | ConnectionClosing
    | BurlPart
)
