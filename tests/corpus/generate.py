"""Writes the in-repository message corpus, tests/corpus/messages/*.eml.

Every message is written here byte by byte (no third-party text), deterministically: running
``python3 -m tests.corpus.generate`` rewrites the same files, and
tests/mime/test_corpus.py::test_corpus_files_are_what_the_generator_writes checks that the
committed files are exactly its output. What each message exercises is in its name and in the
comment above it; tests/corpus/README.md gives the overview.

The line endings are part of the data: most messages are written with CRLF, some with bare LF
(as most files on disk are), some mix them, and a few hold lone CRs; ``_crlf`` and ``_lf`` say
which.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import sys
from collections.abc import Callable
from pathlib import Path

MESSAGES = Path(__file__).resolve().parent / "messages"

Builder = Callable[[], bytes]
BUILDERS: dict[str, Builder] = {}


def message(name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        assert name not in BUILDERS, name
        BUILDERS[name] = fn
        return fn

    return register


def _crlf(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _lf(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return data.replace(b"\r\n", b"\n")


def _b64(data: bytes, width: int = 76) -> str:
    enc = base64.b64encode(data).decode("ascii")
    return "\n".join(enc[i : i + width] for i in range(0, len(enc), width)) + "\n"


def _qp(text: str, charset: str = "utf-8") -> str:
    return quopri.encodestring(text.encode(charset)).decode("ascii")


def _pseudo_random(n: int, seed: int) -> bytes:
    """Deterministic bytes (a linear congruential sequence): attachments that look binary."""
    out = bytearray()
    x = seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)


HEAD = (
    "From: Alice Example <alice@example.org>\n"
    "To: Bob Example <bob@example.net>\n"
    "Date: Tue, 13 Jul 2021 09:15:00 +0200\n"
)

# -- simple single-part messages ----------------------------------------------------------------


@message("plain-crlf")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Lunch plans for Thursday\nMessage-ID: <plain-crlf@example.org>\n"
                 "\nShall we meet at noon near the station?\n\nAlice\n")


@message("plain-bare-lf")
def _() -> bytes:
    return _lf(HEAD + "Subject: Minutes of the garden committee\nMessage-ID: <lf@example.org>\n"
               "\nAttendance was good.\nThe compost question is postponed.\n")


@message("plain-mixed-line-endings")
def _() -> bytes:
    return (b"From: carol@example.org\r\nTo: dave@example.net\nSubject: Mixed endings here\r\n"
            b"Date: Wed, 14 Jul 2021 10:00:00 +0000\n\r\nFirst line with CRLF\r\n"
            b"second with LF\nthird with CRLF again\r\n")


@message("plain-lone-cr-inside")
def _() -> bytes:
    return (b"From: carol@example.org\r\nTo: dave@example.net\r\nSubject: Carriage returns\r\n"
            b"\r\nA line with a lone\rcarriage return inside\r\nand another\r\r\nend\r\n")


@message("plain-lone-cr-at-end")
def _() -> bytes:
    return _crlf("From: carol@example.org\nSubject: Ends in CR\n\nlast line\n") + b"\r"


@message("plain-no-final-newline")
def _() -> bytes:
    return b"From: carol@example.org\r\nSubject: No newline at the end\r\n\r\nthe very end"


@message("headers-only-no-body")
def _() -> bytes:
    return _crlf("From: erin@example.org\nTo: frank@example.net\nSubject: Only a header\n")


@message("headers-only-no-separator-lf")
def _() -> bytes:
    return b"From: erin@example.org\nSubject: Header block, no blank line"


@message("empty-body")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Nothing to say\n\n")


@message("missing-all-envelope-headers")
def _() -> bytes:
    return _crlf("X-Note: no From, no Date, no Subject, no Message-ID\n\nbody text here\n")


@message("missing-content-type-with-cte")
def _() -> bytes:
    body = _b64(b"Text without a Content-Type but base64 encoded.\n")
    return _crlf(HEAD + "Subject: Missing type\nContent-Transfer-Encoding: base64\n\n" + body)


@message("empty-subject-and-empty-to")
def _() -> bytes:
    return _crlf("From: grace@example.org\nTo:\nSubject:\nCc: \nDate: Thu, 15 Jul 2021 "
                 "08:00:00 -0700\n\nEmpty fields above.\n")


@message("utf8-bom-before-headers")
def _() -> bytes:
    return b"\xef\xbb\xbf" + _crlf(HEAD + "Subject: Byte order mark first\n\nbody\n")


@message("header-without-colon-and-leading-continuation")
def _() -> bytes:
    return _crlf(" leading continuation line\nFrom: heidi@example.org\nThis line has no colon\n"
                 "Subject: After a broken line\n\nbody after broken headers\n")


@message("duplicate-headers")
def _() -> bytes:
    return _crlf("From: ivan@example.org\nFrom: judy@example.org\nSubject: First subject\n"
                 "Subject: Second subject\nContent-Type: text/plain; charset=utf-8\n"
                 "Content-Type: text/html\nDate: Fri, 16 Jul 2021 12:00:00 +0000\n"
                 "Date: Sat, 17 Jul 2021 12:00:00 +0000\n\nWhich one wins?\n")


@message("header-case-and-whitespace")
def _() -> bytes:
    return _crlf("FROM:   kim@example.org   \nsubject:\tTabbed   subject  \ncontent-TYPE : "
                 "TEXT/Plain ; CHARSET = \"ISO-8859-1\" ; Format=Flowed\n"
                 "CONTENT-TRANSFER-ENCODING:  QUOTED-PRINTABLE \n\ncaf=E9 cr=E8me\n")


# -- encodings -------------------------------------------------------------------------------


@message("base64-utf8-text")
def _() -> bytes:
    text = "Grüße aus Köln! Ça va? Ελληνικά, русский, 日本語.\n" * 3
    return _crlf(HEAD + "Subject: Base64 text\nMIME-Version: 1.0\nContent-Type: text/plain; "
                 "charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + _b64(text.encode()))


@message("base64-without-padding-and-with-junk")
def _() -> bytes:
    body = "SGVsbG8gd29ybGQ\n!!not base64!!\nSGVsbG8=\nSGVs=bG8\n"
    return _crlf(HEAD + "Subject: Broken base64\nMIME-Version: 1.0\nContent-Type: text/plain\n"
                 "Content-Transfer-Encoding: base64\n\n" + body)


@message("quoted-printable-latin1")
def _() -> bytes:
    text = ("Der Bäcker verkauft Brötchen für 1,50 € " * 4 + "\nLigne deux: élève, garçon\n")
    return _crlf(HEAD + "Subject: QP latin-1\nMIME-Version: 1.0\nContent-Type: text/plain; "
                 "charset=iso-8859-15\nContent-Transfer-Encoding: quoted-printable\n\n"
                 + _qp(text, "iso-8859-15"))


@message("quoted-printable-malformed")
def _() -> bytes:
    body = "soft break at the end=\nof a line, bad escape =ZZ, lower =c3=a9, lone =\n=4\ntail=20\n"
    return _crlf(HEAD + "Subject: QP malformed\nMIME-Version: 1.0\nContent-Type: text/plain; "
                 "charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" + body)


@message("8bit-utf8-body")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Eight bit body\nMIME-Version: 1.0\nContent-Type: text/plain; "
                 "charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nnaïve café — “quotes” ✓\n")


@message("8bit-latin1-undeclared")
def _() -> bytes:
    return _crlf(HEAD.encode() + b"Subject: Latin-1 without charset\n\nna\xefve caf\xe9\n")


@message("iso-2022-jp-body")
def _() -> bytes:
    body = "こんにちは、世界。メールのテストです。\n".encode("iso-2022-jp")
    return _crlf(HEAD.encode() + b"Subject: =?ISO-2022-JP?B?" + base64.b64encode(
        "テスト".encode("iso-2022-jp")) + b"?=\nMIME-Version: 1.0\nContent-Type: text/plain; "
        b"charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n" + body)


@message("binary-cte")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Binary transfer encoding\nMIME-Version: 1.0\nContent-Type: "
                 "application/octet-stream\nContent-Transfer-Encoding: binary\n\n") + (
        _pseudo_random(300, 7).replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b"0")
        + b"\r\n")


@message("unknown-transfer-encodings")
def _() -> bytes:
    parts = []
    for n, cte in enumerate(("8 bit", "7bits", "x-uuencode", "7bit;", "", "BASE64 "), 1):
        parts.append(f"--u\nContent-Type: text/plain\nContent-Transfer-Encoding: {cte}\n\n"
                     f"part {n} has the encoding {cte!r}\n")
    return _crlf(HEAD + "Subject: Strange encodings\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=u\n\n" + "".join(parts) + "--u--\n")


@message("uuencode-in-text")
def _() -> bytes:
    uu = binascii.b2a_uu(b"attached file contents\n").decode("ascii")
    return _crlf(HEAD + "Subject: uuencoded attachment\n\nSee below.\n\nbegin 644 file.txt\n"
                 + uu + "`\nend\n")


@message("long-lines")
def _() -> bytes:
    long_line = "word " * 400  # 2000 characters: over RFC 5322's 998
    return _crlf(HEAD + "Subject: Very long lines\nMIME-Version: 1.0\nContent-Type: text/plain\n"
                 "\n" + long_line + "\n" + "x" * 5000 + "\nshort\n")


@message("long-folded-header")
def _() -> bytes:
    refs = "\n ".join(f"<ref{n}.{n * 7919}@lists.example.org>" for n in range(400))
    return _crlf(HEAD + "Subject: A very long References field\nReferences: " + refs
                 + "\nIn-Reply-To: <ref399.3159481@lists.example.org>\n\nthreaded\n")


@message("long-unfolded-subject")
def _() -> bytes:
    return _crlf(HEAD + "Subject: " + "Subjectword " * 200 + "\n\nbody\n")


# -- RFC 2047 encoded words ------------------------------------------------------------------


@message("rfc2047-subjects-utf8-b")
def _() -> bytes:
    word = base64.b64encode("Grüße Straße".encode()).decode()
    return _crlf(HEAD + f"Subject: =?utf-8?B?{word}?=\n\nbody\n")


@message("rfc2047-subject-q-latin1-folded")
def _() -> bytes:
    return _crlf(HEAD + "Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\n =?ISO-8859-1?Q?_br=FBl=E9e?="
                 " and Dessert\n\nyes\n")


@message("rfc2047-adjacent-and-mixed-charsets")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Report =?windows-1252?Q?=93quoted=94?= =?utf-8?B?4oCT?= "
                 "=?koi8-r?B?8NLJ18XU?= done\n\nbody\n")


@message("rfc2047-broken-words")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Broken =?NONE?B?VEVTVA=?= =?utf-8?Q?unterminated "
                 "=?x-unknown?Q?abc?= =?utf-8?B?!!!?= words\n\nbody\n")


@message("rfc2047-display-names")
def _() -> bytes:
    return _crlf("From: =?utf-8?Q?Andr=C3=A9_Dupont?= <andre@example.fr>\nTo: "
                 "=?iso-8859-1?B?Suly6W1l?= <jerome@example.fr>, \"=?utf-8?Q?quoted_word?=\" "
                 "<q@example.fr>\nSubject: Encoded names\nDate: Mon, 19 Jul 2021 14:00:00 "
                 "+0200\n\nBonjour\n")


@message("rfc2047-in-parameters")
def _() -> bytes:
    data = _b64(_pseudo_random(200, 3))
    return _crlf(HEAD + "Subject: Encoded filename\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=p\n\n--p\nContent-Type: text/plain\n\nsee file\n--p\n"
                 "Content-Type: application/octet-stream; name=\"=?utf-8?B?w6lsw6h2ZS5iaW4=?=\"\n"
                 "Content-Disposition: attachment; filename=\"=?utf-8?B?w6lsw6h2ZS5iaW4=?=\"\n"
                 "Content-Transfer-Encoding: base64\n\n" + data + "--p--\n")


# -- 8-bit and UTF-8 headers ------------------------------------------------------------------


@message("utf8-headers-rfc6532")
def _() -> bytes:
    return _crlf("From: Jörg Müller <jörg@bücher.example>\nTo: 山田 <yamada@例え.jp>\n"
                 "Subject: Übermorgen im Café\nDate: Tue, 20 Jul 2021 09:00:00 +0200\n"
                 "Message-ID: <utf8-müller@bücher.example>\nMIME-Version: 1.0\n"
                 "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                 "Grüße\n")


@message("raw-8bit-latin1-headers")
def _() -> bytes:
    return _crlf(b"From: Fran\xe7ois <francois@example.fr>\nSubject: R\xe9sum\xe9 "
                 b"de la r\xe9union\nDate: Wed, 21 Jul 2021 11:00:00 +0200\n\ncorps\n")


# -- addresses -------------------------------------------------------------------------------


@message("addresses-groups-and-oddities")
def _() -> bytes:
    return _crlf("From: \"Last, First\" <first.last@example.org>\nSender: <>\nReply-To: "
                 "replies: a@example.org, \"B\" <b@example.org>;\nTo: undisclosed-recipients:;\n"
                 "Cc: foo, , bar@, @baz, \"quoted local\"@example.org, <@route.example:c@d.org>\n"
                 "Bcc: (comment only)\nIn-Reply-To: <parent@example.org>\nMessage-ID: "
                 "<odd-addresses@example.org>\nSubject: Address oddities\nDate: 22 Jul 2021 "
                 "10:00 GMT\n\nbody\n")


@message("addresses-comments-and-unquoted-names")
def _() -> bytes:
    return _crlf("From: alice@example.org (Alice in a comment)\nTo: Bob Smith <bob@example.org>,"
                 " Carol.Jones@Example.ORG, \"Dave \\\"D\\\" Doe\" <dave@example.org>\n"
                 "Subject: Comments\nDate: Fri, 23 Jul 2021 16:45:00 -0400 (EDT)\n\nbody\n")


# -- multipart structures ------------------------------------------------------------------


@message("multipart-mixed-with-attachment")
def _() -> bytes:
    pdf = b"%PDF-1.4\n" + _pseudo_random(1500, 11)
    return _crlf(HEAD + "Subject: Invoice attached\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=\"=_outer_42\"\n\nThis is a multi-part message in "
                 "MIME format.\n\n--=_outer_42\nContent-Type: text/plain; charset=us-ascii\n\n"
                 "Please find the invoice attached.\n\n--=_outer_42\nContent-Type: "
                 "application/pdf; name=\"invoice 2021-07.pdf\"\nContent-Disposition: attachment;"
                 " filename=\"invoice 2021-07.pdf\"; size=1509\nContent-Transfer-Encoding: "
                 "base64\nContent-Description: July invoice\n\n" + _b64(pdf)
                 + "--=_outer_42--\n\nepilogue text\n")


@message("multipart-alternative-text-html")
def _() -> bytes:
    html = ("<html><body><p>Hello <b>Bob</b>, the meeting moved to <i>Friday</i>.</p>"
            "<p>Regards — Alice</p></body></html>\n")
    return _crlf(HEAD + "Subject: Meeting moved\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/alternative; boundary=alt\n\n--alt\nContent-Type: text/plain; "
                 "charset=utf-8; format=flowed\nContent-Transfer-Encoding: quoted-printable\n\n"
                 + _qp("Hello Bob, the meeting moved to Friday.\nRegards — Alice\n")
                 + "--alt\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: "
                 "quoted-printable\n\n" + _qp(html) + "--alt--\n")


@message("multipart-related-inline-image")
def _() -> bytes:
    png = b"\x89PNG\r\n\x1a\n" + _pseudo_random(600, 5)
    return _crlf(HEAD + "Subject: Newsletter with logo\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/related; boundary=rel; type=\"text/html\"; start=\"<html@x>\"\n\n"
                 "--rel\nContent-Type: text/html; charset=us-ascii\nContent-ID: <html@x>\n\n"
                 "<html><body><img src=\"cid:logo@x\"> Summer newsletter</body></html>\n--rel\n"
                 "Content-Type: image/png\nContent-ID: <logo@x>\nContent-Disposition: inline; "
                 "filename=logo.png\nContent-Location: http://example.org/logo.png\n"
                 "Content-Transfer-Encoding: base64\n\n" + _b64(png) + "--rel--\n")


@message("mixed-alternative-related-nested")
def _() -> bytes:
    gif = b"GIF89a" + _pseudo_random(120, 9)
    zipdata = b"PK\x03\x04" + _pseudo_random(400, 13)
    return _crlf(HEAD + "Subject: Nested structure\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=L1\n\n--L1\nContent-Type: multipart/alternative; "
                 "boundary=L2\n\n--L2\nContent-Type: text/plain; charset=us-ascii\n\nplain "
                 "version of the holiday photos\n--L2\nContent-Type: multipart/related; "
                 "boundary=L3\n\n--L3\nContent-Type: text/html\n\n<p>html version <img "
                 "src=cid:g></p>\n--L3\nContent-Type: image/gif\nContent-ID: <g>\n"
                 "Content-Transfer-Encoding: base64\n\n" + _b64(gif) + "--L3--\n--L2--\n--L1\n"
                 "Content-Type: application/zip; name=photos.zip\nContent-Disposition: "
                 "attachment; filename=photos.zip\nContent-Transfer-Encoding: base64\n"
                 "Content-Language: en, de\n\n" + _b64(zipdata) + "--L1--\n")


@message("forwarded-message-rfc822")
def _() -> bytes:
    inner = ("From: Old Sender <old@example.com>\nTo: alice@example.org\nSubject: Original "
             "question\nDate: Mon, 12 Jul 2021 08:00:00 +0000\nMessage-ID: <orig@example.com>\n"
             "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=inner\n\n"
             "--inner\nContent-Type: text/plain\n\nCan you help with the report?\n--inner\n"
             "Content-Type: text/html\n\n<p>Can you help with the report?</p>\n--inner--\n")
    return _crlf(HEAD + "Subject: Fwd: Original question\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=fw\n\n--fw\nContent-Type: text/plain\n\nForwarding "
                 "this one.\n--fw\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n"
                 + inner + "--fw--\n")


@message("top-level-message-rfc822")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Wrapped\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
                 "From: inner@example.com\nSubject: Inner message\nContent-Type: text/plain\n\n"
                 "inner body line\n")


@message("message-rfc822-nested-twice")
def _() -> bytes:
    deepest = "From: c@example.com\nSubject: Deepest\n\ndeepest text\n"
    middle = ("From: b@example.com\nSubject: Middle\nMIME-Version: 1.0\nContent-Type: "
              "multipart/mixed; boundary=m2\n\n--m2\nContent-Type: text/plain\n\nmiddle text\n"
              "--m2\nContent-Type: message/rfc822\n\n" + deepest + "--m2--\n")
    return _crlf(HEAD + "Subject: Twice nested\nMIME-Version: 1.0\nContent-Type: multipart/mixed;"
                 " boundary=m1\n\n--m1\nContent-Type: message/rfc822\n\n" + middle + "--m1--\n")


@message("message-rfc822-base64-encoded")
def _() -> bytes:
    inner = _crlf("From: b@example.com\nSubject: Encoded inner\n\ntext inside\n")
    return _crlf(HEAD + "Subject: Encoded rfc822\nMIME-Version: 1.0\nContent-Type: multipart/mixed;"
                 " boundary=e\n\n--e\nContent-Type: message/rfc822\nContent-Transfer-Encoding: "
                 "base64\n\n" + _b64(inner) + "--e--\n")


@message("message-rfc822-empty")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Empty enclosed\nMIME-Version: 1.0\nContent-Type: multipart/mixed;"
                 " boundary=x\n\n--x\nContent-Type: message/rfc822\n\n--x--\n")


@message("multipart-digest")
def _() -> bytes:
    msgs = "".join(f"--dig\n\nFrom: member{n}@lists.example.org\nSubject: Digest item {n}\n\n"
                   f"item {n} text\n" for n in range(1, 4))
    return _crlf(HEAD + "Subject: List digest, Vol 3\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/digest; boundary=dig\n\n" + msgs + "--dig\nContent-Type: text/plain\n"
                 "\nfooter\n--dig--\n")


@message("multipart-report-delivery-status")
def _() -> bytes:
    return _crlf("From: MAILER-DAEMON@mx.example.net\nTo: alice@example.org\nSubject: Undelivered "
                 "Mail Returned to Sender\nDate: Sat, 24 Jul 2021 03:00:00 +0000\nMIME-Version: "
                 "1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=rep\n"
                 "\n--rep\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
                 "--rep\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; "
                 "mx.example.net\n\nFinal-Recipient: rfc822; nobody@example.net\nAction: failed\n"
                 "Status: 5.1.1\n--rep\nContent-Type: text/rfc822-headers\n\nFrom: "
                 "alice@example.org\nSubject: hello\n--rep--\n")


@message("multipart-signed")
def _() -> bytes:
    sig = _b64(_pseudo_random(256, 21))
    return _crlf(HEAD + "Subject: Signed message\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; "
                 "boundary=\"----sig\"\n\n------sig\nContent-Type: text/plain\n\nsigned text\n"
                 "------sig\nContent-Type: application/pkcs7-signature; name=smime.p7s\n"
                 "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; "
                 "filename=smime.p7s\n\n" + sig + "------sig--\n")


@message("calendar-invite")
def _() -> bytes:
    ics = ("BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REQUEST\nBEGIN:VEVENT\nUID:42@example.org\n"
           "DTSTART:20210801T100000Z\nSUMMARY:Planning\nEND:VEVENT\nEND:VCALENDAR\n")
    return _crlf(HEAD + "Subject: Invitation: Planning\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/alternative; boundary=cal\n\n--cal\nContent-Type: text/plain\n\n"
                 "You are invited.\n--cal\nContent-Type: text/calendar; charset=utf-8; "
                 "method=REQUEST\nContent-Transfer-Encoding: 7bit\n\n" + ics + "--cal--\n")


@message("many-attachments")
def _() -> bytes:
    parts = "".join(f"--many\nContent-Type: text/plain; name=n{n}.txt\nContent-Disposition: "
                    f"attachment; filename=n{n}.txt\n\nattachment number {n}\n"
                    for n in range(60))
    return _crlf(HEAD + "Subject: Sixty attachments\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=many\n\n" + parts + "--many--\n")


@message("deeply-nested-multipart")
def _() -> bytes:
    depth = 12
    head = "".join(f"--d{n}\nContent-Type: multipart/mixed; boundary=d{n + 1}\n\n"
                   for n in range(depth))
    tail = "".join(f"--d{n}--\n" for n in range(depth, -1, -1))
    return _crlf(HEAD + "Subject: Deep nesting\nMIME-Version: 1.0\nContent-Type: multipart/mixed;"
                 " boundary=d0\n\n" + head + f"--d{depth}\nContent-Type: text/plain\n\n"
                 "at the bottom\n" + tail)


@message("empty-parts")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Empty parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
                 "boundary=e\n\n--e\n\n--e\nContent-Type: text/plain\n\n--e\nContent-Type: "
                 "text/html\n--e--\n")


@message("multipart-without-parts")
def _() -> bytes:
    return _crlf(HEAD + "Subject: No parts at all\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=none\n\nonly a preamble\n")


# -- RFC 2231 parameters ---------------------------------------------------------------------


@message("rfc2231-parameters")
def _() -> bytes:
    data = _b64(_pseudo_random(100, 17))
    return _crlf(HEAD + "Subject: RFC 2231 names\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain; "
                 "charset*=us-ascii'en'utf-8\n\nhello\n--q\nContent-Type: application/"
                 "octet-stream; name*0=\"a very long \"; name*1=\"file name\"; name*2=\".bin\"\n"
                 "Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9%20r%C3%A9sum%C3"
                 "%A9.bin\nContent-Transfer-Encoding: base64\n\n" + data + "--q\nContent-Type: "
                 "text/plain; title*0*=iso-8859-1'fr'caf%E9; title*1=\" au lait\"\n\ntitled\n"
                 "--q--\n")


@message("content-type-oddities")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Odd content types\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=ct\n\n--ct\nContent-Type: text\n\nno subtype\n--ct\n"
                 "Content-Type: ;;;\n\nonly semicolons\n--ct\nContent-Type: TEXT/HTML; "
                 "CHARSET=UTF-8; Name=\"page.html\"; empty=\"\"; novalue\n\n<p>upper case</p>\n"
                 "--ct\nContent-Type: application/x-custom; a=1; a=2 (a comment)\n\nrepeated "
                 "parameter\n--ct\nContent-Type: image/\n\nslash no subtype\n--ct--\n")


@message("multipart-without-boundary-parameter")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Multipart, no boundary\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed\n\n--x\nContent-Type: text/plain\n\nlost part\n--x--\n")


# -- malformed boundaries ------------------------------------------------------------------


@message("boundary-missing-close")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Unterminated multipart\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=open\n\n--open\nContent-Type: text/plain\n\nfirst\n"
                 "--open\nContent-Type: text/plain\n\nsecond, never closed\n")


@message("boundary-never-appears")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Boundary absent\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/alternative; boundary=missing\n\n--other\nContent-Type: text/plain"
                 "\n\ntext\n--other--\n")


@message("boundary-prefix-of-another")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Prefix boundaries\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=ab\n\n--ab\nContent-Type: multipart/alternative; "
                 "boundary=abc\n\n--abc\nContent-Type: text/plain\n\ninner one\n--abc\n"
                 "Content-Type: text/html\n\n<p>inner two</p>\n--abc--\n--ab\nContent-Type: "
                 "text/plain\n\nouter two\n--ab--\n")


@message("boundary-inner-equals-outer")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Same boundary twice\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=same\n\n--same\nContent-Type: multipart/mixed; "
                 "boundary=same\n\n--same\nContent-Type: text/plain\n\nwhich level?\n--same--\n"
                 "--same\nContent-Type: text/plain\n\nafter\n--same--\n")


@message("boundary-trailing-whitespace-and-garbage")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Boundary lines with trailing text\nMIME-Version: 1.0\n"
                 "Content-Type: multipart/mixed; boundary=\"tw\"\n\n--tw   \nContent-Type: "
                 "text/plain\n\nafter spaces\n--tw\t\nContent-Type: text/plain\n\nafter tab\n"
                 "--twx\nnot a boundary line\n--tw-- trailing words\n\nepilogue\n")


@message("boundary-quoted-with-specials")
def _() -> bytes:
    b = "----=_Part_0_1234.5678 (x):?"
    return _crlf(HEAD + f"Subject: Boundary with specials\nMIME-Version: 1.0\nContent-Type: "
                 f"multipart/mixed;\n boundary=\"{b}\"\n\n--{b}\nContent-Type: text/plain\n\n"
                 f"one\n--{b}\nContent-Type: text/plain\n\ntwo\n--{b}--\n")


@message("boundary-lf-inside-crlf-message")
def _() -> bytes:
    return (HEAD.replace("\n", "\r\n").encode() + b"Subject: Boundaries with LF only\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\n"
            b"Content-Type: text/plain\n\nLF part\r\n--z\r\nContent-Type: text/plain\r\n\r\n"
            b"CRLF part\r\n--z--\n")


@message("nul-byte-in-body")
def _() -> bytes:
    return _crlf(HEAD.encode() + b"Subject: A NUL byte\nMIME-Version: 1.0\nContent-Type: "
                 b"text/plain\n\nbefore\x00after\n")


# -- content headers on parts ----------------------------------------------------------------


@message("part-headers-full")
def _() -> bytes:
    return _crlf(HEAD + "Subject: Every content header\nMIME-Version: 1.0\nContent-Type: "
                 "multipart/mixed; boundary=full\nContent-Language: en\n\n--full\nContent-Type: "
                 "text/plain; charset=utf-8; format=flowed; delsp=yes\nContent-ID: "
                 "<part1@example.org>\nContent-Description: The first part\nContent-Disposition:"
                 " inline; filename=first.txt; creation-date=\"Wed, 12 Feb 1997 16:29:51 -0500\"\n"
                 "Content-Language: en-GB, fr-CA\nContent-Location: part1.txt\n"
                 "Content-Transfer-Encoding: 7bit\n\nflowed text \nnext\n--full\nContent-Type: "
                 "text/plain\nContent-Disposition: attachment\nContent-Description: "
                 "=?utf-8?Q?d=C3=A9scription?=\n\nsecond\n--full--\n")


def build_all() -> dict[str, bytes]:
    return {f"gen__{name}.eml": fn() for name, fn in sorted(BUILDERS.items())}


def main(argv: list[str]) -> int:
    """Writes the files (or, with --check, says which differ and exits 1)."""
    check = "--check" in argv
    wanted = build_all()
    present = {p.name for p in MESSAGES.glob("*.eml")} if MESSAGES.is_dir() else set()
    differ = sorted(n for n, data in wanted.items()
                    if not (MESSAGES / n).is_file() or (MESSAGES / n).read_bytes() != data)
    extra = sorted(present - set(wanted))
    if check:
        for n in differ + extra:
            print(f"differs: {n}")
        return 1 if differ or extra else 0
    MESSAGES.mkdir(parents=True, exist_ok=True)
    for n in differ:
        (MESSAGES / n).write_bytes(wanted[n])
    for n in extra:
        (MESSAGES / n).unlink()
    print(f"{len(wanted)} messages in {MESSAGES} ({len(differ)} written, {len(extra)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
