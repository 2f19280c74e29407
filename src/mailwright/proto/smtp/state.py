"""Every state of an SMTP server connection and every transition, in one place.

Theory of operation (after h11's `_state.py`). The connection is always in one `State`. In the
command states (INITIAL, READY, MAIL, RCPT, BDAT, REJECTING) the core reads one line and looks
the verb up in `COMMANDS`: an entry of None means the command may run, a `Reply` is the sequence
error to send (RFC 5321 4.3.2 lists which command may follow which; 503 5.5.1 is the answer
otherwise). Commands that need the session's decision pause the core; on `accept()` the state
becomes `ACCEPTED[(state, verb)]`, on `reject()` it stays where it was (RFC 5321 4.1.1: a refused
MAIL or RCPT does not change the transaction). The other states read something other than
commands: message content (DATA_CONTENT, BDAT_CHUNK), SASL responses (AUTH) or nothing at all
(TLS_PENDING between the 220 to STARTTLS and the handshake, CLOSED).

Connection facts that are not sequence (TLS active, authenticated, the EHLO name) are plain
attributes of the connection, because every state can hold either value.
"""

from __future__ import annotations

from enum import Enum

from . import replies as R


class State(Enum):
    START = "START"  # before the greeting; input is kept for later
    INITIAL = "INITIAL"  # greeted, waiting for EHLO/HELO (RFC 5321 4.1.4)
    READY = "READY"  # EHLO/HELO done, no mail transaction
    MAIL = "MAIL"  # MAIL accepted, no recipient yet
    RCPT = "RCPT"  # at least one recipient accepted
    DATA_CONTENT = "DATA_CONTENT"  # between 354 and <CRLF>.<CRLF>
    BDAT = "BDAT"  # a CHUNKING transaction between chunks (RFC 3030 2)
    BDAT_CHUNK = "BDAT_CHUNK"  # reading the octets of one BDAT chunk
    AUTH = "AUTH"  # a SASL exchange (RFC 4954 4)
    TLS_PENDING = "TLS_PENDING"  # 220 to STARTTLS sent, handshake not done (RFC 3207 4)
    REJECTING = "REJECTING"  # greeted with 554: only QUIT (RFC 5321 3.1)
    CLOSED = "CLOSED"


COMMAND_STATES = frozenset(
    {State.INITIAL, State.READY, State.MAIL, State.RCPT, State.BDAT, State.REJECTING}
)

VERBS = (
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP",
    "VRFY", "EXPN", "HELP", "QUIT", "STARTTLS", "AUTH", "BURL",
)  # fmt: skip

_ALWAYS = {"EHLO": None, "HELO": None, "RSET": None, "NOOP": None, "VRFY": None,
           "EXPN": None, "HELP": None, "QUIT": None}  # fmt: skip

# None: the command may run in this state. A Reply: the sequence error (RFC 5321 4.3.2).
# BDAT is special: whatever the state, a well-formed BDAT's chunk is read and discarded
# before the error is sent (RFC 3030 2), so its octets never run as commands.
COMMANDS: dict[State, dict[str, R.Reply | None]] = {
    State.INITIAL: {
        **_ALWAYS,
        "MAIL": R.NEED_HELO, "RCPT": R.NEED_MAIL, "DATA": R.NEED_MAIL, "BDAT": R.NEED_MAIL,
        "STARTTLS": R.NEED_HELO, "AUTH": R.NEED_HELO, "BURL": R.NEED_MAIL,
    },
    State.READY: {
        **_ALWAYS,
        "MAIL": None, "RCPT": R.NEED_MAIL, "DATA": R.NEED_MAIL, "BDAT": R.NEED_MAIL,
        "STARTTLS": None, "AUTH": None, "BURL": R.NEED_MAIL,
    },
    State.MAIL: {
        **_ALWAYS,
        "MAIL": R.NESTED_MAIL, "RCPT": None, "DATA": R.NEED_RCPT, "BDAT": R.NEED_RCPT,
        "STARTTLS": R.AUTH_IN_TRANSACTION, "AUTH": R.AUTH_IN_TRANSACTION, "BURL": R.NEED_RCPT,
    },
    State.RCPT: {
        **_ALWAYS,
        "MAIL": R.NESTED_MAIL, "RCPT": None, "DATA": None, "BDAT": None,
        "STARTTLS": R.AUTH_IN_TRANSACTION, "AUTH": R.AUTH_IN_TRANSACTION, "BURL": None,
    },
    State.BDAT: {
        **_ALWAYS,
        "MAIL": R.NESTED_MAIL, "RCPT": R.BDAT_IN_PROGRESS, "DATA": R.BDAT_IN_PROGRESS,
        "BDAT": None, "BURL": None,  # RFC 4468 3: BURL and BDAT mix in one message
        "STARTTLS": R.AUTH_IN_TRANSACTION, "AUTH": R.AUTH_IN_TRANSACTION,
    },
    State.REJECTING: {verb: (None if verb == "QUIT" else R.REJECTING_SESSION) for verb in VERBS},
}  # fmt: skip

# Where an accepted command leads. Commands not listed leave the state as it is, except the
# resets, which `reset_state()` decides (READY once greeted with EHLO/HELO, else INITIAL).
ACCEPTED: dict[tuple[State, str], State] = {
    (State.READY, "MAIL"): State.MAIL,
    (State.INITIAL, "MAIL"): State.MAIL,  # only when the connection does not require HELO
    (State.MAIL, "RCPT"): State.RCPT,
    (State.RCPT, "RCPT"): State.RCPT,
    (State.RCPT, "DATA"): State.DATA_CONTENT,
    (State.RCPT, "BDAT"): State.BDAT_CHUNK,
    (State.BDAT, "BDAT"): State.BDAT_CHUNK,
}

# RFC 5321 4.1.1.1, 4.1.1.5; RFC 3207 4.2: these drop the mail transaction.
RESETTING = frozenset({"EHLO", "HELO", "RSET"})

IN_TRANSACTION = frozenset({State.MAIL, State.RCPT, State.BDAT})


def reset_state(greeted: bool) -> State:
    """The state after RSET, EHLO/HELO or the end of a transaction."""
    return State.READY if greeted else State.INITIAL
