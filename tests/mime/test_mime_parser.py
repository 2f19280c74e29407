"""Hand-made cases for the parse-once MIME parser and the IMAP renderings (no corpus needed)."""

from __future__ import annotations

import pytest

from mailwright.mime import MessageInfo, imapfmt, normalize_crlf, parse_message
from mailwright.mime.address import parse_address_list
from mailwright.mime.imapfmt import SectionError, UnknownCTE

MULTI = normalize_crlf(
    b"From: Alice <alice@example.test>\n"
    b"To: bob@example.test, Carol <carol@example.test>\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= menu\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\n"
    b"Message-ID: <1@example.test>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="XX"\n'
    b"\n"
    b"preamble\n"
    b"--XX\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"caf=C3=A9 =\n"
    b"ok\n"
    b"--XX\n"
    b"Content-Type: message/rfc822\n"
    b"\n"
    b"Subject: inner\n"
    b"From: x@y.test\n"
    b"\n"
    b"inner body\n"
    b"--XX\n"
    b"Content-Type: application/octet-stream; name*0*=utf-8''a%20; name*1=b.bin\n"
    b"Content-Transfer-Encoding: base64\n"
    b"Content-Disposition: attachment; filename=ab.bin\n"
    b"\n"
    b"AAECAw==\n"
    b"--XX--\n"
    b"epilogue\n"
)


def test_normalize_crlf_converts_bare_lf_and_drops_trailing_cr() -> None:
    assert normalize_crlf(b"a\nb\r\nc\n") == b"a\r\nb\r\nc\r\n"
    assert normalize_crlf(b"a\r\r\nb") == b"a\r\r\nb"
    assert normalize_crlf(b"a\nb\r") == b"a\r\nb"
    assert normalize_crlf(b"") == b""


def test_parse_message_part_tree_and_offsets() -> None:
    info = parse_message(MULTI)
    root = info.root
    assert root.kind == "M" and len(root.children) == 3
    text, msg, _att = root.children
    # the CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1)
    assert MULTI[text.body_start : text.end] == b"caf=C3=A9 =\r\nok"
    assert msg.kind == "m" and msg.children[0].envelope is not None
    assert msg.children[0].envelope.subject == b"inner"
    assert MULTI[root.body_start :].startswith(b"preamble")
    assert root.end == len(MULTI)
    assert info.header_end == MULTI.index(b"\r\n\r\n") + 4


def test_rfc2231_continuations_joined_like_dovecot() -> None:
    info = parse_message(MULTI)
    att = info.root.children[2]
    assert att.params == ((b"name*", b"utf-8''a%20b.bin"),)


def test_messageinfo_json_round_trip() -> None:
    info = parse_message(MULTI)
    again = MessageInfo.from_json(info.to_json())
    assert imapfmt.bodystructure(again) == imapfmt.bodystructure(info)
    assert imapfmt.envelope(again.envelope) == imapfmt.envelope(info.envelope)
    assert again.to_json() == info.to_json()


def test_envelope_rendering() -> None:
    info = parse_message(MULTI)
    env = imapfmt.envelope(info.envelope)
    assert env.startswith(b'("Mon, 7 Feb 1994 21:52:25 -0800" "=?utf-8?q?caf=C3=A9?= menu" '
                          b'(("Alice" NIL "alice" "example.test"))')
    assert b'((NIL NIL "bob" "example.test")("Carol" NIL "carol" "example.test"))' in env
    assert env.endswith(b'NIL NIL NIL "<1@example.test>")')


def test_bodystructure_rendering() -> None:
    info = parse_message(MULTI)
    bs = imapfmt.bodystructure(info)
    assert bs.startswith(b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 15 1')
    assert b'"mixed" ("boundary" "XX") NIL NIL NIL)' in bs
    assert b'("message" "rfc822" NIL NIL NIL "7bit"' in bs
    body = imapfmt.bodystructure(info, extended=False)
    assert body.endswith(b' "mixed")')


def test_sections() -> None:
    info = parse_message(MULTI)
    sec = imapfmt.section_bytes
    assert sec(info, MULTI, []) == MULTI
    assert sec(info, MULTI, [], "HEADER") == MULTI[: info.header_end]
    assert sec(info, MULTI, [], "TEXT") == MULTI[info.header_end :]
    assert sec(info, MULTI, [1], "MIME").startswith(b"Content-Type: text/plain")
    assert sec(info, MULTI, [2], "HEADER") == b"Subject: inner\r\nFrom: x@y.test\r\n\r\n"
    assert sec(info, MULTI, [2], "TEXT") == b"inner body"
    assert sec(info, MULTI, [2, 1]) == b"inner body"
    fields = sec(info, MULTI, [], "HEADER.FIELDS", [b"subject", b"FROM"])
    assert fields == (b"From: Alice <alice@example.test>\r\n"
                      b"Subject: =?utf-8?q?caf=C3=A9?= menu\r\n\r\n")
    notf = sec(info, MULTI, [], "HEADER.FIELDS.NOT", [b"Subject", b"From", b"To", b"Date",
                                                       b"Message-ID", b"MIME-Version"])
    assert notf == b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    with pytest.raises(SectionError):
        sec(info, MULTI, [9])
    with pytest.raises(SectionError):
        sec(info, MULTI, [1], "TEXT")
    assert imapfmt.partial(b"0123456789", 2, 3) == b"234"
    assert imapfmt.partial(b"0123456789", 20, 3) == b""


def test_binary_decoding_and_unknown_cte() -> None:
    info = parse_message(MULTI)
    assert imapfmt.binary_section(info, MULTI, [1]) == "café ok".encode()
    assert imapfmt.binary_section(info, MULTI, [3]) == b"\x00\x01\x02\x03"
    assert imapfmt.binary_size(info, MULTI, [3]) == 4
    whole = imapfmt.binary_section(info, MULTI, [])
    assert b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\x03" in whole
    raw = normalize_crlf(b"Content-Type: text/plain\nContent-Transfer-Encoding: 6bit\n\nx\n")
    bad = parse_message(raw)
    with pytest.raises(UnknownCTE):
        imapfmt.binary_section(bad, raw, [1])
    assert imapfmt.section_bytes(bad, raw, [1]) == b"x\r\n"


def test_nul_bytes_become_0x80_in_body_sections_but_not_in_binary() -> None:
    raw = b"Subject: n\r\n\r\na\x00b\r\n"
    info = parse_message(raw)
    assert imapfmt.section_bytes(info, raw, []) == b"Subject: n\r\n\r\na\x80b\r\n"
    assert imapfmt.binary_section(info, raw, [1]) == b"a\x00b\r\n"
    assert imapfmt.literal(b"a\x00", binary=True).startswith(b"~{2}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"a@b", [(None, None, b"a", b"b")]),
        (b"foo", [(None, None, b"foo", b"MISSING_DOMAIN")]),
        (b"Someone Else", [(b"Someone Else", None, b"MISSING_MAILBOX", b"MISSING_DOMAIN")]),
        (b", a@b", [(None, None, b"MISSING_MAILBOX", b"MISSING_DOMAIN"), (None, None, b"a", b"b")]),
        (b"undisclosed recipients: ;",
         [(None, None, b"undisclosed recipients", None), (None, None, None, None)]),
        (b"x@y (Comment Name)", [(b"Comment Name", None, b"x", b"y")]),
        (b"MAILER DAEMON <>", [(b"MAILER DAEMON", None, b"MISSING_MAILBOX", b"MISSING_DOMAIN")]),
        (b"alice@example.com <bob@example.com>", [(None, None, b"alice", b"example.com")]),
    ],
)
def test_address_parsing(value: bytes, expected: list[tuple[bytes | None, ...]]) -> None:
    got = parse_address_list(value)
    assert got is not None
    assert [(a.name, a.route, a.mailbox, a.host) for a in got] == expected


def test_no_boundary_multipart_gets_empty_child() -> None:
    raw = b"Content-Type: multipart/mixed\r\n\r\nhello\r\n"
    info = parse_message(raw)
    assert imapfmt.bodystructure(info, False) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")')
    assert imapfmt.section_bytes(info, raw, [1]) == b""


def test_unparseable_content_type_is_empty_non_text() -> None:
    raw = b"Content-Type: application-x-gzip; name=a\r\n\r\nxx\r\n"
    info = parse_message(raw)
    assert imapfmt.bodystructure(info, False) == b'("" "" NIL NIL NIL "7bit" 4)'


@pytest.mark.parametrize(
    "raw",
    [b"", b"\r\n", b"no header at all", b"--x\r\n", b"A: b\r\n c", b"\x00\xff:\r\n\r\n\r\n",
     b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n--a\r\n--a--",
     b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n"],
)
def test_degenerate_inputs_parse(raw: bytes) -> None:
    info = parse_message(raw)
    assert info.size == len(raw)
    imapfmt.bodystructure(info)
    imapfmt.envelope(info.envelope)
    MessageInfo.from_json(info.to_json())


def test_deep_nesting_is_bounded() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 500 + b"body\r\n"
    info = parse_message(raw)
    depth = 0
    part = info.root
    while part.children:
        part = part.children[0]
        depth += 1
    assert depth <= 101
    assert imapfmt.bodystructure(info)


# --- Dovecot-compatible structure rules (each seen in the corpus; kept here so they are
# --- checked even where ../shared/corpus is absent)


def test_boundary_longer_than_80_is_cut() -> None:
    b = b"1234567890" * 9  # 90 characters
    raw = (b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b[:80]
           + b"XYZ\r\n\r\npart\r\n--" + b + b"--\r\n")
    info = parse_message(raw)
    # both lines start with the 80-character cut, so both are delimiters; the last one is
    # not a closing one (what follows the 80 characters is not "--")
    assert len(info.root.children) == 2
    assert imapfmt.section_bytes(info, raw, [1]) == b"part"


def test_longest_matching_outer_boundary_ends_inner_parts() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n"
           b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\ninner\r\n"
           b"--ab\r\n\r\nsecond\r\n--ab--\r\n")
    info = parse_message(raw)
    assert len(info.root.children) == 2
    assert imapfmt.section_bytes(info, raw, [1, 1]) == b"inner"
    assert imapfmt.section_bytes(info, raw, [2]) == b"second"


def test_header_cut_by_delimiter_and_blank_line_before_foreign_delimiter() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: text/plain\r\n--b\r\n"  # header cut by the delimiter
           b"Content-Type: text/html\r\n\r\n--b--\r\n")  # blank line, then delimiter
    info = parse_message(raw)
    assert imapfmt.section_bytes(info, raw, [1], "MIME") == b"Content-Type: text/plain"
    assert imapfmt.section_bytes(info, raw, [2], "MIME") == b"Content-Type: text/html\r\n"
    assert imapfmt.section_bytes(info, raw, [2]) == b""
    assert any("cut short" in p for p in info.problems)


def test_digest_parts_default_to_message_rfc822() -> None:
    raw = (b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n"
           b"Subject: one\r\n\r\nbody one\r\n--d--\r\n")
    info = parse_message(raw)
    part = info.root.children[0]
    assert part.kind == "m"
    assert part.children[0].envelope is not None
    assert part.children[0].envelope.subject == b"one"
    assert imapfmt.bodystructure(info, False).startswith(b'(("message" "rfc822" NIL NIL NIL')


def test_content_fields_ignored_without_mime_version_or_content_type() -> None:
    raw = b"Content-Transfer-Encoding: base64\r\nContent-ID: <x>\r\n\r\naGk=\r\n"
    info = parse_message(raw)
    assert imapfmt.bodystructure(info, False) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1)')


def test_envelope_last_string_wins_and_addresses_accumulate() -> None:
    raw = (b"Subject: first\r\nSubject: second\r\nFrom: a@x\r\nFrom: b@y\r\n"
           b"Subject:   spaced\t out  \r\n\r\n")
    env = parse_message(raw).envelope
    assert imapfmt.humanize(env.subject) == b"spaced out"
    assert env.from_ is not None and [a.mailbox for a in env.from_] == [b"a", b"b"]


def test_rfc2231_missing_index_keeps_pieces() -> None:
    raw = b"Content-Type: text/plain; name*0=a; name*2=c\r\n\r\n"
    info = parse_message(raw)
    assert info.root.params == ((b"name*0", b"a"), (b"name*2", b"c"))


def test_base64_decoding_is_lenient() -> None:
    assert imapfmt.decode_base64(b"aGVs\r\nbG8=\r\n") == b"hello"
    assert imapfmt.decode_base64(b"aGVsbG8") == b"hello"
    assert imapfmt.decode_base64(b"aGVs!!bG8=junk") == b"hello"
    assert imapfmt.decode_qp(b"a=3Db=\r\nc \r\nd=ZZ") == b"a=bc\r\nd=ZZ"



def test_later_fields_replace_unusable_cte_and_bare_disposition() -> None:
    raw = (b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8 bit;\r\n"
           b"Content-Transfer-Encoding: base64\r\nContent-Disposition: inline\r\n"
           b"Content-Disposition: attachment; filename=a\r\n"
           b"Content-Disposition: inline; x=y\r\n\r\naGk=\r\n")
    info = parse_message(raw)
    assert info.root.cte == b"base64"
    assert info.root.disposition == b"attachment"
    assert info.root.disposition_params == ((b"filename", b"a"),)
