"""Mailbox name rules and LIST patterns."""

from __future__ import annotations

import pytest

from mailwright.imapd import names


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("inbox", "INBOX"), ("Inbox/Sub", "INBOX/Sub"), ("a/b/", "a/b"), ("Entwürfe", "Entwürfe"),
     ("INBOXES", "INBOXES")],
)
def test_names_valid(raw: str, stored: str) -> None:
    assert names.from_client(raw, utf8=True) == stored


@pytest.mark.parametrize("raw", ["", "/etc", "a//b", "../x", "a/./b", "a*", "b%", "x\x01", "a" * 600,
                                 "/".join(["a"] * 20)])
def test_names_invalid(raw: str) -> None:
    with pytest.raises(names.NameError_):
        names.from_client(raw, utf8=True)


def test_names_mutf7_for_rev1() -> None:
    assert names.from_client("Entw&APw-rfe", utf8=False) == "Entwürfe"
    assert names.to_client("Entwürfe", utf8=False) == "Entw&APw-rfe"
    with pytest.raises(names.NameError_):
        names.from_client("&bad", utf8=False)


@pytest.mark.parametrize(
    ("ref", "pattern", "name", "expected"),
    [
        ("", "*", "a/b/c", True),
        ("", "%", "a/b", False),
        ("", "%", "a", True),
        ("", "a/%", "a/b", True),
        ("a/", "%", "a/b", True),
        ("a", "%", "a/b", True),
        ("", "inbox", "INBOX", True),
        ("", "INBOX/*", "INBOX/x", True),
        ("", "x.y", "xzy", False),
        ("", "", "a", False),
    ],
)
def test_names_list_patterns(ref: str, pattern: str, name: str, expected: bool) -> None:
    rx = names.matcher(ref, pattern, utf8=True)
    assert rx is not None
    assert names.matches(rx, name) is expected
