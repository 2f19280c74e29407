"""Envelope path grammar (RFC 5321 4.1.2, RFC 6531 3.3)."""

from __future__ import annotations

import pytest

from mailwright.proto.smtp.address import (
    Path,
    PathError,
    is_address_literal,
    is_domain,
    parse_path,
    split_path,
)


@pytest.mark.parametrize(
    ("text", "local", "domain", "route", "literal"),
    [
        ("<bob@example.test>", "bob", "example.test", (), False),
        ("<Bob@Example.TEST>", "Bob", "example.test", (), False),
        ('<"bob"@example.test>', "bob", "example.test", (), False),
        ('<"a@b.test"@example.test>', "a@b.test", "example.test", (), False),
        ('<"a\\"b"@example.test>', 'a"b', "example.test", (), False),
        ("<a%b.test@example.test>", "a%b.test", "example.test", (), False),
        ("<b.test!a@example.test>", "b.test!a", "example.test", (), False),
        ("<@r1.test,@R2.test:a@example.test>", "a", "example.test", ("r1.test", "r2.test"), False),
        ("<a@[192.0.2.1]>", "a", "[192.0.2.1]", (), True),
        ("<a@[IPv6:2001:db8::1]>", "a", "[ipv6:2001:db8::1]", (), True),
        ("<δοκιμή@παράδειγμα.test>", "δοκιμή", "παράδειγμα.test", (), False),
    ],
)
def test_smtp_address_parse(
    text: str, local: str, domain: str, route: tuple[str, ...], literal: bool
) -> None:
    p = parse_path(text)
    assert (p.local_part, p.domain, p.route, p.literal) == (local, domain, route, literal)


@pytest.mark.parametrize(
    "text",
    [
        "bob@example.test",
        "<bob@example.test",
        "<bob>",
        "<@example.test>",
        "<bob@>",
        "<bob@example.test.>",
        "<bob@.example.test>",
        "<bob@exa mple.test>",
        "<bo b@example.test>",
        "<.bob@example.test>",
        "<bob.@example.test>",
        "<bob@-example.test>",
        "<bob@example-.test>",
        "<bob@[1.2.3]>",
        "<bob@[IPv6:::g]>",
        '<"bob@example.test>',
        '<"bob"x@example.test>',
        "<a@b@example.test>",
        "<@:bob@example.test>",
        "<@r.test bob@example.test>",
        "<bob@" + "a" * 64 + ".test>",
        "<bob@" + ".".join(["abcdefgh"] * 30) + ">",
        "<bob@exa\x00mple.test>",
    ],
)
def test_smtp_address_rejects(text: str) -> None:
    with pytest.raises(PathError):
        parse_path(text)


def test_smtp_address_postmaster_only_where_allowed() -> None:
    assert parse_path("<POSTMASTER>", allow_postmaster=True) == Path(
        raw="POSTMASTER", local_part="postmaster", domain=None
    )
    with pytest.raises(PathError):
        parse_path("<postmaster>")


def test_smtp_address_mailbox_requotes_when_needed() -> None:
    assert parse_path('<"bob"@Example.test>').mailbox == "bob@example.test"
    assert parse_path('<"a b"@x.test>').mailbox == '"a b"@x.test'
    assert parse_path('<"a\\"b"@x.test>').mailbox == '"a\\"b"@x.test'


def test_smtp_address_split_path_honours_quotes() -> None:
    assert split_path('<"a>b"@x.test> SIZE=1') == ('<"a>b"@x.test>', " SIZE=1")
    with pytest.raises(PathError):
        split_path('<"a>b@x.test')


def test_smtp_address_domains_and_literals() -> None:
    assert is_domain("a-b.example")
    assert not is_domain("a_b.example")
    assert is_address_literal("[192.0.2.1]")
    assert is_address_literal("[IPv6:::1]")
    assert is_address_literal("[x-tag:abc]")
    assert not is_address_literal("[192.0.2.256]")
    assert not is_address_literal("192.0.2.1")
