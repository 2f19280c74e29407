"""UTF-8 headers for clients that did not ENABLE UTF8=ACCEPT: downgraded as RFC 6855 7 asks,
in the RFC 6857 form (encoded words, A-labels, groups for non-ASCII local parts)."""

from __future__ import annotations

import email.header
import re
from pathlib import Path

from imap_harness import imap_server
from tests.support.backends import Backend

from mailwright.imapd import downgrade

INTL = (
    "From: Jürgen Müller <jürgen@müller.example>\r\n"
    "To: Ann <ann@müller.example>, bob@example.test\r\n"
    "Subject: Grüße aus Köln, mit einer recht langen Betreffzeile über vierzig Zeichen\r\n"
    "Message-ID: <grüße@example.test>\r\n"
    "X-Note: ça va\r\n"
    "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    "\r\n"
    "Grüße\r\n"
).encode()


def _decoded(words: bytes) -> str:
    return str(email.header.make_header(email.header.decode_header(words.decode("ascii"))))


async def test_utf8_headers_downgraded_for_ascii_clients(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.deliver(acc, INTL)
        old = await srv.connected()
        await old.cmd("a SELECT INBOX")
        out = await old.cmd("b FETCH 1 (ENVELOPE)")
        env = out[0]
        assert env.isascii(), env
        subject = re.search(rb'ENVELOPE \("[^"]*" "([^"]*)"', env).group(1)  # type: ignore[union-attr]
        assert _decoded(subject) == (
            "Grüße aus Köln, mit einer recht langen Betreffzeile über vierzig Zeichen")
        # RFC 6857 3.1.10: a non-ASCII local part becomes an empty group named after it
        m = re.search(rb'\(\(NIL NIL "([^"]+)" NIL\)\(NIL NIL NIL NIL\)\)', env)
        assert m is not None, env
        assert _decoded(m.group(1)) == "Jürgen Müller <jürgen@müller.example>"
        # an ASCII local part keeps its address, the domain as an A-label
        assert b'(("Ann" NIL "ann" "xn--mller-kva.example")(NIL NIL "bob" "example.test"))' in env
        out = await old.cmd("c FETCH 1 (BODY.PEEK[HEADER])")
        header = out[0].split(b"\r\n", 1)[1].rsplit(b")", 1)[0]
        assert header.isascii()
        fields = {k.lower(): v for k, v in (
            line.split(b": ", 1) for line in header.replace(b"\r\n ", b" ").split(b"\r\n") if line
        )}
        assert _decoded(fields[b"x-note"]) == "ça va"
        # RFC 6857 3.2: a structured field that cannot hold encoded words is encapsulated
        assert b"message-id" not in fields
        assert _decoded(fields[b"downgraded-message-id"]) == "<grüße@example.test>"
        assert fields[b"date"] == b"Mon, 01 Jan 2024 10:00:00 +0000"
        assert _decoded(fields[b"to"].split(b" <")[0]) == "Ann"
        assert b"<ann@xn--mller-kva.example>, bob@example.test" in fields[b"to"]
        out = await old.cmd("d FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.HEADER)")
        assert out[0].isascii()
        # the body is never changed: BODY[] stays what RFC822.SIZE counts
        out = await old.cmd("e FETCH 1 (RFC822.SIZE BODY.PEEK[])")
        assert out[0] == b"* 1 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n%s)" % (
            len(INTL), len(INTL), INTL)

        new = await srv.connected()
        assert (await new.cmd("f ENABLE UTF8=ACCEPT"))[0] == b"* ENABLED UTF8=ACCEPT"
        await new.cmd("g SELECT INBOX")
        out = await new.cmd("h FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (FROM)])")
        assert "Grüße aus Köln".encode() in out[0]
        raw_from = "From: Jürgen Müller <jürgen@müller.example>\r\n\r\n".encode()
        assert b"FROM)] {%d}\r\n%s)" % (len(raw_from), raw_from) in out[0]


def test_downgrade_encoded_words_split_on_characters() -> None:
    text = ("ü" * 40 + "x" + "€" * 30).encode()
    words = downgrade.encoded_words(text)
    assert all(len(w.strip()) <= 75 for w in words.split(b"\r\n"))
    assert _decoded(words) == text.decode()
    # legacy 8-bit junk that is not UTF-8 is left as it is
    assert downgrade.header_block(b"Subject: \xe9t\xe9\r\n\r\n") == b"Subject: \xe9t\xe9\r\n\r\n"
    assert downgrade.header_block(b"Subject: plain\r\n\r\n") == b"Subject: plain\r\n\r\n"


def test_downgrade_mime_parameters_in_rfc2231_form() -> None:
    import email
    import email.utils

    header = (
        'Content-Type: text/plain; name="grüße.txt"; charset=utf-8\r\n'
        "Content-Disposition: attachment;\r\n filename=résumé.pdf\r\n\r\n"
    ).encode()
    down = downgrade.header_block(header)
    assert down.isascii()
    # the fields keep their names, so clients still see the parts' types and file names
    msg = email.message_from_bytes(down + b"x")
    assert msg.get_content_type() == "text/plain"
    assert email.utils.collapse_rfc2231_value(msg.get_param("name")) == "grüße.txt"
    assert msg.get_filename() == "résumé.pdf"
