"""imapd.fetch on hand-made messages: every data item, partials, missing parts, BINARY errors."""

from __future__ import annotations

import pytest

from mailwright.imapd import fetch
from mailwright.mime import normalize_crlf, parse_message
from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import parse_command
from mailwright.store.api import MessageRecord

RAW = normalize_crlf(
    b"From: a@b.test\nSubject: hi\nContent-Type: multipart/mixed; boundary=x\n\n"
    b"--x\nContent-Type: text/plain\n\nhello\x00world\n"
    b"--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
    b"AAE=\n--x\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n"
    b"--x--\n"
)
INFO = parse_message(RAW)
REC = MessageRecord(1, 7, 42, frozenset({"\\Seen", "$Junk", "\\Answered"}), 1626258896.0,
                    len(RAW), "b")


def items(text: str) -> tuple[ast.FetchItem, ...]:
    cmd = parse_command(b"A FETCH 1 " + text.encode())
    assert isinstance(cmd, ast.Fetch)
    return cmd.items


def run(text: str) -> bytes:
    its = items(text)
    return fetch.fetch_items(REC, its, INFO if fetch.needs_info(its) else None,
                             RAW if fetch.needs_raw(its) else None)


def test_fetch_simple_attributes() -> None:
    assert run("(UID FLAGS RFC822.SIZE MODSEQ INTERNALDATE)") == (
        b'(UID 7 FLAGS (\\Answered \\Seen $Junk) RFC822.SIZE %d MODSEQ (42) '
        b'INTERNALDATE "14-Jul-2021 10:34:56 +0000")' % len(RAW))
    assert not fetch.needs_info(items("(UID FLAGS)"))
    assert fetch.needs_raw(items("BODY.PEEK[1]")) and not fetch.needs_raw(items("ENVELOPE"))


def test_fetch_envelope_and_structure() -> None:
    out = run("(ENVELOPE BODY)")
    assert out.startswith(b'(ENVELOPE (NIL "hi" ((NIL NIL "a" "b.test"))')
    assert b'BODY (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0)' in out


def test_fetch_sections_partial_and_missing() -> None:
    assert run("BODY.PEEK[1]") == b"(BODY[1] {11}\r\nhello\x80world)"
    assert run("BODY.PEEK[1]<2.3>") == b"(BODY[1]<2> {3}\r\nllo)"
    assert run("BODY.PEEK[1]<50.3>") == b"(BODY[1]<50> {0}\r\n)"
    assert run("BODY.PEEK[9]") == b"(BODY[9] \"\")"
    assert run("BODY[HEADER.FIELDS (Subject)]") == b"(BODY[HEADER.FIELDS (Subject)] {15}\r\n" \
        b"Subject: hi\r\n\r\n)"
    assert run("RFC822.HEADER").startswith(b"(RFC822.HEADER {")
    assert run("RFC822").endswith(b"--x--\r\n)")


def test_fetch_binary() -> None:
    assert run("(BINARY.SIZE[2] BINARY.PEEK[2])") == b"(BINARY.SIZE[2] 2 BINARY[2] ~{2}\r\n\x00\x01)"
    assert run("BINARY.PEEK[1]") == b"(BINARY[1] ~{11}\r\nhello\x00world)"
    assert run("BINARY.PEEK[7]") == b"(BINARY[7] {0}\r\n)"
    assert run("BINARY.SIZE[7]") == b"(BINARY.SIZE[7] 0)"
    with pytest.raises(fetch.FetchError) as err:
        run("BINARY.PEEK[3]")
    assert err.value.code == "UNKNOWN-CTE"


def test_fetch_line_and_internaldate() -> None:
    its = items("UID")
    assert fetch.fetch_line(3, REC, its, None, None) == b"* 3 FETCH (UID 7)\r\n"
    assert fetch.internaldate(0) == b'"01-Jan-1970 00:00:00 +0000"'


def test_fetch_chunks_keep_contents_separate() -> None:
    its = items("(UID BODY.PEEK[2])")
    chunks = fetch.fetch_chunks(5, REC, its, INFO, RAW)
    assert chunks == [b"* 5 FETCH (", b"UID 7", b" BODY[2] ", b"{4}\r\n", b"AAE=", b")\r\n"]
    assert b"".join(chunks) == fetch.fetch_line(5, REC, its, INFO, RAW)
