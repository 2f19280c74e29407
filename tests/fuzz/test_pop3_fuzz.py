"""Hypothesis fuzzing of the POP3 core: any client bytes, any split, never a crash.

A toy responder answers each command with a valid reply; the core must only ever raise
PeerError, every reply must be well-formed, and how the input is split must not matter.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.proto import pop3

_WORDS = [
    b"USER bob",
    b"PASS x",
    b"AUTH PLAIN",
    b"AUTH PLAIN AGJvYgB4",
    b"AUTH",
    b"*",
    b"AGJvYgB4",
    b"STLS",
    b"CAPA",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"UIDL 2",
    b"RETR 1",
    b"TOP 1 0",
    b"DELE 1",
    b"NOOP",
    b"RSET",
    b"QUIT",
    b"",
    b"RETR 99999999999",
    b"x" * 300,
]

_lines = st.lists(
    st.one_of(st.sampled_from(_WORDS), st.binary(max_size=40)), min_size=1, max_size=25
).map(lambda parts: b"".join(p + b"\r\n" for p in parts))
_inputs = st.one_of(_lines, st.binary(max_size=600))


def _respond(conn: pop3.ServerConnection, event: pop3.Command) -> bytes:
    if isinstance(event, pop3.Stls):
        # Accepting STLS makes the outcome depend on what arrived before the handshake,
        # which is the point of RFC 2595 4; the STLS transcripts cover that.
        return conn.send(pop3.Err("no TLS here"))
    if isinstance(event, pop3.Auth | pop3.AuthResponse) and len(repr(event)) % 3 == 0:
        return conn.send(pop3.Continuation())
    if isinstance(event, pop3.AuthCancel):
        return conn.send(pop3.Err("cancelled"))
    if isinstance(event, pop3.Retr | pop3.Top):
        return conn.send(pop3.MultiLine("m", data=b"A: b\r\n\r\n.x\r\n"))
    if isinstance(event, pop3.List | pop3.Uidl | pop3.Capa | pop3.AuthList):
        return conn.send(pop3.MultiLine(lines=(".odd", "1 2")))
    if isinstance(event, pop3.Pass | pop3.User | pop3.Auth | pop3.AuthResponse):
        return conn.send(pop3.Ok())
    return conn.send(pop3.Ok("fine"))


def _run(chunks: list[bytes]) -> bytes:
    conn = pop3.ServerConnection()
    out = conn.send(pop3.Ok("ready"))
    pending = list(chunks)
    for _ in range(10_000):
        try:
            event = conn.next_event()
        except pop3.PeerError as exc:
            assert exc.reply.encode().startswith(b"-ERR ")
            out += conn.send(exc.reply)
            continue
        if event is pop3.NEED_DATA:
            if not pending:
                conn.receive_data(b"")
                continue
            conn.receive_data(pending.pop(0))
            continue
        if isinstance(event, pop3.ConnectionClosed):
            return out
        assert event is not pop3.PAUSED
        assert isinstance(event, pop3.Command)
        out += _respond(conn, event)
    raise AssertionError("core did not make progress")


def _check_wire(out: bytes) -> None:
    assert out.endswith(b"\r\n")
    for line in out.split(b"\r\n")[:-1]:
        assert b"\n" not in line and b"\r" not in line


@settings(max_examples=300, deadline=None)
@given(_inputs, st.lists(st.integers(min_value=1, max_value=600), max_size=10))
def test_pop3_fuzz_any_input_any_split(data: bytes, cuts: list[int]) -> None:
    whole = _run([data])
    _check_wire(whole)
    points = sorted({c for c in cuts if c < len(data)})
    chunks = []
    prev = 0
    for point in [*points, len(data)]:
        if data[prev:point]:
            chunks.append(data[prev:point])
        prev = point
    assert _run(chunks) == whole
    assert _run([data[i : i + 1] for i in range(len(data))]) == whole
