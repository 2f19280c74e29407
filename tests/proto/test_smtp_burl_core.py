"""BURL (RFC 4468) in the SMTP core: offered and taken only once authenticated, the first
BURL of a transaction starts the message like a first BDAT, the session's data passes the
same size and line-ending checks as BDAT chunks, and mixes with BDAT."""

from __future__ import annotations

from mailwright.proto.smtp import (
    NEED_DATA,
    PAUSED,
    AuthCredentials,
    BurlPart,
    DataChunk,
    MessageEnd,
    MessageStart,
    Reply,
    ServerConnection,
)


def feed(c: ServerConnection, data: bytes = b"") -> list[object]:
    if data:
        c.receive_data(data)  # (b"" would tell the core the peer closed)
    events = []
    while True:
        e = c.next_event()
        if e is NEED_DATA or e is PAUSED:
            return events
        events.append(e)


def authenticated(**kw: object) -> ServerConnection:
    c = ServerConnection("mx.example.test", auth_mechanisms=("PLAIN",),  # type: ignore[arg-type]
                         auth_requires_tls=False, burl=True, **kw)
    c.greet()
    feed(c, b"EHLO client.example\r\n")
    c.accept()
    assert b"BURL" not in c.data_to_send()  # RFC 4468 3: not before AUTH
    [ev] = feed(c, b"AUTH PLAIN AGFAAHB3\r\n")
    assert isinstance(ev, AuthCredentials)
    c.accept()
    feed(c, b"EHLO client.example\r\n")
    c.accept()
    assert b"250 BURL imap\r\n" in c.data_to_send()
    return c


def transaction(c: ServerConnection) -> None:
    feed(c, b"MAIL FROM:<a@example.test>\r\n")
    c.accept()
    feed(c, b"RCPT TO:<b@example.test>\r\n")
    c.accept()
    c.data_to_send()


def test_burl_alone_and_mixed_with_bdat() -> None:
    c = authenticated()
    transaction(c)
    assert feed(c, b"BURL imap://a/INBOX/;UID=1 LAST\r\n") == [MessageStart(chunking=True)]
    c.accept()
    assert feed(c) == [BurlPart("imap://a/INBOX/;UID=1", True)]
    c.burl_data(b"Subject: x\r\n\r\nbody\r\n")
    assert feed(c) == [DataChunk(b"Subject: x\r\n\r\nbody\r\n"), MessageEnd(20, False)]
    c.accept()
    assert c.data_to_send() == b"250 2.0.0 Ok: queued\r\n"
    transaction(c)
    assert feed(c, b"BDAT 12\r\nSubject: y\r\n") == [MessageStart(chunking=True)]
    c.accept()
    events = feed(c)
    assert events[0] == DataChunk(b"Subject: y\r\n")
    c.accept()
    assert feed(c, b"BURL imap://a/INBOX/;UID=1/;SECTION=TEXT\r\n") == [
        BurlPart("imap://a/INBOX/;UID=1/;SECTION=TEXT", False)]
    c.burl_data(b"\r\nbody\r\n")
    assert feed(c, b"BDAT 0 LAST\r\n") == [DataChunk(b"\r\nbody\r\n"), MessageEnd(20, False)]


def test_burl_refused_ends_the_transaction_and_limits_apply() -> None:
    c = authenticated(max_message_size=10)
    transaction(c)
    feed(c, b"BURL imap://a/INBOX/;UID=1 LAST\r\n")
    c.accept()
    feed(c)
    c.reject(Reply(554, "5.7.8", "Error: URL cannot be resolved"))
    assert c.data_to_send() == b"554 5.7.8 Error: URL cannot be resolved\r\n"
    assert feed(c, b"BURL imap://a/INBOX/;UID=1 LAST\r\n") == []
    assert c.data_to_send().startswith(b"503 ")  # the transaction is over
    transaction(c)
    feed(c, b"BURL imap://a/INBOX/;UID=1 LAST\r\n")
    c.accept()
    feed(c)
    c.burl_data(b"x" * 11)  # over SIZE: 552, the message is not taken
    feed(c)
    assert c.data_to_send().startswith(b"552 5.3.4")
    transaction(c)
    for bad in (b"BURL\r\n", b"BURL a b\r\n"):
        assert feed(c, bad) == []
        assert c.data_to_send().startswith(b"501 5.5.4")


def test_burl_needs_auth_and_the_extension() -> None:
    c = ServerConnection("mx.example.test", burl=True, helo_required=False)
    c.greet()
    feed(c, b"EHLO c\r\n")
    c.accept()
    c.data_to_send()
    feed(c, b"BURL imap://a/INBOX/;UID=1 LAST\r\n")
    assert c.data_to_send().startswith(b"530 5.7.0")
    c = ServerConnection("mx.example.test")
    c.greet()
    feed(c, b"EHLO c\r\n")
    c.accept()
    c.data_to_send()
    feed(c, b"BURL imap://a/INBOX/;UID=1 LAST\r\n")
    assert c.data_to_send().startswith(b"500 ")
