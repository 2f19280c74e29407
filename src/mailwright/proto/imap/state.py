"""The IMAP session state machine (RFC 9051 3): one table, one place.

States: not authenticated -> authenticated -> selected -> logout (figure in RFC 9051 3.5).
``ALLOWED`` says in which states each command may be issued; ``next_state`` says where a
command leads depending on whether it succeeded.  The session checks ``ALLOWED`` before
dispatch, so command handlers never re-check the state.
"""

from __future__ import annotations

import enum

from mailwright.proto.imap import ast
from mailwright.proto.imap.errors import ProtocolError


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_NOAUTH = frozenset({State.NOT_AUTHENTICATED})
_AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
_SELECTED = frozenset({State.SELECTED})

#: RFC 9051 6.1 (any state), 6.2 (not authenticated), 6.3 (authenticated), 6.4 (selected).
ALLOWED: dict[type, frozenset[State]] = {
    ast.Capability: _ANY,
    ast.Noop: _ANY,
    ast.Logout: _ANY,
    ast.Id: _ANY,  # RFC 2971 3.1: any state
    ast.StartTLS: _NOAUTH,
    ast.Authenticate: _NOAUTH,
    ast.Login: _NOAUTH,
    ast.Enable: _AUTH,  # RFC 5161 3.1: authenticated state (we also accept it when selected)
    ast.Select: _AUTH,
    ast.Create: _AUTH,
    ast.Delete: _AUTH,
    ast.Rename: _AUTH,
    ast.Subscribe: _AUTH,
    ast.Unsubscribe: _AUTH,
    ast.ListCmd: _AUTH,
    ast.Namespace: _AUTH,
    ast.Status: _AUTH,
    ast.Append: _AUTH,
    ast.Idle: _AUTH,
    ast.GetQuota: _AUTH,
    ast.GetQuotaRoot: _AUTH,
    ast.Check: _SELECTED,
    ast.Close: _SELECTED,
    ast.Unselect: _SELECTED,
    ast.Expunge: _SELECTED,
    ast.Search: _SELECTED,
    ast.Fetch: _SELECTED,
    ast.Store: _SELECTED,
    ast.Copy: _SELECTED,
    ast.Move: _SELECTED,
    ast.Sort: _SELECTED,
    ast.Thread: _SELECTED,
    ast.Compress: _AUTH,  # RFC 4978 3: after authentication
    ast.MultiSearch: _AUTH,  # RFC 7377 2: ESEARCH IN works without a selected mailbox
    ast.Replace: _SELECTED,  # RFC 8508 3
    ast.GetMetadata: _AUTH,  # RFC 5464 4
    ast.SetMetadata: _AUTH,
    ast.CancelUpdate: _SELECTED,  # RFC 5267 4.2
    ast.GenUrlAuth: _AUTH,  # RFC 4467 6
    ast.ResetKey: _AUTH,
    ast.UrlFetch: _AUTH,
    # RFC 4314 3: authenticated or selected state
    ast.SetAcl: _AUTH,
    ast.DeleteAcl: _AUTH,
    ast.GetAcl: _AUTH,
    ast.ListRights: _AUTH,
    ast.MyRights: _AUTH,
    ast.Notify: _AUTH,  # RFC 5465 3: authenticated and selected states
}


def check_allowed(cmd: ast.Command, state: State) -> None:
    """Raise a tagged BAD if *cmd* may not be issued in *state*."""
    allowed = ALLOWED.get(type(cmd), frozenset())
    if state not in allowed:
        name = type(cmd).__name__.upper().removesuffix("CMD")
        if state is State.NOT_AUTHENTICATED:
            why = "not authenticated"
        elif allowed == _SELECTED:
            why = "no mailbox selected"
        elif allowed == _NOAUTH:
            why = "already authenticated"
        else:
            why = f"not allowed in {state.value} state"
        raise ProtocolError(f"{name}: {why}", tag=cmd.tag)


def next_state(state: State, cmd: ast.Command, ok: bool) -> State:
    """The state after *cmd* completed (``ok``: tagged OK was sent)."""
    if isinstance(cmd, ast.Logout):
        return State.LOGOUT
    if isinstance(cmd, ast.Login | ast.Authenticate):
        return State.AUTHENTICATED if ok else state
    if isinstance(cmd, ast.Select):
        # RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected.
        return State.SELECTED if ok else State.AUTHENTICATED
    if isinstance(cmd, ast.Close | ast.Unselect):
        return State.AUTHENTICATED if ok else state
    return state
