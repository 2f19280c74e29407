"""SMTP replies (RFC 5321 4.2) with enhanced status codes (RFC 2034, RFC 3463).

A reply is a value: the core and the session build them, `encode()` turns them into the exact
bytes for the wire. Text is sanitised at construction so that no caller can smuggle a CR or LF
into a reply line (which would let a peer-controlled string forge a second reply).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 3463 2: class.subject.detail, class in {2,4,5}, subject and detail up to three digits.
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def _clean(line: str) -> str:
    # RFC 5321 4.2: reply text is printable; control characters never reach the wire.
    return _UNSAFE.sub("?", line)


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply, possibly multi-line (RFC 5321 4.2.1)."""

    code: int
    enhanced: str | None = None
    text: str | tuple[str, ...] = ""

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code out of range: {self.code}")
        if self.enhanced is not None:
            if not _ENHANCED.match(self.enhanced):
                raise ValueError(f"malformed enhanced status code {self.enhanced!r}")
            if int(self.enhanced[0]) != self.code // 100:
                raise ValueError(f"enhanced code {self.enhanced} does not match {self.code}")

    @property
    def lines(self) -> tuple[str, ...]:
        if isinstance(self.text, str):
            parts = tuple(self.text.splitlines()) or ("",)
        else:
            parts = self.text or ("",)
        return tuple(_clean(p) for p in parts)

    @property
    def is_positive(self) -> bool:
        return self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    def encode(self) -> bytes:
        lines = self.lines
        out = []
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            # RFC 2034 3: the enhanced code starts the text of every line of the reply.
            if self.enhanced:
                body = f"{self.enhanced} {line}" if line else self.enhanced
            else:
                # RFC 4954 4: "334" SP [base64]; the space stays even when nothing follows.
                body = line
            out.append(f"{self.code}{sep}{body}\r\n")
        return "".join(out).encode("utf-8")

    def __str__(self) -> str:
        return self.encode().decode("utf-8").rstrip("\r\n")


# Replies the core itself sends. Names say what happened, codes follow RFC 5321 4.2.3/4.3.2 and
# the RFC 3463 registry; the texts follow Postfix, which clients and people recognise.
OK = Reply(250, "2.0.0", "Ok")
SENDER_OK = Reply(250, "2.1.0", "Ok")
RECIPIENT_OK = Reply(250, "2.1.5", "Ok")
START_DATA = Reply(354, None, "End data with <CR><LF>.<CR><LF>")
QUEUED = Reply(250, "2.0.0", "Ok: queued")
BYE = Reply(221, "2.0.0", "Bye")
VRFY_CANNOT = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
HELP = Reply(214, "2.0.0", "See RFC 5321 and https://www.rfc-editor.org/")
READY_TLS = Reply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
AUTH_FAILED = Reply(535, "5.7.8", "Error: authentication failed")
AUTH_CANCELLED = Reply(501, "5.7.0", "Authentication aborted")
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "Cannot decode response")
AUTH_LINE_TOO_LONG = Reply(500, "5.5.6", "Authentication exchange line is too long")
AUTH_UNKNOWN_MECH = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_NOT_ENABLED = Reply(503, "5.5.1", "Error: authentication not enabled")
AUTH_ALREADY = Reply(503, "5.5.1", "Error: already authenticated")
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "Error: MAIL transaction in progress")

UNKNOWN_COMMAND = Reply(500, "5.5.2", "Error: command not recognized")
BAD_SYNTAX = Reply(500, "5.5.2", "Error: bad syntax")
LINE_TOO_LONG = Reply(500, "5.5.2", "Error: line too long")
BAD_UTF8 = Reply(500, "5.5.2", "Error: command is not valid UTF-8")
NUL_IN_COMMAND = Reply(500, "5.5.2", "Error: NUL character in command")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Error: command not implemented")
NEED_HELO = Reply(503, "5.5.1", "Error: send HELO/EHLO first")
NEED_MAIL = Reply(503, "5.5.1", "Error: need MAIL command")
NEED_RCPT = Reply(503, "5.5.1", "Error: need RCPT command")
NESTED_MAIL = Reply(503, "5.5.1", "Error: nested MAIL command")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "Error: no valid recipients")
BDAT_IN_PROGRESS = Reply(503, "5.5.1", "Error: BDAT transaction in progress, DATA not allowed")
BDAT_FAILED = Reply(503, "5.5.1", "Error: no transaction for this BDAT chunk")
TLS_ALREADY = Reply(503, "5.5.1", "Error: TLS already active")
TLS_NOT_AVAILABLE = Reply(502, "5.5.1", "Error: STARTTLS not available")
REJECTING_SESSION = Reply(503, "5.5.1", "Error: this session is refused, send QUIT")
HELO_SYNTAX = Reply(501, "5.5.4", "Syntax: EHLO hostname")
NO_PARAMETERS = Reply(501, "5.5.4", "Syntax error: no parameters allowed")
MAIL_SYNTAX = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
RCPT_SYNTAX = Reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
BAD_SENDER = Reply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT = Reply(501, "5.1.3", "Bad recipient address syntax")
UTF8_NOT_ALLOWED = Reply(553, "5.6.7", "Error: non-ASCII address requires SMTPUTF8")
UNKNOWN_PARAMETER = Reply(555, "5.5.4", "Unsupported option")
# RFC 8689 4.1: REQUIRETLS is only for a session that is itself under TLS
REQUIRETLS_NEEDS_TLS = Reply(530, "5.7.10", "REQUIRETLS needs a TLS session")
BAD_PARAMETER = Reply(501, "5.5.4", "Bad parameter value")
DUPLICATE_PARAMETER = Reply(501, "5.5.4", "Duplicate parameter")
BINARYMIME = Reply(555, "5.5.4", "Error: BODY=BINARYMIME is not supported")
TOO_BIG = Reply(552, "5.3.4", "Error: message file too big")
BURL_SYNTAX = Reply(501, "5.5.4", "Syntax: BURL imap-url [LAST]")
BURL_NEEDS_AUTH = Reply(530, "5.7.0", "Authentication required for BURL")  # RFC 4468 3
BAD_URL = Reply(554, "5.7.8", "Error: URL cannot be resolved")  # RFC 4468 6
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Error: too many recipients")
BARE_CR = Reply(550, "5.6.0", "Error: bare <CR> in message content (RFC 5321 2.3.8)")
BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax: BDAT size [LAST]")
VRFY_SYNTAX = Reply(501, "5.5.4", "Syntax: VRFY address")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Error: too many errors")
