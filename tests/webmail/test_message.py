"""The reading view's model of a message, from the parse-once metadata."""

from __future__ import annotations

import pytest

from mailwright.mime import parse_message
from mailwright.web.webmail.message import NoSuchPart, message_view, part_as_text, part_bytes

RICH = (
    b"From: =?utf-8?q?Ren=C3=A9e?= <renee@example.org>\r\n"
    b"To: Bob <bob@example.test>, carol@example.test\r\n"
    b"Cc: team: dan@example.test;\r\n"
    b"Subject: =?utf-8?b?UmFwcG9ydCDDqXTDqQ==?=\r\n"
    b"Date: Mon, 07 Dec 2026 10:00:00 +0100\r\n"
    b"Message-ID: <m2@example.org>\r\n"
    b"References: <m0@example.org> <m1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="out"\r\n\r\n'
    b"--out\r\n"
    b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    b"--alt\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Voil=E0 le rapport.\r\n"
    b"--alt\r\n"
    b'Content-Type: multipart/related; boundary="rel"\r\n\r\n'
    b"--rel\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b'<p>Voil\xc3\xa0 <img src="cid:logo@x"></p>\r\n'
    b"--rel\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-ID: <logo@x>\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"iVBORw0KGgo=\r\n"
    b"--rel--\r\n"
    b"--alt--\r\n"
    b"--out\r\n"
    b"Content-Type: application/pdf; name=ignored.pdf\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''rapport%20%C3%A9t%C3%A9.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--out\r\n"
    b"Content-Type: text/plain\r\n"
    b'Content-Disposition: attachment; filename="..\\\\..\\\\evil.txt"\r\n\r\n'
    b"notes\r\n"
    b"--out\r\n"
    b"Content-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\n\r\ninner body\r\n"
    b"--out--\r\n"
)


def test_message_view_headers_and_bodies() -> None:
    view = message_view(parse_message(RICH), RICH)
    assert view.subject == "Rapport été"
    assert str(view.from_[0]) == "=?utf-8?q?Ren=C3=A9e?= <renee@example.org>" or \
        view.from_[0].name == "Renée"
    assert view.from_[0].name == "Renée" and view.from_[0].address == "renee@example.org"
    assert [p.address for p in view.to] == ["bob@example.test", "carol@example.test"]
    assert [p.address for p in view.cc] == ["dan@example.test"]
    assert view.message_id == "<m2@example.org>"
    assert view.references == ("<m0@example.org>", "<m1@example.org>")
    assert view.text is not None and view.text.startswith("Voilà le rapport.")
    assert view.html_section == "1.2.1"
    assert view.date is not None and view.date.utcoffset() is not None


def test_message_view_attachments() -> None:
    info = parse_message(RICH)
    view = message_view(info, RICH)
    names = [(a.section, a.filename, a.content_type, a.inline) for a in view.attachments]
    assert names == [
        ("1.2.2", "part-1.2.2.bin", "image/png", True),
        ("2", "rapport été.pdf", "application/pdf", False),
        ("3", "evil.txt", "text/plain", False),
        ("4", "part-4.eml", "message/rfc822", False),
    ]
    assert view.cids == {"logo@x": "1.2.2"}
    data, _ = part_bytes(info, RICH, "2")
    assert data == b"%PDF-1.4\n"
    assert part_bytes(info, RICH, "4")[0].startswith(b"Subject: inner")
    assert "<img" in part_as_text(info, RICH, "1.2.1")


@pytest.mark.parametrize("section", ["", "0", "9", "1.9", "x", "1.1.1.1", "-1"])
def test_part_bytes_no_such_part(section: str) -> None:
    info = parse_message(RICH)
    with pytest.raises(NoSuchPart):
        part_bytes(info, RICH, section)


def test_message_view_plain_message() -> None:
    raw = b"Subject: hi\r\n\r\nhello\r\n"
    view = message_view(parse_message(raw), raw)
    assert view.text == "hello\r\n" and view.html_section is None and not view.attachments
    assert view.from_ == () and view.date is None


def test_message_view_html_only_has_text() -> None:
    raw = (b"Subject: h\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<html><head><style>p{}</style><script>x()</script></head><body>"
           b"<p>First  para</p><div>Second<br>line &amp; more</div></body></html>\r\n")
    view = message_view(parse_message(raw), raw)
    assert view.html_section == "1"
    assert view.text == "First para\n\nSecond\nline & more\n"
