"""The SMTP server connection: bytes in, events and replies out (RFC 5321, sans-I/O).

House rules:
- The core never blocks and never does I/O. The adapter calls `receive_data()`, drains
  `next_event()` until NEED_DATA, answers the events that need an answer with `accept()` or
  `reject()`, and writes `data_to_send()` whenever it is about to wait for the peer (RFC 2920 3.1:
  a server answering a pipelined group may batch its replies until it would block).
- Syntax and sequence are decided here; policy (who may send, who exists, whether the message is
  stored) is the session's, asked through events that pause the core until answered.
- Every reply goes out through `_send()`, which counts errors (RFC 5321 4.3.2 lets a server end a
  session that keeps failing) and never lets text reach the wire unsanitised.
- An `SMTPProtocolError` raised anywhere below a command becomes that command's reply; nothing
  the peer sends can make an exception leave `next_event()`.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from enum import Enum

from .. import sasl
from . import replies as R
from .address import is_address_literal, is_domain
from .commands import parse_bdat, parse_burl, parse_mail, parse_rcpt, split_verb
from .data import DotReader, LineEndingCheck
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
    MessageAborted,
    MessageEnd,
    MessageStart,
    Quit,
    RcptTo,
    StartTLS,
    TransactionReset,
    Verify,
    _Sentinel,
)
from .state import ACCEPTED, COMMAND_STATES, COMMANDS, IN_TRANSACTION, RESETTING, State, reset_state

# RFC 5321 4.5.3.1.4-6: command lines are 512 octets, extensions may add to that; issue 3 sets
# 1,000 including CRLF, the text line limit. RFC 4954 4: AUTH lines up to 12,288 octets.
DEFAULT_MAX_LINE = 1000
DEFAULT_MAX_AUTH_LINE = 12288
DEFAULT_MAX_RECIPIENTS = 100  # RFC 5321 4.5.3.1.8 asks for at least 100
DEFAULT_MAX_ERRORS = 20  # Postfix smtpd_hard_error_limit
# Recipients past the limit are answered 452 without counting as errors (RFC 5321 4.5.3.1.10:
# the client sends them in another transaction); only this many more in one transaction start
# counting, so an endless RCPT stream still ends (Postfix smtpd_recipient_overshoot_limit).
DEFAULT_MAX_RECIPIENT_OVERSHOOT = 1000


class _Wait(Enum):
    """What the session's next `accept()`/`reject()` answers."""

    HELLO = "HELLO"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA_START = "DATA_START"
    BDAT_START = "BDAT_START"
    BDAT_CHUNK = "BDAT_CHUNK"
    MESSAGE_END = "MESSAGE_END"
    AUTH = "AUTH"
    BURL = "BURL"


def _printable_token(text: str) -> bool:
    return bool(text) and all(c.isprintable() and not c.isspace() for c in text)


class ServerConnection:
    """One SMTP server session's protocol state.

    Limits and offered extensions are constructor arguments; the ones that depend on the
    connection (TLS, AUTH) can be changed by the session through the attributes
    `tls_active` and `authenticated`, the rest stay fixed.
    """

    def __init__(
        self,
        hostname: str,
        *,
        max_message_size: int | None = 50 * 1024 * 1024,
        max_recipients: int = DEFAULT_MAX_RECIPIENTS,
        max_line_length: int = DEFAULT_MAX_LINE,
        max_auth_line_length: int = DEFAULT_MAX_AUTH_LINE,
        max_errors: int = DEFAULT_MAX_ERRORS,
        max_recipient_overshoot: int = DEFAULT_MAX_RECIPIENT_OVERSHOOT,
        tls_active: bool = False,
        starttls: bool = False,
        auth_mechanisms: tuple[str, ...] = (),
        auth_requires_tls: bool = True,
        chunking: bool = True,
        smtputf8: bool = True,
        dsn: bool = True,
        reject_bare_cr: bool = True,
        helo_required: bool = True,
        requiretls: bool = False,
        burl: bool = False,
    ) -> None:
        if not _printable_token(hostname):
            raise ValueError(f"hostname must be one printable token: {hostname!r}")
        for mech in auth_mechanisms:
            if sasl.server_mechanism(mech) is None:
                raise ValueError(f"SASL mechanism {mech!r} is not implemented")
        self.hostname = hostname
        self.max_message_size = max_message_size
        self.max_recipients = max_recipients
        self.max_line_length = max_line_length
        self.max_auth_line_length = max_auth_line_length
        self.max_errors = max_errors
        self.max_recipient_overshoot = max_recipient_overshoot
        self.tls_active = tls_active
        self.starttls = starttls
        self.auth_mechanisms = tuple(m.upper() for m in auth_mechanisms)
        self.auth_requires_tls = auth_requires_tls
        self.chunking = chunking
        self.smtputf8 = smtputf8
        self.dsn = dsn
        self.reject_bare_cr = reject_bare_cr
        # RFC 5321 4.1.4 lets a server insist on EHLO/HELO before MAIL; Postfix does not by
        # default (smtpd_helo_required = no), which lets policy answer first (530 on submission).
        self.helo_required = helo_required
        # RFC 8689: offered (on TLS sessions only) when the queue behind us can honour it
        self.requiretls = requiretls
        # RFC 4468: BURL with IMAP URLs, offered (and taken) only once authenticated
        self.burl = burl

        self.state = State.START
        self.hello: Hello | None = None
        self.authenticated = False
        self.errors = 0
        self._in = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._wait: _Wait | None = None
        self._wait_from = State.START
        self._hello_pending: Hello | None = None
        self._eof = False
        self._skipping_long_line = False
        # Transaction.
        self._tx_smtputf8 = False
        self._rcpt_accepted = 0
        self._rcpt_tried = 0
        self._rcpt_overshoot = 0
        self._size = 0
        self._dot: DotReader | None = None
        self._endings = LineEndingCheck()
        self._abort: R.Reply | None = None
        # BDAT chunk being read.
        self._chunk_left = 0
        self._chunk_size = 0
        self._chunk_last = False
        self._chunk_error: R.Reply | None = None
        self._after_chunk_error = State.INITIAL
        # BURL: the part waiting for MessageStart to be accepted (RFC 4468 3)
        self._burl_pending: BurlPart | None = None
        self._burl_last = False
        # SASL exchange.
        self._mech: sasl.ServerMechanism | None = None

    # ----------------------------------------------------------------- public API

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def auth_offered(self) -> bool:
        return bool(self.auth_mechanisms) and (self.tls_active or not self.auth_requires_tls)

    def ehlo_keywords(self) -> list[str]:
        """The extensions this connection advertises now (RFC 5321 4.1.1.1)."""
        words = ["PIPELINING"]
        words.append(f"SIZE {self.max_message_size}" if self.max_message_size else "SIZE")
        words.append("8BITMIME")
        if self.smtputf8:
            words.append("SMTPUTF8")
        words.append("ENHANCEDSTATUSCODES")
        if self.chunking:
            words.append("CHUNKING")
        if self.dsn:
            words.append("DSN")
        if self.starttls and not self.tls_active:
            words.append("STARTTLS")
        if self.requiretls and self.tls_active:
            # RFC 8689 2: offered only where it can be honoured, on a TLS session
            words.append("REQUIRETLS")
        if self.auth_offered and not self.authenticated:
            words.append("AUTH " + " ".join(self.auth_mechanisms))
        if self.burl and self.authenticated:
            words.append("BURL imap")  # RFC 4468 3: IMAP URLs, after AUTH
        return words

    def greet(self, reply: R.Reply | None = None) -> None:
        """Send the greeting (RFC 5321 3.1). 554 refuses the session but waits for QUIT;
        421 closes it at once."""
        if self.state is not State.START:
            raise LocalProtocolError("greet() twice")
        reply = reply or R.Reply(220, None, f"{self.hostname} ESMTP")
        self._write(reply)
        if reply.code == 220:
            self.state = State.INITIAL
        elif reply.code == 421:
            self.state = State.CLOSED
        else:
            self.state = State.REJECTING

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self.state in (State.TLS_PENDING, State.CLOSED):
            # RFC 3207 4.2 / CVE-2011-0411: nothing sent in plaintext after STARTTLS counts.
            return
        self._in += data

    def data_to_send(self) -> bytes:
        """The replies queued so far, removed from the queue."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | _Sentinel:
        """The next event, or NEED_DATA, or PAUSED while an event awaits `accept`/`reject`."""
        while True:
            if self._events:
                return self._events.popleft()
            if self._wait is not None:
                return PAUSED
            if self.state is State.CLOSED:
                return NEED_DATA
            if not self._step():
                if self._events:
                    continue
                if self._eof:
                    self._lost()
                    continue
                return NEED_DATA

    def accept(self, reply: R.Reply | None = None) -> None:
        """Say yes to the event that paused the core; `reply` overrides the default text."""
        wait = self._take_wait()
        if wait is _Wait.HELLO:
            self.hello, self._hello_pending = self._hello_pending, None
            self.state = State.READY
            self._write(reply or self._hello_reply())
            return
        if wait is _Wait.MAIL:
            self.state = ACCEPTED[(self._wait_from, "MAIL")]
            self._write(reply or R.SENDER_OK)
            return
        if wait is _Wait.RCPT:
            self.state = ACCEPTED[(self._wait_from, "RCPT")]
            self._rcpt_accepted += 1
            self._write(reply or R.RECIPIENT_OK)
            return
        if wait is _Wait.DATA_START:
            self.state = ACCEPTED[(self._wait_from, "DATA")]
            self._begin_message()
            self._dot = DotReader()
            self._write(reply or R.START_DATA)
            return
        if wait is _Wait.BDAT_START:
            self._begin_message()
            if self._burl_pending is not None:
                part, self._burl_pending = self._burl_pending, None
                self.state = State.BDAT
                self._burl_last = part.last
                self._pause(_Wait.BURL, part)
                return
            self.state = ACCEPTED[(self._wait_from, "BDAT")]
            return
        if wait is _Wait.BDAT_CHUNK:
            self.state = State.BDAT
            self._write(reply or R.Reply(250, "2.0.0", f"Ok: {self._chunk_size} octets received"))
            return
        if wait is _Wait.MESSAGE_END:
            self._end_transaction()
            self._write(reply or R.QUEUED)
            return
        if wait is _Wait.AUTH:
            self.authenticated = True
            self.state = reset_state(True)
            self._write(reply or R.AUTH_OK)
            return
        raise AssertionError(wait)

    def reject(self, reply: R.Reply) -> None:
        """Say no to the event that paused the core, with the reply the client gets."""
        if reply.is_positive:
            raise LocalProtocolError("reject() needs a 4xx or 5xx reply")
        wait = self._take_wait()
        if wait is _Wait.BDAT_START and self._burl_pending is not None:
            # a BURL has no octets of its own to skip
            self._burl_pending = None
            self._end_transaction()
            self._send(reply)
            return
        if wait is _Wait.BDAT_START:
            # RFC 3030 2: the chunk is read and thrown away; the transaction is over.
            self._end_transaction()
            self._chunk_error = reply
            self._after_chunk_error = self.state
            self.state = State.BDAT_CHUNK
            return
        if wait in (_Wait.BDAT_CHUNK, _Wait.MESSAGE_END, _Wait.BURL):
            self._end_transaction()
        elif wait is _Wait.AUTH:
            self.state = reset_state(True)
        elif wait is _Wait.HELLO:
            self._hello_pending = None
            self.state = reset_state(self.hello is not None)
        self._send(reply)

    def abort_message(self, reply: R.Reply) -> None:
        """Refuse the message being received (disk full, quota); the core reads it to its end
        and then sends `reply`."""
        if reply.is_positive:
            raise LocalProtocolError("abort_message() needs a 4xx or 5xx reply")
        if self._abort is None and self.state in (State.DATA_CONTENT, State.BDAT_CHUNK, State.BDAT):
            self._abort = reply
            self._events.append(MessageAborted(str(reply)))

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS succeeded: start over (RFC 3207 4.2)."""
        if self.state is not State.TLS_PENDING:
            raise LocalProtocolError("tls_started() without STARTTLS")
        self._in.clear()
        self.tls_active = True
        self.hello = None
        self.authenticated = False
        self._reset_transaction(emit=False)
        self.state = State.INITIAL

    def shutdown(self, reply: R.Reply | None = None) -> None:
        """End the session from our side (server shutdown, policy): 421 and close."""
        if self.state is State.CLOSED:
            return
        self._write(reply or R.Reply(421, "4.3.2", f"{self.hostname} Service shutting down"))
        self.state = State.CLOSED

    # ----------------------------------------------------------------- internals

    def _take_wait(self) -> _Wait:
        if self._wait is None:
            raise LocalProtocolError("no event is waiting for an answer")
        wait, self._wait = self._wait, None
        return wait

    def _pause(self, wait: _Wait, event: Event) -> None:
        self._wait = wait
        self._wait_from = self.state
        self._events.append(event)

    def _write(self, reply: R.Reply) -> None:
        self._out += reply.encode()

    def _send(self, reply: R.Reply) -> None:
        self._write(reply)
        if reply.code >= 400:
            self.errors += 1
            if self.errors >= self.max_errors and self.state is not State.CLOSED:
                self._write(R.Reply(421, "4.7.0", f"{self.hostname} Error: too many errors"))
                self._close("too many errors")

    def _close(self, reason: str) -> None:
        if self.state in IN_TRANSACTION or self.state in (State.DATA_CONTENT, State.BDAT_CHUNK):
            self._events.append(TransactionReset())
        self.state = State.CLOSED
        self._in.clear()
        self._events.append(ConnectionClosing(reason))

    def _lost(self) -> None:
        self._close("connection closed by peer")

    def _hello_reply(self) -> R.Reply:
        if self.hello is None or not self.hello.extended:
            return R.Reply(250, None, self.hostname)
        return R.Reply(250, None, (self.hostname, *self.ehlo_keywords()))

    def _reset_transaction(self, *, emit: bool) -> None:
        if emit and (self.state in IN_TRANSACTION or self._rcpt_tried):
            self._events.append(TransactionReset())
        self._tx_smtputf8 = False
        self._rcpt_accepted = 0
        self._rcpt_tried = 0
        self._rcpt_overshoot = 0
        self._dot = None
        self._abort = None

    def _end_transaction(self) -> None:
        self._reset_transaction(emit=False)
        self.state = reset_state(self.hello is not None)

    def _begin_message(self) -> None:
        self._size = 0
        self._endings = LineEndingCheck()
        self._abort = None

    # One step of input processing; False when more input is needed.
    def _step(self) -> bool:
        state = self.state
        if state in COMMAND_STATES or state is State.AUTH:
            line = self._read_line()
            if line is None:
                return False
            try:
                if self.state is State.AUTH:
                    self._auth_response(line)
                else:
                    self._command(line)
            except SMTPProtocolError as exc:
                self._send(exc.reply)
            return True
        if state is State.DATA_CONTENT:
            return self._read_data()
        if state is State.BDAT_CHUNK:
            return self._read_chunk()
        return False

    def _line_limit(self) -> int:
        if self.state is State.AUTH or self._in[:5].upper() == b"AUTH ":
            return max(self.max_auth_line_length, self.max_line_length)
        return self.max_line_length

    def _read_line(self) -> str | None:
        """One command line without its line end, or None; bad lines are answered here."""
        while self.state is not State.CLOSED:
            if self._skipping_long_line:
                idx = self._in.find(b"\n")
                if idx < 0:
                    self._in.clear()
                    return None
                del self._in[: idx + 1]
                self._skipping_long_line = False
                if self.state is State.AUTH:
                    self._mech = None
                    self.state = reset_state(True)
                    self._send(R.AUTH_LINE_TOO_LONG)
                else:
                    self._send(R.LINE_TOO_LONG)
                continue
            limit = self._line_limit()
            idx = self._in.find(b"\n", 0, limit)
            if idx < 0:
                if len(self._in) >= limit:
                    # RFC 5321 4.5.3.1.4: too long; skip to its end, answer, carry on.
                    self._skipping_long_line = True
                    continue
                return None
            raw = bytes(self._in[:idx])
            del self._in[: idx + 1]
            # RFC 5321 2.3.8 wants CRLF; a bare LF ending a command is tolerated (Postfix
            # does): it cannot end DATA content, which is where smuggling would matter.
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._send(R.BAD_UTF8)
                continue
            if any(c < " " or c == "\x7f" for c in text):
                self._send(R.NUL_IN_COMMAND if "\x00" in text else R.BAD_SYNTAX)
                continue
            return text
        return None

    # ----------------------------------------------------------------- commands

    def _command(self, line: str) -> None:
        verb, arg = split_verb(line)
        state = self.state
        if state is State.INITIAL and not self.helo_required and verb in ("MAIL", "AUTH"):
            state = State.READY
        table = COMMANDS[state]
        if verb not in table:
            raise SMTPProtocolError(R.UNKNOWN_COMMAND)
        error = table[verb]
        if verb in ("DATA", "BDAT") and self.state is State.MAIL and self._rcpt_tried:
            error = R.NO_VALID_RECIPIENTS  # every RCPT was refused (Postfix's wording)
        if verb == "BDAT":
            self._cmd_bdat(arg, error)
            return
        if verb == "BURL":
            if not self.burl:
                raise SMTPProtocolError(R.UNKNOWN_COMMAND)
            if not self.authenticated:
                raise SMTPProtocolError(R.BURL_NEEDS_AUTH)
        if error is not None:
            raise SMTPProtocolError(error)
        if verb in RESETTING and verb != "RSET":
            self._cmd_hello(verb, arg)
        else:
            getattr(self, f"_cmd_{verb.lower()}")(arg)

    def _cmd_hello(self, verb: str, arg: str) -> None:
        name = arg.strip(" ")
        if not _printable_token(name) or len(name) > 255:
            raise SMTPProtocolError(R.HELO_SYNTAX)
        # RFC 5321 4.1.4: EHLO/HELO in a transaction is an implicit RSET.
        self._reset_transaction(emit=True)
        self.state = reset_state(self.hello is not None)
        valid = is_domain(name) or is_address_literal(name)
        event = Hello(name=name, extended=verb == "EHLO", valid=valid)
        self._hello_pending = event
        self._pause(_Wait.HELLO, event)

    def _cmd_mail(self, arg: str) -> None:
        path, params = parse_mail(arg, max_size=self.max_message_size)
        if params.smtputf8 and not self.smtputf8:
            raise SMTPProtocolError(R.UNKNOWN_PARAMETER)
        if params.requiretls and not self.requiretls:
            raise SMTPProtocolError(R.UNKNOWN_PARAMETER)
        if params.requiretls and not self.tls_active:
            raise SMTPProtocolError(R.REQUIRETLS_NEEDS_TLS)
        self._tx_smtputf8 = params.smtputf8
        self._pause(_Wait.MAIL, MailFrom(path=path, params=params))

    def _cmd_rcpt(self, arg: str) -> None:
        if self._rcpt_accepted >= self.max_recipients:
            # RFC 5321 4.5.3.1.10: 452 for too many recipients, and "the client ... should
            # treat it as a temporary failure": it sends the rest in another transaction. Not
            # an error of the client's, so it does not count toward the error limit (which
            # would end the session and lose the recipients already accepted).
            self._rcpt_overshoot += 1
            if self._rcpt_overshoot > self.max_recipient_overshoot:
                raise SMTPProtocolError(R.TOO_MANY_RECIPIENTS)
            self._write(R.TOO_MANY_RECIPIENTS)
            return
        self._rcpt_tried += 1
        path, params = parse_rcpt(arg, smtputf8=self._tx_smtputf8)
        if (params.notify is not None or params.orcpt is not None) and not self.dsn:
            raise SMTPProtocolError(R.UNKNOWN_PARAMETER)
        self._pause(_Wait.RCPT, RcptTo(path=path, params=params))

    def _cmd_data(self, arg: str) -> None:
        if arg.strip(" "):
            raise SMTPProtocolError(R.NO_PARAMETERS)
        self._pause(_Wait.DATA_START, MessageStart(chunking=False))

    def _cmd_bdat(self, arg: str, error: R.Reply | None) -> None:
        if not self.chunking:
            raise SMTPProtocolError(R.UNKNOWN_COMMAND)
        size, last = parse_bdat(arg)
        self._chunk_left = self._chunk_size = size
        self._chunk_last = last
        self._chunk_error = None
        if error is not None:
            # RFC 3030 2: the octets follow the command whatever the answer; read and drop them.
            self._chunk_error = error
            self._after_chunk_error = self.state
            self.state = State.BDAT_CHUNK
            return
        if self.state is State.RCPT:
            self._pause(_Wait.BDAT_START, MessageStart(chunking=True))
        else:
            self.state = State.BDAT_CHUNK

    def _cmd_burl(self, arg: str) -> None:
        """RFC 4468 3: the session resolves the URL and hands the data to `burl_data()`;
        the first BURL of a transaction starts the message like a first BDAT."""
        url, last = parse_burl(arg)
        part = BurlPart(url=url, last=last)
        if self.state is State.RCPT:
            self._burl_pending = part
            self._pause(_Wait.BDAT_START, MessageStart(chunking=True))
        else:
            self._burl_last = last
            self._pause(_Wait.BURL, part)

    def burl_data(self, data: bytes) -> None:
        """The data the BURL named (bounded by the session): counted against the size limit
        and passed on as DataChunk events, then the message ends (LAST) or goes on (250)."""
        wait = self._take_wait()
        if wait is not _Wait.BURL:
            raise LocalProtocolError("burl_data() answers a BurlPart")
        self._count(data)
        if self._burl_last:
            if self._bare_cr_abort():
                assert self._abort is not None
                reply = self._abort
                self._end_transaction()
                self._send(reply)
                return
            self._pause(
                _Wait.MESSAGE_END, MessageEnd(size=self._size, bare_lf=self._endings.bare_lf)
            )
            return
        if self._abort is not None:
            reply = self._abort
            self._end_transaction()
            self._send(reply)
            return
        self._write(R.Reply(250, "2.0.0", f"Ok: {len(data)} octets added"))

    def _cmd_rset(self, arg: str) -> None:
        if arg.strip(" "):
            raise SMTPProtocolError(R.NO_PARAMETERS)
        self._reset_transaction(emit=True)
        self.state = reset_state(self.hello is not None)
        self._send(R.OK)

    def _cmd_noop(self, arg: str) -> None:
        self._send(R.OK)  # RFC 5321 4.1.1.9: any argument is ignored

    def _cmd_vrfy(self, arg: str) -> None:
        if not arg.strip(" "):
            raise SMTPProtocolError(R.VRFY_SYNTAX)
        # RFC 5321 3.5.3, 7.3: 252 tells nothing about which users exist.
        self._events.append(Verify(arg.strip(" ")))
        self._send(R.VRFY_CANNOT)

    def _cmd_expn(self, arg: str) -> None:
        raise SMTPProtocolError(R.NOT_IMPLEMENTED)  # RFC 5321 3.5.2: EXPN is optional

    def _cmd_help(self, arg: str) -> None:
        self._send(R.HELP)

    def _cmd_quit(self, arg: str) -> None:
        if arg.strip(" "):
            raise SMTPProtocolError(R.NO_PARAMETERS)
        self._write(R.Reply(221, "2.0.0", f"{self.hostname} Bye"))
        if self.state in IN_TRANSACTION:
            self._events.append(TransactionReset())
        self.state = State.CLOSED
        self._in.clear()
        self._events.append(Quit())

    def _cmd_starttls(self, arg: str) -> None:
        if self.tls_active:
            raise SMTPProtocolError(R.TLS_ALREADY)
        if not self.starttls:
            raise SMTPProtocolError(R.TLS_NOT_AVAILABLE)
        if arg.strip(" "):
            raise SMTPProtocolError(R.NO_PARAMETERS)
        self._write(R.READY_TLS)
        # RFC 3207 4.2 and CVE-2011-0411: whatever the client pipelined after STARTTLS was
        # sent in plaintext and must not run as a command after the handshake.
        self._in.clear()
        self.state = State.TLS_PENDING
        self._events.append(StartTLS())

    def _cmd_auth(self, arg: str) -> None:
        if not self.auth_offered:
            raise SMTPProtocolError(R.AUTH_NOT_ENABLED)
        if self.authenticated:
            raise SMTPProtocolError(R.AUTH_ALREADY)
        words = arg.split(" ")
        if not words[0] or len(words) > 2:
            raise SMTPProtocolError(R.Reply(501, "5.5.4", "Syntax: AUTH mechanism"))
        name = words[0].upper()
        mech = sasl.server_mechanism(name) if name in self.auth_mechanisms else None
        if mech is None:
            raise SMTPProtocolError(R.AUTH_UNKNOWN_MECH)
        initial: bytes | None = None
        if len(words) == 2:
            # RFC 4954 4: "=" is an empty initial response.
            initial = b"" if words[1] == "=" else self._b64(words[1])
        self._mech = mech
        self.state = State.AUTH
        self._sasl_result(mech.start(initial))

    def _b64(self, text: str) -> bytes:
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            self._mech = None
            self.state = reset_state(True)
            raise SMTPProtocolError(R.AUTH_BAD_BASE64) from None

    def _auth_response(self, line: str) -> None:
        assert self._mech is not None
        if line == "*":
            # RFC 4954 4: the client cancels; the server answers 501.
            self._mech = None
            self.state = reset_state(True)
            raise SMTPProtocolError(R.AUTH_CANCELLED)
        self._sasl_result(self._mech.step(self._b64(line)))

    def _sasl_result(self, step: sasl.SaslStep) -> None:
        assert self._mech is not None
        if isinstance(step, sasl.Challenge):
            self._write(R.Reply(334, None, base64.b64encode(step.data).decode("ascii")))
            return
        name = self._mech.name
        self._mech = None
        if isinstance(step, sasl.Credentials):
            self._pause(
                _Wait.AUTH,
                AuthCredentials(
                    mechanism=name,
                    authzid=step.authzid,
                    authcid=step.authcid,
                    password=step.password,
                ),
            )
            return
        self.state = reset_state(True)
        raise SMTPProtocolError(R.AUTH_FAILED)

    # ----------------------------------------------------------------- message content

    def _count(self, chunk: bytes) -> None:
        """Size limit and line-ending checks for message octets, then pass them on."""
        if not chunk:
            return
        self._size += len(chunk)
        self._endings.feed(chunk)
        if self._abort is not None:
            return
        if self.max_message_size is not None and self._size > self.max_message_size:
            # RFC 1870 6.3: refuse with 552 once the data ends; drop the octets from here on.
            self._abort = R.TOO_BIG
            self._events.append(MessageAborted(str(R.TOO_BIG)))
            return
        self._events.append(DataChunk(chunk))

    def _bare_cr_abort(self) -> bool:
        self._endings.finish()
        if self._abort is None and self.reject_bare_cr and self._endings.bare_cr:
            self._abort = R.BARE_CR
            self._events.append(MessageAborted(str(R.BARE_CR)))
        return self._abort is not None

    def _read_data(self) -> bool:
        assert self._dot is not None
        if not self._in:
            return False
        chunk = self._dot.feed(self._in)
        self._count(chunk)
        if not self._dot.ended:
            return False
        if self._bare_cr_abort():
            assert self._abort is not None
            reply = self._abort
            self._end_transaction()
            self._send(reply)
            return True
        self._pause(_Wait.MESSAGE_END, MessageEnd(size=self._size, bare_lf=self._endings.bare_lf))
        return True

    def _read_chunk(self) -> bool:
        if self._chunk_left:
            if not self._in:
                return False
            take = min(self._chunk_left, len(self._in))
            chunk = bytes(self._in[:take])
            del self._in[:take]
            self._chunk_left -= take
            if self._chunk_error is None:
                self._count(chunk)
            if self._chunk_left:
                return True
        # The chunk is complete.
        if self._chunk_error is not None:
            reply, self._chunk_error = self._chunk_error, None
            self.state = self._after_chunk_error
            self._send(reply)
            return True
        if self._chunk_last:
            if self._bare_cr_abort():
                assert self._abort is not None
                reply = self._abort
                self._end_transaction()
                self._send(reply)
                return True
            self._pause(
                _Wait.MESSAGE_END, MessageEnd(size=self._size, bare_lf=self._endings.bare_lf)
            )
            return True
        if self._abort is not None:
            reply = self._abort
            self._end_transaction()
            self._send(reply)
            return True
        self._pause(_Wait.BDAT_CHUNK, BdatChunkEnd(size=self._chunk_size))
        return True
