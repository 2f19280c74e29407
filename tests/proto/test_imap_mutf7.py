"""Modified UTF-7 (RFC 3501 5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.proto.imap import mutf7


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("INBOX", "INBOX"),
        ("A&B", "A&-B"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
    ],
)
def test_mutf7_roundtrip(text: str, wire: str) -> None:
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text


@pytest.mark.parametrize("bad", ["&Jjo", "&AGE-", "&Jjo!-", "caf\xe9", "&U,BTF2XlZyyKng-x&-"[:-3] + "&="])
def test_mutf7_rejects_malformed(bad: str) -> None:
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode(bad)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_mutf7_property_roundtrip(text: str) -> None:
    assert mutf7.decode(mutf7.encode(text)) == text
