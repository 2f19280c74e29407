"""The POP3 server state machine: one table, nothing else (RFC 1939 3, RFC 2595 4, RFC 5034 4).

Theory of operation.  The core reads one command, then pauses until the session sends
the reply to it; the state after a command depends on the command *and* on whether the
reply was ``+OK``, ``-ERR`` or a SASL continuation, so the table is keyed on all three.
Which commands a state accepts is the second table.  Anything not listed leaves the state
as it was.

    AUTHORIZATION --USER +OK--> USER_ACCEPTED --PASS +OK--> TRANSACTION --QUIT--> CLOSED
         |   \\--AUTH +  --> SASL --+OK--> TRANSACTION
         \\--STLS +OK--> STLS_PENDING --tls_started()--> AUTHORIZATION

The UPDATE state of RFC 1939 6 is the session's work between reading QUIT and sending
its reply; the core goes straight to CLOSED once that reply is sent.
"""

from __future__ import annotations

from enum import Enum

from . import events as ev


class State(Enum):
    AUTHORIZATION = "AUTHORIZATION"
    USER_ACCEPTED = "USER_ACCEPTED"  # AUTHORIZATION after a successful USER (RFC 1939 7)
    SASL = "SASL"  # inside an AUTH exchange, reading client responses (RFC 5034 4)
    STLS_PENDING = "STLS_PENDING"  # +OK to STLS sent, waiting for the TLS handshake
    TRANSACTION = "TRANSACTION"
    CLOSED = "CLOSED"


class Outcome(Enum):
    OK = "OK"
    ERR = "ERR"
    CONTINUE = "CONTINUE"


_AUTHORIZATION_COMMANDS: frozenset[type[ev.Command]] = frozenset(
    {ev.User, ev.Auth, ev.AuthList, ev.Stls, ev.Capa, ev.Quit}
)

#: Commands each state accepts; a known command outside its state gets -ERR from the core.
ALLOWED: dict[State, frozenset[type[ev.Command]]] = {
    State.AUTHORIZATION: _AUTHORIZATION_COMMANDS,
    State.USER_ACCEPTED: _AUTHORIZATION_COMMANDS | {ev.Pass},
    State.SASL: frozenset({ev.AuthResponse, ev.AuthCancel}),
    State.STLS_PENDING: frozenset(),
    State.TRANSACTION: frozenset(
        {
            ev.Stat,
            ev.List,
            ev.Uidl,
            ev.Retr,
            ev.Top,
            ev.Dele,
            ev.Noop,
            ev.Rset,
            ev.Quit,
            ev.Capa,
        }
    ),
    State.CLOSED: frozenset(),
}

_A, _U, _S = State.AUTHORIZATION, State.USER_ACCEPTED, State.SASL
_OK, _ERR, _CONT = Outcome.OK, Outcome.ERR, Outcome.CONTINUE

#: (state, command, outcome) -> next state.
TRANSITIONS: dict[tuple[State, type[ev.Command], Outcome], State] = {
    (_A, ev.User, _OK): _U,
    (_U, ev.User, _OK): _U,
    (_U, ev.User, _ERR): _A,
    (_U, ev.Pass, _OK): State.TRANSACTION,
    (_U, ev.Pass, _ERR): _A,  # RFC 1939 7: after a failed PASS the client starts over
    (_A, ev.Auth, _OK): State.TRANSACTION,
    (_U, ev.Auth, _OK): State.TRANSACTION,
    (_U, ev.Auth, _ERR): _A,
    (_A, ev.Auth, _CONT): _S,
    (_U, ev.Auth, _CONT): _S,
    (_S, ev.AuthResponse, _OK): State.TRANSACTION,
    (_S, ev.AuthResponse, _CONT): _S,
    (_S, ev.AuthResponse, _ERR): _A,
    (_S, ev.AuthCancel, _ERR): _A,
    (_A, ev.Stls, _OK): State.STLS_PENDING,
    (_U, ev.Stls, _OK): State.STLS_PENDING,
}
for _state in State:
    # RFC 1939 6: QUIT ends the session whatever the reply (UPDATE errors still close).
    for _outcome in Outcome:
        TRANSITIONS[(_state, ev.Quit, _outcome)] = State.CLOSED

#: Replies that may carry a multi-line body, per command (RFC 1939 7, RFC 2449 5).
MULTILINE_COMMANDS: frozenset[type[ev.Command]] = frozenset(
    {ev.List, ev.Uidl, ev.Retr, ev.Top, ev.Capa, ev.AuthList}
)
#: Commands that may be answered by a SASL continuation.
CONTINUABLE_COMMANDS: frozenset[type[ev.Command]] = frozenset({ev.Auth, ev.AuthResponse})


def next_state(state: State, command: type[ev.Command], outcome: Outcome) -> State:
    return TRANSITIONS.get((state, command, outcome), state)
