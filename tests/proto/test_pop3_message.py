"""TOP slicing (RFC 1939 7): the header, the blank line and exactly n body lines."""

from __future__ import annotations

import pytest

from mailwright.proto import pop3

MSG = b"Subject: a\r\nFrom: b\r\n\r\nline1\r\nline2\r\n\r\nline4\r\n"


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, b"Subject: a\r\nFrom: b\r\n\r\n"),
        (1, b"Subject: a\r\nFrom: b\r\n\r\nline1\r\n"),
        (3, b"Subject: a\r\nFrom: b\r\n\r\nline1\r\nline2\r\n\r\n"),
        (4, MSG),
        (100, MSG),
    ],
)
def test_pop3_message_top_counts_body_lines(n: int, expected: bytes) -> None:
    assert pop3.top(MSG, n) == expected


def test_pop3_message_top_header_only_message() -> None:
    assert pop3.top(b"Subject: x\r\nFrom: y\r\n", 0) == b"Subject: x\r\nFrom: y\r\n"


def test_pop3_message_top_empty_header() -> None:
    assert pop3.top(b"\r\nbody\r\nmore\r\n", 1) == b"\r\nbody\r\n"


def test_pop3_message_top_unterminated_last_line() -> None:
    assert pop3.top(b"A: b\r\n\r\nx\r\ny", 2) == b"A: b\r\n\r\nx\r\ny"


def test_pop3_message_top_bare_lf() -> None:
    assert pop3.top(b"A: b\n\nx\ny\n", 1) == b"A: b\n\nx\n"


def test_pop3_message_top_rejects_negative() -> None:
    with pytest.raises(ValueError):
        pop3.top(MSG, -1)
