"""ServerConnection behaviour that transcripts do not show well: misuse, EOF, SASL PLAIN."""

from __future__ import annotations

import pytest

from mailwright.proto import pop3


def greeted(**kwargs: object) -> pop3.ServerConnection:
    conn = pop3.ServerConnection(**kwargs)  # type: ignore[arg-type]
    assert conn.send(pop3.Ok("hi")) == b"+OK hi\r\n"
    return conn


def login(conn: pop3.ServerConnection) -> None:
    conn.receive_data(b"USER a\r\nPASS b\r\n")
    assert conn.next_event() == pop3.User("a")
    conn.send(pop3.Ok())
    assert conn.next_event() == pop3.Pass("b")
    conn.send(pop3.Ok())
    assert conn.state is pop3.State.TRANSACTION


def test_pop3_core_pauses_until_reply_sent() -> None:
    conn = greeted()
    conn.receive_data(b"CAPA\r\nQUIT\r\n")
    assert conn.next_event() == pop3.Capa()
    assert conn.next_event() is pop3.PAUSED
    assert conn.pending == pop3.Capa()
    conn.send(pop3.MultiLine(lines=("TOP",)))
    assert conn.next_event() == pop3.Quit()


def test_pop3_core_send_without_command_is_local_error() -> None:
    conn = greeted()
    with pytest.raises(pop3.LocalProtocolError):
        conn.send(pop3.Ok())


def test_pop3_core_multiline_only_for_multiline_commands() -> None:
    conn = greeted()
    login(conn)
    conn.receive_data(b"STAT\r\n")
    assert conn.next_event() == pop3.Stat()
    with pytest.raises(pop3.LocalProtocolError):
        conn.send(pop3.MultiLine(lines=("x",)))
    with pytest.raises(pop3.LocalProtocolError):
        conn.send(pop3.Continuation())


def test_pop3_core_peer_error_must_be_answered_with_err() -> None:
    conn = greeted()
    conn.receive_data(b"BOGUS\r\n")
    with pytest.raises(pop3.PeerError) as info:
        conn.next_event()
    assert info.value.reply == pop3.Err("Unknown command: BOGUS")
    with pytest.raises(pop3.LocalProtocolError):
        conn.send(pop3.Ok())
    assert conn.send(info.value.reply) == b"-ERR Unknown command: BOGUS\r\n"


def test_pop3_core_eof_mid_line_is_connection_closed() -> None:
    conn = greeted()
    conn.receive_data(b"USER bo")
    assert conn.next_event() is pop3.NEED_DATA
    conn.receive_data(b"")
    assert conn.next_event() == pop3.ConnectionClosed()


def test_pop3_core_line_limit_is_a_constructor_argument() -> None:
    conn = greeted(max_line_length=20)
    conn.receive_data(b"USER " + b"a" * 14 + b"\r\n")  # 21 octets
    with pytest.raises(pop3.PeerError):
        conn.next_event()


def test_pop3_core_auth_initial_response_may_exceed_command_limit() -> None:
    # RFC 5034 4: SASL data may be longer than RFC 2449's 255-octet command line.
    conn = greeted()
    blob = "A" * 400
    conn.receive_data(b"AUTH PLAIN " + blob.encode() + b"\r\n")
    event = conn.next_event()
    assert isinstance(event, pop3.Auth)
    assert event.initial_response is not None and len(event.initial_response) == 300


def test_pop3_core_sasl_lines_are_bounded() -> None:
    conn = greeted(max_sasl_line_length=300)
    conn.receive_data(b"AUTH PLAIN\r\n")
    assert conn.next_event() == pop3.Auth("PLAIN")
    conn.send(pop3.Continuation())
    conn.receive_data(b"A" * 1000)
    assert conn.next_event() is pop3.NEED_DATA
    conn.receive_data(b"\r\nCAPA\r\n")
    with pytest.raises(pop3.PeerError) as info:
        conn.next_event()
    conn.send(info.value.reply)
    assert conn.state is pop3.State.AUTHORIZATION
    assert conn.next_event() == pop3.Capa()


def test_pop3_core_greeting_err_closes() -> None:
    conn = pop3.ServerConnection()
    conn.send(pop3.Err("busy", pop3.Code.SYS_TEMP))
    conn.receive_data(b"CAPA\r\n")
    assert conn.next_event() == pop3.ConnectionClosed()


def test_pop3_core_tls_started_needs_stls() -> None:
    conn = greeted()
    with pytest.raises(pop3.LocalProtocolError):
        conn.tls_started()


def test_pop3_core_stls_refused_when_tls_active_from_start() -> None:
    conn = greeted(tls_active=True)
    conn.receive_data(b"STLS\r\n")
    with pytest.raises(pop3.PeerError):
        conn.next_event()


def test_pop3_core_quit_in_transaction_closes_even_on_err() -> None:
    conn = greeted()
    login(conn)
    conn.receive_data(b"QUIT\r\n")
    assert conn.next_event() == pop3.Quit()
    conn.send(pop3.Err("some deleted messages not removed", pop3.Code.SYS_TEMP))
    assert conn.state is pop3.State.CLOSED
