"""The IMAP state table (RFC 9051 3)."""

from __future__ import annotations

import pytest

from mailwright.proto.imap import ast
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.state import ALLOWED, State, check_allowed, next_state

S = ast.SequenceSet((ast.SeqRange(1, 1),))


def test_state_every_command_is_in_the_table() -> None:
    import typing

    assert set(typing.get_args(ast.Command)) == set(ALLOWED)


@pytest.mark.parametrize(
    ("cmd", "state", "message"),
    [
        (ast.Select("a", "INBOX"), State.NOT_AUTHENTICATED, b"a BAD SELECT: not authenticated\r\n"),
        (ast.Fetch("a", S, ()), State.AUTHENTICATED, b"a BAD FETCH: no mailbox selected\r\n"),
        (ast.Login("a", "u", "p"), State.SELECTED, b"a BAD LOGIN: already authenticated\r\n"),
        (ast.ListCmd("a", "", ("*",)), State.NOT_AUTHENTICATED, b"a BAD LIST: not authenticated\r\n"),
    ],
)
def test_state_refusals(cmd: ast.Command, state: State, message: bytes) -> None:
    with pytest.raises(ProtocolError) as exc:
        check_allowed(cmd, state)
    assert exc.value.to_bytes() == message


def test_state_allowed_any_state() -> None:
    for state in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED):
        check_allowed(ast.Noop("a"), state)
        check_allowed(ast.Capability("a"), state)
        check_allowed(ast.Logout("a"), state)


def test_state_transitions() -> None:
    assert next_state(State.NOT_AUTHENTICATED, ast.Login("a", "u", "p"), True) is State.AUTHENTICATED
    assert next_state(State.NOT_AUTHENTICATED, ast.Login("a", "u", "p"), False) is State.NOT_AUTHENTICATED
    assert next_state(State.AUTHENTICATED, ast.Select("a", "x"), True) is State.SELECTED
    # RFC 9051 6.3.2: a failed SELECT in selected state deselects
    assert next_state(State.SELECTED, ast.Select("a", "x"), False) is State.AUTHENTICATED
    assert next_state(State.SELECTED, ast.Close("a"), True) is State.AUTHENTICATED
    assert next_state(State.SELECTED, ast.Unselect("a"), True) is State.AUTHENTICATED
    assert next_state(State.SELECTED, ast.Logout("a"), True) is State.LOGOUT
    assert next_state(State.SELECTED, ast.Noop("a"), True) is State.SELECTED
