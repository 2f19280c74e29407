"""Events and API of the SMTP core that transcripts cannot show: what the session sees."""

from __future__ import annotations

import pytest

from mailwright.proto.smtp import (
    NEED_DATA,
    PAUSED,
    AuthCredentials,
    ConnectionClosing,
    DataChunk,
    Hello,
    LocalProtocolError,
    MailFrom,
    MailParams,
    MessageAborted,
    MessageEnd,
    MessageStart,
    Quit,
    RcptParams,
    RcptTo,
    Reply,
    ServerConnection,
    StartTLS,
    State,
    TransactionReset,
    Verify,
)
from mailwright.proto.smtp.data import DotReader, LineEndingCheck


def conn(**kw: object) -> ServerConnection:
    c = ServerConnection("mx.example.test", **kw)  # type: ignore[arg-type]
    c.greet()
    c.data_to_send()
    return c


def feed(c: ServerConnection, data: bytes) -> list[object]:
    c.receive_data(data)
    events = []
    while True:
        e = c.next_event()
        if e is NEED_DATA or e is PAUSED:
            return events
        events.append(e)
        if e is PAUSED:
            return events


def in_data(c: ServerConnection) -> None:
    assert feed(c, b"EHLO client.example\r\n") == [Hello("client.example", True, True)]
    c.accept()
    [_mail] = feed(c, b"MAIL FROM:<a@remote.test>\r\n")
    c.accept()
    [_rcpt] = feed(c, b"RCPT TO:<bob@example.test>\r\n")
    c.accept()
    assert feed(c, b"DATA\r\n") == [MessageStart(chunking=False)]
    c.accept()
    c.data_to_send()


def test_smtp_core_mail_params_parsed_and_kept() -> None:
    c = conn()
    feed(c, b"EHLO c\r\n")
    c.accept()
    [ev] = feed(
        c, b"MAIL FROM:<a@remote.test> SIZE=100 BODY=8bitmime RET=hdrs ENVID=QQ+2B1 AUTH=<>\r\n"
    )
    assert isinstance(ev, MailFrom)
    assert ev.params == MailParams(size=100, body="8BITMIME", ret="HDRS", envid="QQ+1", auth="<>")
    assert ev.path is not None and ev.path.mailbox == "a@remote.test"
    c.accept()
    [ev] = feed(c, b"RCPT TO:<Bob@Example.TEST> NOTIFY=failure,delay ORCPT=rfc822;Bob+40x.test\r\n")
    assert isinstance(ev, RcptTo)
    assert ev.params == RcptParams(notify=("FAILURE", "DELAY"), orcpt=("RFC822", "Bob@x.test"))
    assert ev.path.local_part == "Bob" and ev.path.domain == "example.test"
    assert ev.path.raw == "Bob@Example.TEST"


def test_smtp_core_null_sender_is_none() -> None:
    c = conn()
    feed(c, b"HELO c\r\n")
    c.accept()
    [ev] = feed(c, b"MAIL FROM:<>\r\n")
    assert ev == MailFrom(path=None, params=MailParams())


def test_smtp_core_pauses_until_answered() -> None:
    c = conn()
    c.receive_data(b"HELO c\r\nNOOP\r\n")
    assert isinstance(c.next_event(), Hello)
    assert c.next_event() is PAUSED
    assert c.data_to_send() == b""
    c.accept()
    assert c.next_event() is NEED_DATA
    assert c.data_to_send() == b"250 mx.example.test\r\n250 2.0.0 Ok\r\n"


def test_smtp_core_api_misuse_is_local_error() -> None:
    c = conn()
    with pytest.raises(LocalProtocolError):
        c.accept()
    with pytest.raises(LocalProtocolError):
        c.tls_started()
    feed(c, b"HELO c\r\n")
    with pytest.raises(LocalProtocolError):
        c.reject(Reply(250, "2.0.0", "not a rejection"))
    with pytest.raises(LocalProtocolError):
        c.greet()


def test_smtp_core_data_streams_in_chunks_not_whole() -> None:
    c = conn(max_message_size=None)
    in_data(c)
    line = b"x" * 998 + b"\r\n"
    seen = 0
    for _ in range(200):
        events = feed(c, line * 10)
        assert all(isinstance(e, DataChunk) for e in events)
        seen += sum(len(e.data) for e in events if isinstance(e, DataChunk))
        # Never more than a CR is held back.
        assert len(c._in) <= 1
    [end] = feed(c, b".\r\n")
    assert end == MessageEnd(size=200 * 10 * len(line), bare_lf=False)
    assert seen == end.size


def test_smtp_core_message_end_reports_bare_lf() -> None:
    c = conn()
    in_data(c)
    events = feed(c, b"a\nb\r\n.\r\n")
    assert events[-1] == MessageEnd(size=5, bare_lf=True)


def test_smtp_core_size_limit_exact_boundary() -> None:
    c = conn(max_message_size=10)
    in_data(c)
    events = feed(c, b"12345678\r\n.\r\n")
    assert isinstance(events[-1], MessageEnd) and events[-1].size == 10
    c.accept()
    assert c.data_to_send() == b"250 2.0.0 Ok: queued\r\n"


def test_smtp_core_oversize_aborts_once_and_answers_at_end() -> None:
    c = conn(max_message_size=10)
    in_data(c)
    events = feed(c, b"123456789\r\n")
    assert [type(e) for e in events] == [MessageAborted]
    assert feed(c, b"more\r\nmore\r\n") == []
    assert c.data_to_send() == b""
    assert feed(c, b".\r\n") == []
    assert c.data_to_send() == b"552 5.3.4 Error: message file too big\r\n"
    assert c.state is State.READY


def test_smtp_core_session_abort_message() -> None:
    c = conn()
    in_data(c)
    assert [type(e) for e in feed(c, b"part one\r\n")] == [DataChunk]
    c.abort_message(Reply(452, "4.3.1", "Insufficient system storage"))
    assert feed(c, b"part two\r\n.\r\nNOOP\r\n") == [
        MessageAborted("452 4.3.1 Insufficient system storage")
    ]
    assert c.data_to_send() == b"452 4.3.1 Insufficient system storage\r\n250 2.0.0 Ok\r\n"


def test_smtp_core_reject_message_end() -> None:
    c = conn()
    in_data(c)
    feed(c, b"x\r\n.\r\n")
    c.reject(Reply(452, "4.2.2", "Mailbox full"))
    assert c.data_to_send() == b"452 4.2.2 Mailbox full\r\n"
    assert c.state is State.READY


def test_smtp_core_transaction_reset_events() -> None:
    c = conn()
    feed(c, b"HELO c\r\n")
    c.accept()
    feed(c, b"MAIL FROM:<a@b.test>\r\n")
    c.accept()
    assert feed(c, b"RSET\r\n") == [TransactionReset()]
    assert feed(c, b"RSET\r\n") == []
    feed(c, b"MAIL FROM:<a@b.test>\r\n")
    c.accept()
    assert feed(c, b"HELO c\r\n") == [TransactionReset(), Hello("c", False, True)]


def test_smtp_core_eof_mid_data() -> None:
    c = conn()
    in_data(c)
    feed(c, b"partial")
    c.receive_data(b"")
    events = feed(c, b"")
    assert events == [TransactionReset(), ConnectionClosing("connection closed by peer")]
    assert c.closed


def test_smtp_core_quit_and_verify_events() -> None:
    c = conn()
    assert feed(c, b"VRFY bob\r\n") == [Verify("bob")]
    assert feed(c, b"QUIT\r\n") == [Quit()]
    assert c.closed
    assert c.data_to_send().endswith(b"221 2.0.0 mx.example.test Bye\r\n")
    c.receive_data(b"NOOP\r\n")
    assert c.next_event() is NEED_DATA


def test_smtp_core_starttls_event_and_discard() -> None:
    c = conn(starttls=True)
    feed(c, b"EHLO c\r\n")
    c.accept()
    c.data_to_send()
    assert feed(c, b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n") == [StartTLS()]
    assert c.data_to_send() == b"220 2.0.0 Ready to start TLS\r\n"
    c.receive_data(b"RCPT TO:<also@evil.test>\r\n")  # plaintext before the handshake
    c.tls_started()
    assert c.tls_active and c.hello is None
    assert feed(c, b"NOOP\r\n") == []
    assert c.data_to_send() == b"250 2.0.0 Ok\r\n"


def test_smtp_core_auth_credentials_event() -> None:
    c = conn(auth_mechanisms=("PLAIN",), auth_requires_tls=False)
    feed(c, b"EHLO c\r\n")
    c.accept()
    [ev] = feed(c, b"AUTH PLAIN YWRtaW4AYWxpY2UAc2VjcmV0\r\n")
    assert ev == AuthCredentials("PLAIN", "admin", "alice", "secret")
    c.reject(Reply(535, "5.7.8", "Error: authentication failed"))
    assert not c.authenticated
    [ev] = feed(c, b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
    c.accept()
    assert c.authenticated
    assert "AUTH" not in " ".join(c.ehlo_keywords())


def test_smtp_core_shutdown_sends_421() -> None:
    c = conn()
    c.shutdown()
    assert c.data_to_send() == b"421 4.3.2 mx.example.test Service shutting down\r\n"
    assert c.closed


def test_smtp_core_greeting_421_closes() -> None:
    c = ServerConnection("mx.example.test")
    c.greet(Reply(421, "4.7.0", "mx.example.test too many connections"))
    assert c.closed


def test_smtp_core_hostname_must_be_a_token() -> None:
    with pytest.raises(ValueError):
        ServerConnection("mx.example.test\r\n250 forged")


def test_smtp_core_reply_encoding_is_sanitised() -> None:
    r = Reply(550, "5.1.1", "user\r\n250 2.0.0 forged")
    assert r.encode() == b"550-5.1.1 user\r\n550 5.1.1 250 2.0.0 forged\r\n"
    assert Reply(550, "5.1.1", "a\x00b").encode() == b"550 5.1.1 a?b\r\n"
    with pytest.raises(ValueError):
        Reply(250, "5.0.0", "mismatch")
    with pytest.raises(ValueError):
        Reply(99, None, "bad")
    assert Reply(334, None, "").encode() == b"334 \r\n"


def test_dot_reader_holds_back_only_a_cr() -> None:
    r = DotReader()
    buf = bytearray(b"abc\r")
    assert r.feed(buf) == b"abc" and buf == b"\r"
    buf += b"\n."
    assert r.feed(buf) == b"\r\n" and buf == b"."
    buf += b".x\r\n.\r"
    assert r.feed(buf) == b".x\r\n" and buf == b".\r" and not r.ended
    buf += b"\nNEXT"
    assert r.feed(buf) == b"" and r.ended and buf == b"NEXT"


@pytest.mark.parametrize(
    ("pieces", "cr", "lf"),
    [
        ([b"a\r\nb"], False, False),
        ([b"a\r", b"\nb"], False, False),
        ([b"a\r", b"b"], True, False),
        ([b"a\n"], False, True),
        ([b"a\r"], True, False),
        ([b"\r\r\n"], True, False),
        ([b"a\r", b"\n\n"], False, True),
    ],
)
def test_line_ending_check(pieces: list[bytes], cr: bool, lf: bool) -> None:
    check = LineEndingCheck()
    for p in pieces:
        check.feed(p)
    check.finish()
    assert (check.bare_cr, check.bare_lf) == (cr, lf)


def test_smtp_core_recipients_past_the_limit_are_not_errors() -> None:
    # RFC 5321 4.5.3.1.10: 452 for the excess, the transaction goes on; only an overshoot far
    # past the limit starts counting toward the error limit (an endless RCPT stream still ends).
    c = conn(max_recipients=2, max_errors=3, max_recipient_overshoot=5)
    feed(c, b"EHLO client.example\r\n")
    c.accept()
    feed(c, b"MAIL FROM:<a@remote.test>\r\n")
    c.accept()
    for _ in range(2):
        feed(c, b"RCPT TO:<bob@example.test>\r\n")
        c.accept()
    c.data_to_send()
    assert feed(c, b"RCPT TO:<x@example.test>\r\n" * 5) == []
    assert c.data_to_send() == b"452 4.5.3 Error: too many recipients\r\n" * 5
    assert c.errors == 0 and c.state is State.RCPT
    assert feed(c, b"DATA\r\n") == [MessageStart(chunking=False)]
    c.accept()
    c.data_to_send()
    feed(c, b"x\r\n.\r\n")
    c.accept()
    feed(c, b"MAIL FROM:<a@remote.test>\r\n")
    c.accept()
    for _ in range(2):
        feed(c, b"RCPT TO:<bob@example.test>\r\n")
        c.accept()
    c.data_to_send()
    feed(c, b"RCPT TO:<x@example.test>\r\n" * 8)
    out = c.data_to_send()
    assert out.count(b"452 4.5.3") == 8 and out.endswith(b"421 4.7.0 mx.example.test Error: too many errors\r\n")
    assert c.closed
