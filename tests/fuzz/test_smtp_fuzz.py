"""Property tests: nothing a client sends makes an exception leave the SMTP core, and every
byte the core sends is a well-formed reply (RFC 5321 4.2)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.proto.smtp import (
    NEED_DATA,
    PAUSED,
    AuthCredentials,
    BdatChunkEnd,
    Hello,
    MailFrom,
    MessageEnd,
    MessageStart,
    RcptTo,
    Reply,
    ServerConnection,
    StartTLS,
    State,
)

# RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF
_LINE = re.compile(rb"([2-5][0-9]{2})([ -])([^\r\n]*)\r\n")
_ENHANCED = re.compile(rb"[245]\.[0-9]{1,3}\.[0-9]{1,3}( |$)")

COMMANDS = [
    b"EHLO client.example\r\n", b"HELO x\r\n", b"MAIL FROM:<a@remote.test>\r\n",
    b"MAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n", b"RCPT TO:<bob@example.test>\r\n",
    b"RCPT TO:<x@y> NOTIFY=NEVER\r\n", b"DATA\r\n", b"BDAT 5\r\n", b"BDAT 0 LAST\r\n",
    b"BDAT 3 LAST\r\n", b"RSET\r\n", b"NOOP\r\n", b"VRFY x\r\n", b"HELP\r\n", b"QUIT\r\n",
    b"STARTTLS\r\n", b"AUTH PLAIN\r\n", b"AUTH LOGIN\r\n", b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    b"*\r\n", b"YWxpY2U=\r\n", b".\r\n", b"\r\n.\r\n", b"..\r\n", b"\n.\n", b"\r.\r",
    b"hello\r\n", b"\xff\xfe\r\n", b"\x00\r\n",
]  # fmt: skip

chunks = st.lists(st.one_of(st.sampled_from(COMMANDS), st.binary(max_size=40)), max_size=40).map(
    b"".join
)


def check_replies(out: bytes) -> None:
    pos = 0
    continuing: bytes | None = None
    while pos < len(out):
        m = _LINE.match(out, pos)
        assert m, f"malformed reply at {out[pos : pos + 80]!r}"
        code, sep, _text = m.groups()
        if continuing is not None:
            assert code == continuing, "a multi-line reply changes its code"
        continuing = code if sep == b"-" else None
        pos = m.end()
    assert continuing is None, "the last reply is unfinished"


def drive(data: bytes, sizes: list[int], decisions: list[bool]) -> None:
    conn = ServerConnection(
        "mx.example.test",
        max_message_size=64,
        max_recipients=3,
        max_line_length=80,
        max_auth_line_length=120,
        starttls=True,
        auth_mechanisms=("PLAIN", "LOGIN"),
        auth_requires_tls=False,
    )
    conn.greet()
    out = bytearray(conn.data_to_send())
    i = 0
    k = 0
    pieces = []
    for n in sizes or [len(data)]:
        pieces.append(data[i : i + n])
        i += n
    pieces.append(data[i:])
    pieces.append(b"")  # EOF
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            assert event is not PAUSED
            if isinstance(
                event,
                Hello
                | MailFrom
                | RcptTo
                | MessageStart
                | BdatChunkEnd
                | MessageEnd
                | AuthCredentials,
            ):
                yes = decisions[k % len(decisions)] if decisions else True
                k += 1
                if yes:
                    conn.accept()
                else:
                    conn.reject(Reply(550, "5.7.1", "No"))
            elif isinstance(event, StartTLS):
                assert conn.state is State.TLS_PENDING
                conn.tls_started()
        out += conn.data_to_send()
        if conn.closed:
            break
    check_replies(bytes(out))
    for line in bytes(out).split(b"\r\n"):
        # RFC 2034 3: enhanced codes on every 2xx/4xx/5xx reply but the greeting and EHLO/HELO.
        if line[:1] in (b"4", b"5") and len(line) > 4:
            assert _ENHANCED.match(line[4:]), line


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=chunks, sizes=st.lists(st.integers(0, 30), max_size=20),
       decisions=st.lists(st.booleans(), max_size=8))  # fmt: skip
def test_smtp_fuzz_no_exception_and_wellformed_replies(
    data: bytes, sizes: list[int], decisions: list[bool]
) -> None:
    drive(data, sizes, decisions)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_smtp_fuzz_random_bytes(data: bytes) -> None:
    drive(b"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\n" + data, [], [])
