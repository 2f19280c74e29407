"""Hypothesis fuzzing of the Sieve language and the ManageSieve core.

Sieve: any text is either compiled or refused with SieveSyntaxError (and a line inside the
script); scripts built from the grammar's pieces, when they compile, run on hostile messages
to a RunResult, never an exception. ManageSieve: any client bytes, any split, only PeerError,
and the split never changes the events.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.proto import managesieve as ms
from mailwright.sieve import Envelope, SieveMessage, SieveSyntaxError, compile_script, run_script

_PIECES = [
    'require ["fileinto", "variables", "regex", "relational", "body", "date", "index",'
    ' "imap4flags", "editheader", "vacation", "enotify", "duplicate", "copy", "subaddress",'
    ' "envelope", "comparator-i;ascii-numeric", "encoded-character", "mailbox", "include",'
    ' "spamtest", "virustest", "reject"];',
    "if", "elsif", "else", "anyof", "allof", "not", "true", "false", "header", "address",
    "envelope", "exists", "size", "body", "string", "date", "currentdate", "hasflag",
    "spamtest", "virustest", "duplicate", "fileinto", "keep", "discard", "redirect", "stop",
    "set", "addflag", "setflag", "removeflag", "addheader", "deleteheader", "vacation",
    "notify", "include", "return", "reject", ":is", ":contains", ":matches", ":regex",
    ':value "gt"', ':count "eq"', ':comparator "i;ascii-numeric"', ":index 1", ":last",
    ":over", ":under", ":domain", ":localpart", ":user", ":detail", ":raw", ":text",
    ':content "text"', ":copy", ":create", ':flags "\\\\Seen"', ":days 1", ":seconds 5",
    ':zone "+0100"', ":originalzone", ":lower", ":upper", ":length", ":quotewildcard",
    '"subject"', '"from"', '"to"', '"*"', '"?a*"', '"(a|b)+$"', '"[[:alpha:]]"', '"${1}"',
    '"${hex:41}"', '"${unicode:1F600}"', '"x@example.org"', '"mailto:a@example.org"',
    '"date"', '"year"', '"iso8601"', '["a", "b"]', "100", "1K", "(", ")", "{", "}", "[", "]",
    ",", ";", "text:\n.a\n..\n.\n", "# c\n", "/* c */", "\n",
]

_scripts = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=40).map(" ".join)
_messages = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from([
        b"Subject: =?utf-8?q?=C3=BC?=\r\n", b"From: a@b.c, <x@y>\r\n", b"To: g: a@b;, c\r\n",
        b"Date: Tue, 01 Dec 2026 09:59:50 -0500\r\n", b"Date: garbage\r\n", b"X-Spam-Score: 99\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n", b"\r\n", b"--b\r\n", b"--b--\r\n",
        b"Content-Transfer-Encoding: base64\r\n", b"////\r\n", b" folded\r\n", b"body\r\n",
    ]), max_size=20).map(b"".join),
)


def _compile(text: str) -> object:
    try:
        return compile_script(text)
    except SieveSyntaxError as exc:
        assert 1 <= exc.line <= text.count("\n") + 2
        return None


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_sieve_fuzz_any_text_compiles_or_is_refused(text: str) -> None:
    _compile(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_sieve_fuzz_any_bytes_compile_or_are_refused(data: bytes) -> None:
    try:
        compile_script(data)
    except SieveSyntaxError:
        pass


@settings(max_examples=600, deadline=None)
@given(_scripts, _messages)
def test_sieve_fuzz_grammar_pieces_run_without_crashing(text: str, message: bytes) -> None:
    compiled = _compile(text)
    if compiled is None:
        return
    result = run_script(compiled, SieveMessage.from_bytes(message),  # type: ignore[arg-type]
                        Envelope("a@b.c", "d+e@f.g"))
    assert result.error is None or result.error.startswith(("line ", "script"))


_MS_WORDS = [
    b"CAPABILITY", b"NOOP", b'NOOP "t"', b"LOGOUT", b"STARTTLS", b'AUTHENTICATE "PLAIN"',
    b'AUTHENTICATE "PLAIN" "AGJvYgB4"', b'"AGJvYgB4"', b'"*"', b'PUTSCRIPT "a" {5+}\r\nkeep;',
    b'PUTSCRIPT "a" {5}\r\nkeep;', b'PUTSCRIPT "a" {999999+}\r\n', b"LISTSCRIPTS",
    b'HAVESPACE "a" 100', b'SETACTIVE ""', b'GETSCRIPT "a"', b'RENAMESCRIPT "a" "b"',
    b'"unterminated', b"{x}", b"12 34", b'"a\\"b"', b"", b"x" * 300,
]
_ms_inputs = st.one_of(
    st.lists(st.one_of(st.sampled_from(_MS_WORDS), st.binary(max_size=30)), min_size=1,
             max_size=20).map(lambda parts: b"".join(p + b"\r\n" for p in parts)),
    st.binary(max_size=500),
)


def _ms_run(chunks: list[bytes]) -> list[object]:
    conn = ms.ServerConnection(max_line=200, max_literal=64)
    events: list[object] = []
    pending = list(chunks)
    for _ in range(10_000):
        try:
            event = conn.next_event()
        except ms.PeerError as exc:
            assert exc.reply.status in ("NO", "BYE")
            events.append(exc.reply)
            if exc.fatal:
                return events
            continue
        if event is ms.NEED_DATA:
            conn.receive_data(pending.pop(0) if pending else b"")
            continue
        if isinstance(event, ms.ConnectionClosed):
            return events
        events.append(event)
        if isinstance(event, ms.Command) and event.name == "AUTHENTICATE" and len(event.args) == 1:
            conn.expect_sasl()
    raise AssertionError("core did not make progress")


@settings(max_examples=400, deadline=None)
@given(_ms_inputs, st.lists(st.integers(min_value=1, max_value=500), max_size=8))
def test_managesieve_fuzz_any_input_any_split(data: bytes, cuts: list[int]) -> None:
    whole = _ms_run([data])
    points = sorted({c for c in cuts if c < len(data)})
    chunks, prev = [], 0
    for point in [*points, len(data)]:
        if data[prev:point]:
            chunks.append(data[prev:point])
        prev = point
    assert _ms_run(chunks) == whole
    assert _ms_run([data[i : i + 1] for i in range(len(data))]) == whole
