"""The connection core streams CATENATE (RFC 4469) like APPEND: the events a session sees, in
order, whatever the input's splits; URL parts as quoted strings or literals; the bounds; and
the IMAP URL grammar (RFC 5092) with URLAUTH tokens (RFC 4467)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailwright.proto.imap import ast
from mailwright.proto.imap.connection import (
    NEED_DATA,
    PAUSED,
    AppendData,
    AppendEnd,
    AppendMessageStart,
    CatenateTextStart,
    CatenateUrlPart,
    ContinuationRequest,
    ImapConnection,
)
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.imapurl import UrlError, parse_url, token_matches, urlauth_token

COMMAND = (b'A1 APPEND Drafts (\\Seen) CATENATE (URL "/INBOX/;UID=1" TEXT {5}\r\nhello'
           b' URL {13}\r\n/INBOX/;UID=2 URL "/INBOX/;UID=3") CATENATE (TEXT ~{2+}\r\n\x00x)'
           b" {3+}\r\nabc\r\nA2 NOOP\r\n")


def run(chunks: list[bytes]) -> list[object]:
    """Feed *chunks*, accepting every literal; data chunks are joined."""
    conn = ImapConnection(authenticated=True)
    out: list[object] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                break
            assert ev is not PAUSED
            if isinstance(ev, AppendData) and out and isinstance(out[-1], AppendData):
                out[-1] = AppendData(out[-1].data + ev.data)
                continue
            out.append(ev)
            if isinstance(ev, AppendMessageStart | CatenateTextStart | ContinuationRequest):
                conn.accept_literal()
    return out


@pytest.mark.parametrize("size", [0, 1, 3, 7])
def test_catenate_events_in_order(size: int) -> None:
    chunks = [COMMAND] if size == 0 else [COMMAND[i : i + size]
                                          for i in range(0, len(COMMAND), size)]
    events = run(chunks)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "AppendMessageStart", "CatenateUrlPart", "CatenateTextStart", "AppendData",
        "ContinuationRequest", "CatenateUrlPart", "CatenateUrlPart", "AppendMessageEnd",
        "AppendMessageStart", "CatenateTextStart", "AppendData", "AppendMessageEnd",
        "AppendMessageStart", "AppendData", "AppendMessageEnd", "AppendEnd", "Noop",
    ]
    first = events[0]
    assert isinstance(first, AppendMessageStart) and first.catenate and first.size == 0
    assert first.flags == ("\\Seen",) and first.index == 0
    assert events[1] == CatenateUrlPart("A1", "/INBOX/;UID=1")
    assert events[2] == CatenateTextStart("A1", 5, True, False)
    assert events[3] == AppendData(b"hello")
    assert events[5] == CatenateUrlPart("A1", "/INBOX/;UID=2")
    assert events[9] == CatenateTextStart("A1", 2, False, True)
    assert events[10] == AppendData(b"\x00x")  # literal8: NUL allowed (BINARY)
    last = events[12]
    assert isinstance(last, AppendMessageStart) and not last.catenate and last.index == 2
    assert events[13] == AppendData(b"abc") and events[15] == AppendEnd("A1")
    assert events[16] == ast.Noop("A2")


def test_catenate_bounds_and_errors() -> None:
    conn = ImapConnection(authenticated=True, max_catenate_parts=2, max_append=10)
    conn.receive_data(b'B1 APPEND X CATENATE (URL "a" URL "b" URL "c")\r\nB2 NOOP\r\n')
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.code == "LIMIT" and info.value.tag == "B1"
    assert conn.next_event() == ast.Noop("B2")
    # a TEXT literal above APPENDLIMIT is refused before its data; a URL literal above 8 KiB
    conn.receive_data(b"B3 APPEND X CATENATE (TEXT {11}\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.code == "TOOBIG"
    conn.receive_data(b"B4 APPEND X CATENATE (URL {9000}\r\n")
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.code == "TOOBIG"
    conn.receive_data(b"B5 APPEND X CATENATE (TEXT {3}\r\nabc FOO)\r\nB6 NOOP\r\n")
    assert isinstance(conn.next_event(), AppendMessageStart)
    assert isinstance(conn.next_event(), CatenateTextStart)
    conn.accept_literal()
    assert conn.next_event() == AppendData(b"abc")
    with pytest.raises(ProtocolError):
        conn.next_event()
    assert conn.next_event() == ast.Noop("B6")
    # NUL in a plain TEXT literal (RFC 9051 4.3)
    conn.receive_data(b"B7 APPEND X CATENATE (TEXT {3+}\r\na\x00c)\r\nB8 NOOP\r\n")
    assert isinstance(conn.next_event(), AppendMessageStart)
    assert isinstance(conn.next_event(), CatenateTextStart)
    conn.accept_literal()
    with pytest.raises(ProtocolError):
        conn.next_event()
    assert conn.next_event() == ast.Noop("B8")


def test_catenate_before_login_is_not_streamed() -> None:
    conn = ImapConnection()
    conn.receive_data(b'C1 APPEND X CATENATE (URL "/INBOX/;UID=1")\r\n')
    with pytest.raises(ProtocolError) as info:
        conn.next_event()
    assert info.value.tag == "C1" and info.value.status == "BAD"


def test_imap_urls() -> None:
    u = parse_url("imap://fred%40example.test@Mail.Example.Test/Dr%C3%A4fts;UIDVALIDITY=7"
                  "/;UID=20/;Section=1.2.MIME/;PARTIAL=3.40")
    assert (u.user, u.host, u.mailbox, u.uidvalidity, u.uid) == (
        "fred@example.test", "mail.example.test", "Dräfts", 7, 20)
    assert u.section == ast.Section((1, 2), "MIME") and u.partial == (3, 40)
    assert not u.authorized and u.access is None
    r = parse_url("/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)", relative=True)
    assert r.user is None and r.section == ast.Section((), "HEADER.FIELDS", ("SUBJECT",))
    rump = ("imap://joe@example.com/INBOX/;uid=20/;section=1.2;EXPIRE=2030-01-01T00:00:00Z"
            ";urlauth=submit+fred")
    key = b"k" * 32
    full = f"{rump}:INTERNAL:{urlauth_token(key, rump)}"
    a = parse_url(full)
    assert a.rump == rump and a.access == "submit+fred" and a.mechanism == "INTERNAL"
    assert a.expire == datetime(2030, 1, 1, tzinfo=UTC)
    assert token_matches(key, a) and not token_matches(b"x" * 32, a)
    assert not token_matches(key, parse_url(full.replace("uid=20", "uid=21")))
    for bad in ("/INBOX/;UID=1", "imap://h/INBOX", "imap://h/INBOX/;UID=0", "imap://h/;UID=1",
                "imap://h/INBOX/;UID=1/;SECTION=9.FOO", "imap://h/INBOX/;UID=1;URLAUTH=root",
                "imap://h/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:xyz",
                "imap://h/INBOX/;UID=1;EXPIRE=tomorrow;URLAUTH=anonymous",
                "imap://h/IN BOX/;UID=1", "imap://h/%FF/;UID=1", "x" * 9000):
        with pytest.raises(UrlError):
            parse_url(bad)
