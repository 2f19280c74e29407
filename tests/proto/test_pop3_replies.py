"""Reply encoding: status lines, response codes, byte-exact dot-stuffing (RFC 1939 3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailwright.proto import pop3


def unstuff(wire: bytes) -> bytes:
    """What a client recovers from a multi-line body (RFC 1939 3), terminator included."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    body = wire[:-3]
    lines = body.split(b"\n")
    out = [line[1:] if line.startswith(b".") else line for line in lines]
    return b"\n".join(out)


def test_pop3_replies_status_lines() -> None:
    assert pop3.Ok().encode() == b"+OK\r\n"
    assert pop3.Ok("2 320").encode() == b"+OK 2 320\r\n"
    assert pop3.Err("nope").encode() == b"-ERR nope\r\n"
    assert pop3.Err("locked", pop3.Code.IN_USE).encode() == b"-ERR [IN-USE] locked\r\n"
    assert pop3.Err("bad", pop3.Code.AUTH).encode() == b"-ERR [AUTH] bad\r\n"
    assert pop3.Err("later", pop3.Code.SYS_TEMP).encode() == b"-ERR [SYS/TEMP] later\r\n"
    assert pop3.Continuation().encode() == b"+ \r\n"
    assert pop3.Continuation(b"hi").encode() == b"+ aGk=\r\n"


def test_pop3_replies_never_carry_line_breaks() -> None:
    assert pop3.Err("a\r\n+OK b").encode() == b"-ERR a  +OK b\r\n"
    assert pop3.MultiLine("x", lines=("a\r\n.",)).encode() == b"+OK x\r\na  .\r\n.\r\n"


def test_pop3_replies_multiline_dot_stuffing() -> None:
    data = b".a\r\n..\r\n.\r\nb.c\r\n"
    wire = pop3.MultiLine("m", data=data).encode()
    assert wire == b"+OK m\r\n..a\r\n...\r\n..\r\nb.c\r\n.\r\n"


def test_pop3_replies_missing_final_crlf_is_added() -> None:
    assert pop3.MultiLine(data=b"abc").encode() == b"+OK\r\nabc\r\n.\r\n"
    assert pop3.MultiLine(data=b"abc\r").encode() == b"+OK\r\nabc\r\r\n.\r\n"
    assert pop3.MultiLine(data=b"abc\n").encode() == b"+OK\r\nabc\n\r\n.\r\n"
    assert pop3.MultiLine().encode() == b"+OK\r\n.\r\n"


def test_pop3_replies_bare_lf_dot_is_stuffed() -> None:
    # A stored bare LF followed by "." must not end the response for an LF-splitting client.
    wire = pop3.MultiLine(data=b"a\n.\r\nb\r\n").encode()
    assert wire == b"+OK\r\na\n..\r\nb\r\n.\r\n"


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_pop3_replies_dotstuffer_chunking_is_invisible(data: bytes, cuts: list[int]) -> None:
    whole = pop3.DotStuffer()
    expected = whole.feed(data) + whole.end()
    stuffer = pop3.DotStuffer()
    out = b""
    points = sorted({min(c, len(data)) for c in cuts})
    prev = 0
    for point in [*points, len(data)]:
        out += stuffer.feed(data[prev:point])
        prev = point
    out += stuffer.end()
    assert out == expected


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))))
def test_pop3_replies_dotstuffing_round_trips_crlf_text(lines: list[bytes]) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    stuffer = pop3.DotStuffer()
    wire = stuffer.feed(data) + stuffer.end()
    assert unstuff(wire) == data
    # Only the terminator is a lone dot line.
    assert wire.split(b"\r\n").count(b".") == 1


def test_pop3_replies_capabilities() -> None:
    lines = pop3.capabilities(user=True, sasl=["PLAIN"], stls=True, implementation="Mailwright")
    assert lines == (
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "USER",
        "SASL PLAIN",
        "STLS",
        "IMPLEMENTATION Mailwright",
    )
    assert "USER" not in pop3.capabilities(user=False, sasl=[], stls=False)


@given(
    st.binary(max_size=2000).map(lambda b: b.replace(b"x", b"\r\n.")),
    st.integers(min_value=1, max_value=300),
)
def test_pop3_replies_chunked_encoding_is_the_same_bytes(data: bytes, size: int) -> None:
    reply = pop3.MultiLine("m", lines=("a", ".b"), data=data)
    chunks = list(reply.encode_chunks(size))
    assert b"".join(chunks) == reply.encode()
    # The message is cut into pieces of about the chunk size, not sent in one buffer.
    assert len(chunks) == (1 if len(data) <= size else 2 + -(-len(data) // size))


def test_pop3_replies_send_chunks_advances_state_at_once() -> None:
    conn = pop3.ServerConnection()
    conn.send(pop3.Ok())
    conn.receive_data(b"USER a\r\nPASS b\r\nRETR 1\r\n")
    for _ in range(2):
        conn.next_event()
        conn.send(pop3.Ok())
    assert conn.next_event() == pop3.Retr(1)
    chunks = conn.send_chunks(pop3.MultiLine(data=b"x" * 100), chunk_size=10)
    assert conn.pending is None and conn.state is pop3.State.TRANSACTION
    assert b"".join(chunks) == b"+OK\r\n" + b"x" * 100 + b"\r\n.\r\n"
