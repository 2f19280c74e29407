"""IMAP response encoder: the right wire form for every value."""

from __future__ import annotations

import pytest

from mailwright.proto.imap import response as r


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("INBOX", b"INBOX"),
        ("a]b", b"a]b"),
        ("", b'""'),
        ("NIL", b'"NIL"'),
        ("two words", b'"two words"'),
        ('q"uo\\te', b'"q\\"uo\\\\te"'),
        ("Entwürfe", '"Entwürfe"'.encode()),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("%*", b'"%*"'),
    ],
)
def test_response_astring(value: str, expected: bytes) -> None:
    assert r.astring(value) == expected


def test_response_string_8bit_without_utf8_is_literal() -> None:
    assert r.string("ü", utf8=False) == b"{2}\r\n\xc3\xbc"
    assert r.string(b"\xff") == b"{1}\r\n\xff"


def test_response_long_values_go_as_literals() -> None:
    assert r.string("x" * 2000).startswith(b"{2000}\r\n")


def test_response_nstring_and_literal8() -> None:
    assert r.nstring(None) == b"NIL"
    assert r.nstring("a") == b'"a"'
    assert r.literal(b"\x00", binary=True) == b"~{1}\r\n\x00"


def test_response_status_lines() -> None:
    assert r.encode(r.Tagged("a1", "OK", "done", "READ-WRITE")) == b"a1 OK [READ-WRITE] done\r\n"
    assert r.encode(r.Tagged("a1", "NO", "bad\r\nthing")) == b"a1 NO bad  thing\r\n"
    assert r.encode(r.Untagged.status("BYE", "bye")) == b"* BYE bye\r\n"
    assert r.encode(r.Untagged(b"3 EXISTS")) == b"* 3 EXISTS\r\n"
    assert r.encode(r.Continuation("go")) == b"+ go\r\n"
    assert r.encode(r.Continuation(data=b"")) == b"+ \r\n"
    assert r.flag_list(["\\Seen", "$x"]) == b"(\\Seen $x)"
