"""Command-line grammar (RFC 1939 3, RFC 2449 3, RFC 5034 4).

Parsing knows the state only to give the right error; it never changes it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection

from . import events as ev
from .errors import PeerError
from .replies import Err
from .state import ALLOWED, State

_MAX_NUMBER_DIGITS = 10  # more than any maildrop or TOP count can need


def _bad(text: str) -> PeerError:
    return PeerError(Err(text))


def _printable(raw: bytes) -> str:
    # Echo at most a short, harmless rendering of what the client sent.
    return "".join(chr(b) if 33 <= b < 127 else "?" for b in raw[:20])


def _number(arg: str, *, minimum: int, what: str) -> int:
    # RFC 1939 3: message numbers are decimal; no sign, no spaces.
    if not arg.isascii() or not arg.isdigit() or len(arg) > _MAX_NUMBER_DIGITS:
        raise _bad(f"Invalid {what}: {_printable(arg.encode('utf-8', 'replace'))}")
    value = int(arg)
    if value < minimum:
        raise _bad(f"Invalid {what}: {value}")
    return value


def _args(rest: str, count_min: int, count_max: int, usage: str) -> list[str]:
    # Trailing blanks are forgiven (some clients send them); doubled separators are not.
    rest = rest.rstrip(" ")
    args = rest.split(" ") if rest else []
    if "" in args or not count_min <= len(args) <= count_max:
        raise _bad(f"Syntax: {usage}")
    return args


def _decode_base64(text: str) -> bytes:
    # RFC 5034 4: "=" is an empty (initial) response.
    if text == "=":
        return b""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _bad("Invalid base64 data") from None


def _no_args(cls: type[ev.Command], name: str) -> Callable[[str], ev.Command]:
    def parse(rest: str) -> ev.Command:
        _args(rest, 0, 0, name)
        return cls()

    return parse


def _parse_user(rest: str) -> ev.Command:
    name = rest.strip(" ")
    if not name:
        raise _bad("Syntax: USER name")
    return ev.User(name)


def _parse_pass(rest: str) -> ev.Command:
    # RFC 1939 7: PASS takes the rest of the line; spaces belong to the password.
    if not rest:
        raise _bad("Syntax: PASS password")
    return ev.Pass(rest)


def _optional_msg(cls: type[ev.List] | type[ev.Uidl], name: str) -> Callable[[str], ev.Command]:
    def parse(rest: str) -> ev.Command:
        args = _args(rest, 0, 1, f"{name} [msg]")
        if not args:
            return cls()
        return cls(_number(args[0], minimum=1, what="message number"))

    return parse


def _one_msg(cls: type[ev.Retr] | type[ev.Dele], name: str) -> Callable[[str], ev.Command]:
    def parse(rest: str) -> ev.Command:
        args = _args(rest, 1, 1, f"{name} msg")
        return cls(_number(args[0], minimum=1, what="message number"))

    return parse


def _parse_top(rest: str) -> ev.Command:
    msg, lines = _args(rest, 2, 2, "TOP msg n")
    return ev.Top(
        _number(msg, minimum=1, what="message number"),
        _number(lines, minimum=0, what="line count"),
    )


_PARSERS: dict[str, tuple[type[ev.Command], Callable[[str], ev.Command]]] = {
    "USER": (ev.User, _parse_user),
    "PASS": (ev.Pass, _parse_pass),
    "STLS": (ev.Stls, _no_args(ev.Stls, "STLS")),
    "CAPA": (ev.Capa, _no_args(ev.Capa, "CAPA")),
    "QUIT": (ev.Quit, _no_args(ev.Quit, "QUIT")),
    "STAT": (ev.Stat, _no_args(ev.Stat, "STAT")),
    "NOOP": (ev.Noop, _no_args(ev.Noop, "NOOP")),
    "RSET": (ev.Rset, _no_args(ev.Rset, "RSET")),
    "LIST": (ev.List, _optional_msg(ev.List, "LIST")),
    "UIDL": (ev.Uidl, _optional_msg(ev.Uidl, "UIDL")),
    "RETR": (ev.Retr, _one_msg(ev.Retr, "RETR")),
    "DELE": (ev.Dele, _one_msg(ev.Dele, "DELE")),
    "TOP": (ev.Top, _parse_top),
}


def parse_command(line: bytes, state: State, mechanisms: Collection[str]) -> ev.Command:
    """Turn one command line (without its line ending) into a command event.

    Raises PeerError carrying the ``-ERR`` for anything malformed or out of state.
    """
    if b"\x00" in line:
        raise _bad("NUL byte in command")
    keyword_raw, _, rest_raw = line.partition(b" ")
    if not keyword_raw:
        raise _bad("Empty command")
    keyword = keyword_raw.decode("ascii", "replace").upper()
    try:
        rest = rest_raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("Arguments are not valid UTF-8") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in rest):
        raise _bad("Control character in command")

    if keyword == "AUTH":
        return _check_state(_parse_auth(rest, mechanisms), state, keyword)
    if keyword == "APOP":
        raise _bad("APOP is not supported, use USER/PASS or AUTH")
    entry = _PARSERS.get(keyword)
    if entry is None:
        raise _bad(f"Unknown command: {_printable(keyword_raw)}")
    cls, parse = entry
    if cls not in ALLOWED[state]:
        raise _state_error(cls, state, keyword)
    return parse(rest)


def _parse_auth(rest: str, mechanisms: Collection[str]) -> ev.Command:
    rest = rest.strip(" ")
    if not rest:
        return ev.AuthList()
    args = rest.split(" ")
    if "" in args or len(args) > 2:
        raise _bad("Syntax: AUTH mechanism [initial-response]")
    mechanism = args[0].upper()
    if mechanism not in mechanisms:
        raise _bad(f"Unsupported authentication mechanism: {_printable(args[0].encode())}")
    initial = _decode_base64(args[1]) if len(args) == 2 else None
    return ev.Auth(mechanism, initial)


def _check_state(command: ev.Command, state: State, keyword: str) -> ev.Command:
    if type(command) not in ALLOWED[state]:
        raise _state_error(type(command), state, keyword)
    return command


def _state_error(cls: type[ev.Command], state: State, keyword: str) -> PeerError:
    if cls is ev.Pass and state is State.AUTHORIZATION:
        return _bad("PASS needs a successful USER first")
    if state is State.TRANSACTION:
        return _bad(f"{keyword} is not allowed after login")
    return _bad(f"{keyword} is not allowed before login")


def parse_sasl_response(line: bytes) -> ev.Command:
    """A client line inside an AUTH exchange (RFC 5034 4): base64 data or ``*``."""
    text = line.strip(b" ")
    if text == b"*":
        return ev.AuthCancel()
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        raise _bad("Invalid base64 data") from None
    return ev.AuthResponse(_decode_base64(decoded))
