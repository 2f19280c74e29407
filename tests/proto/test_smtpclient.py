"""Sans-I/O SMTP client core: replies, capabilities, dot-stuffing, envelope checks, state."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.proto.smtpclient import (
    NEED_DATA,
    ClientConnection,
    ClientState,
    ConnectionClosed,
    Data,
    DeliveryRefused,
    DotStuffer,
    Ehlo,
    EndOfData,
    Envelope,
    Extensions,
    Greeting,
    Helo,
    LocalProtocolError,
    Mail,
    Quit,
    Rcpt,
    Recipient,
    RemoteProtocolError,
    Reply,
    ReplyParser,
    Response,
    StartTLS,
    mail_params,
    rcpt_params,
    scan_message,
    stuff,
    xtext_encode,
)

EHLO_REPLY = (
    b"250-mx.example.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
)


def feed_all(parser: ReplyParser, data: bytes, how: str) -> list[Reply]:
    replies: list[Reply] = []
    if how == "whole":
        pieces = [data]
    elif how == "bytes":
        pieces = [data[i : i + 1] for i in range(len(data))]
    else:
        rng = random.Random(len(data))
        pieces, i = [], 0
        while i < len(data):
            step = rng.randint(1, 7)
            pieces.append(data[i : i + step])
            i += step
    for piece in pieces:
        parser.receive_data(piece)
        while (reply := parser.next_reply()) is not None:
            replies.append(reply)
    return replies


@pytest.mark.parametrize("how", ["whole", "bytes", "random"])
def test_replies_multiline_and_enhanced(how: str) -> None:
    data = EHLO_REPLY + b"550 5.1.1 No such user\r\n250\r\n421 4.3.2 bye\n"
    replies = feed_all(ReplyParser(), data, how)
    assert [r.code for r in replies] == [250, 550, 250, 421]
    assert replies[0].lines[0] == "mx.example.test Hello"
    assert replies[1] == Reply(550, ("No such user",), "5.1.1")
    assert replies[2] == Reply(250, ("",), None)
    assert replies[3].enhanced == "4.3.2"
    assert str(replies[1]) == "550 5.1.1 No such user"


def test_replies_enhanced_code_must_match_class() -> None:
    assert Reply.build(250, "5.1.1 odd").enhanced is None
    assert Reply.build(250, "2.1.5 ok").status() == "2.1.5"
    assert Reply.build(451, "try later").status() == "4.0.0"


@pytest.mark.parametrize(
    "bad",
    [b"hello\r\n", b"25 short\r\n", b"250-a\r\n251 b\r\n", b"250x\r\n", b"999 nope\r\n"],
)
def test_replies_malformed_is_remote_error(bad: bytes) -> None:
    parser = ReplyParser()
    parser.receive_data(bad)
    with pytest.raises(RemoteProtocolError):
        while parser.next_reply() is not None:
            pass


def test_replies_bounded() -> None:
    parser = ReplyParser(max_line_length=100, max_lines=3)
    parser.receive_data(b"250-" + b"x" * 200)
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()
    parser = ReplyParser(max_line_length=100, max_lines=3)
    parser.receive_data(b"250-a\r\n" * 4)
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()


def test_extensions_parsed() -> None:
    parser = ReplyParser()
    parser.receive_data(EHLO_REPLY)
    reply = parser.next_reply()
    assert reply is not None
    ext = Extensions.from_reply(reply)
    assert ext.pipelining and ext.starttls and ext.eightbitmime and ext.smtputf8 and ext.dsn
    assert ext.size == 1000
    assert Extensions.from_reply(Reply.build(250, "x", "SIZE")).size == 0
    assert Extensions().size is None and not Extensions().dsn


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".a\r\n.\r\n..\r\nb.c\r\n", b"..a\r\n..\r\n...\r\nb.c\r\n.\r\n"),
        (b"bare\nlf\rcr\r\n.x", b"bare\r\nlf\r\ncr\r\n..x\r\n.\r\n"),
        (b"ends with cr\r", b"ends with cr\r\n.\r\n"),
    ],
)
def test_dotstuffer_whole_and_split(message: bytes, wire: bytes) -> None:
    assert stuff(message) == wire
    encoder = DotStuffer()
    out = b"".join(encoder.feed(message[i : i + 1]) for i in range(len(message)))
    assert out + encoder.end() == wire
    for cut in range(len(message) + 1):
        encoder = DotStuffer()
        assert encoder.feed(message[:cut]) + encoder.feed(message[cut:]) + encoder.end() == wire


def test_scan_message() -> None:
    assert scan_message(b"Subject: hi\r\n\r\nbody") == scan_message(b"a: b\n\nc")
    traits = scan_message("Subject: hi\r\n\r\ncafé".encode())
    assert traits.eight_bit and not traits.utf8_headers
    traits = scan_message("Subject: café\r\n\r\nx".encode())
    assert traits.eight_bit and traits.utf8_headers


def test_xtext() -> None:
    assert xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d"


FULL = Extensions.from_reply(Reply.build(250, "x", "SIZE 100", "8BITMIME", "SMTPUTF8", "DSN"))
BARE = Extensions.from_reply(Reply.build(250, "x"))


def test_envelope_params_with_everything() -> None:
    env = Envelope("a@x.test", (Recipient("b@y.test", ("SUCCESS", "FAILURE"),
                                          ("rfc822", "b+1@y.test")),),
                   size=50, eight_bit=True, ret="HDRS", envid="id 1")
    assert mail_params(env, FULL) == ("SIZE=50", "BODY=8BITMIME", "RET=HDRS", "ENVID=id+201")
    assert rcpt_params(env.recipients[0], FULL) == (
        "NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b+2B1@y.test")
    assert rcpt_params(env.recipients[0], BARE) == ()


def test_envelope_dsn_not_passed_without_dsn() -> None:
    env = Envelope("a@x.test", (Recipient("b@y.test", ("NEVER",)),), size=5, ret="FULL")
    assert mail_params(env, BARE) == ()


def test_envelope_size_checked_before_sending() -> None:
    env = Envelope("a@x.test", (Recipient("b@y.test"),), size=101)
    with pytest.raises(DeliveryRefused) as info:
        mail_params(env, FULL)
    assert info.value.status == "5.3.4" and info.value.permanent


def test_envelope_smtputf8_needed_but_missing() -> None:
    env = Envelope("a@x.test", (Recipient("jöran@y.test"),), size=5)
    assert mail_params(env, FULL) == ("SIZE=5", "SMTPUTF8")
    with pytest.raises(DeliveryRefused) as info:
        mail_params(env, BARE)
    assert info.value.status == "5.6.7"
    assert "SMTPUTF8" in info.value.text
    env = Envelope("a@x.test", (Recipient("b@y.test"),), size=5, eight_bit=True,
                   utf8_headers=True)
    with pytest.raises(DeliveryRefused) as info:
        mail_params(env, BARE)
    assert info.value.status == "5.6.9"


def test_envelope_8bit_needs_8bitmime() -> None:
    env = Envelope("a@x.test", (Recipient("b@y.test"),), size=5, eight_bit=True)
    with pytest.raises(DeliveryRefused) as info:
        mail_params(env, BARE)
    assert info.value.status == "5.6.3"


def events(conn: ClientConnection, data: bytes) -> list[object]:
    conn.receive_data(data)
    out: list[object] = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return out


def test_connection_pipelined_transaction() -> None:
    conn = ClientConnection()
    assert events(conn, b"220 mx.example.test ESMTP\r\n") == [
        Greeting(Reply(220, ("mx.example.test ESMTP",)))]
    assert conn.send(Ehlo("client.test")) == b"EHLO client.test\r\n"
    with pytest.raises(LocalProtocolError):
        conn.send(Mail("a@x.test"))  # EHLO must stand alone (RFC 2920 3.1)
    [ehlo] = events(conn, EHLO_REPLY)
    assert isinstance(ehlo, Response) and conn.state is ClientState.READY
    assert conn.extensions is not None and conn.extensions.pipelining
    wire = (conn.send(Mail("a@x.test", ("SIZE=5",))) + conn.send(Rcpt("b@y.test"))
            + conn.send(Rcpt("c@y.test")) + conn.send(Data()))
    assert wire == (b"MAIL FROM:<a@x.test> SIZE=5\r\nRCPT TO:<b@y.test>\r\n"
                    b"RCPT TO:<c@y.test>\r\nDATA\r\n")
    got = events(conn, b"250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n354 go\r\n")
    assert [(type(e.command).__name__, e.reply.code) for e in got if isinstance(e, Response)] == [
        ("Mail", 250), ("Rcpt", 550), ("Rcpt", 250), ("Data", 354)]
    assert conn.send_data(b".hi\r\n") == b"..hi\r\n"
    assert conn.end_data() == b".\r\n"
    [final] = events(conn, b"250 2.0.0 queued\r\n")
    assert final == Response(EndOfData(), Reply(250, ("queued",), "2.0.0"))
    assert conn.state is ClientState.READY
    conn.send(Quit())
    assert events(conn, b"221 bye\r\n")[0] == Response(Quit(), Reply(221, ("bye",)))
    assert events(conn, b"") == [ConnectionClosed(0)]


def test_connection_ehlo_refused_then_helo() -> None:
    conn = ClientConnection()
    events(conn, b"220 old\r\n")
    conn.send(Ehlo("c.test"))
    events(conn, b"502 what\r\n")
    assert conn.state is ClientState.HELLO and conn.extensions is None
    assert conn.send(Helo("c.test")) == b"HELO c.test\r\n"
    events(conn, b"250 hi\r\n")
    assert conn.state is ClientState.READY and conn.extensions == Extensions()


def test_connection_starttls_forgets_extensions() -> None:
    conn = ClientConnection()
    events(conn, b"220 x\r\n")
    conn.send(Ehlo("c.test"))
    events(conn, EHLO_REPLY)
    conn.send(StartTLS())
    with pytest.raises(LocalProtocolError):
        conn.send(Mail("a@x.test"))
    events(conn, b"220 go ahead\r\n")
    assert conn.state is ClientState.TLS
    conn.tls_established()
    assert conn.extensions is None and conn.state is ClientState.HELLO
    with pytest.raises(LocalProtocolError):
        conn.send(Mail("a@x.test"))


def test_connection_data_refused_returns_to_ready() -> None:
    conn = ClientConnection()
    events(conn, b"220 x\r\n")
    conn.send(Helo("c.test"))
    events(conn, b"250 x\r\n")
    conn.send(Mail(""))
    conn.send(Rcpt("b@y.test"))
    conn.send(Data())
    events(conn, b"250 ok\r\n550 no\r\n554 no valid recipients\r\n")
    assert conn.state is ClientState.READY
    with pytest.raises(LocalProtocolError):
        conn.send_data(b"x")


def test_connection_unsolicited_reply_and_421() -> None:
    conn = ClientConnection()
    events(conn, b"220 x\r\n")
    with pytest.raises(RemoteProtocolError):
        events(conn, b"250 surprise\r\n")
    conn = ClientConnection()
    events(conn, b"220 x\r\n")
    [event] = events(conn, b"421 4.3.2 shutting down\r\n")
    assert isinstance(event, Response) and event.reply.code == 421
    assert conn.state is ClientState.CLOSED


def test_connection_eof_with_unanswered_commands() -> None:
    conn = ClientConnection()
    events(conn, b"220 x\r\n")
    conn.send(Ehlo("c.test"))
    assert events(conn, b"") == [ConnectionClosed(1)]


def test_connection_rejects_injection() -> None:
    conn = ClientConnection()
    events(conn, b"220 x\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send(Ehlo("c.test\r\nRCPT TO:<x@y>"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_dotstuffer_any_split_matches_whole(message: bytes, cuts: list[int]) -> None:
    encoder = DotStuffer()
    points = sorted({min(c, len(message)) for c in cuts})
    out, last = b"", 0
    for point in [*points, len(message)]:
        out += encoder.feed(message[last:point])
        last = point
    wire = out + encoder.end()
    assert wire == stuff(message)
    # On the wire: CRLF only, no line starting with a single "." before the end marker.
    body = wire[: -len(b".\r\n")]
    assert b"\r\n.\r\n" not in b"\r\n" + body
    bare = body.replace(b"\r\n", b"")
    assert b"\r" not in bare and b"\n" not in bare
