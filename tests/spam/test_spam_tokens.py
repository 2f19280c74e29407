"""Tokenisation: what it sees, what it ignores, and hard bounds on hostile input."""

from __future__ import annotations

import base64
import os
import time
import tracemalloc

from mailwright.spam.classifier import analyse
from mailwright.spam.tokens import MAX_PARTS, MAX_TOKENS, parse_document, token_key, tokenize

from .messages import ham, spam


def test_tokens_words_headers_urls_and_structure() -> None:
    tokens = tokenize(spam(1))
    assert "viagra" in tokens
    assert "subject:cheap" in tokens
    assert "url:offers.example" in tokens
    assert "proto:http" in tokens
    assert "mime:html-only" in tokens
    assert "tag:font" in tokens
    assert "html:tiny-font" in tokens
    assert "from:addr-domain:offers.example" in tokens


def test_tokens_ignore_the_collection_route() -> None:
    raw = (b"Return-Path: <list@collector.example>\r\nDelivered-To: zzzz@localhost.collector\r\n"
           b"Received: from collector by localhost with fetchmail\r\n"
           b"X-Spam-Status: No, hits=-5\r\n") + ham(0)  # fmt: skip
    tokens = tokenize(raw)
    assert not any("collector" in t or "fetchmail" in t for t in tokens)
    assert not any(t.startswith("hdr:x-spam") or t == "hdr:delivered-to" for t in tokens)
    assert tokens == tokenize(ham(0))


def test_tokens_decode_base64_quoted_printable_and_encoded_words() -> None:
    body = base64.b64encode(b"Gewinnen Sie jetzt einen Preis").decode()
    raw = (
        "Subject: =?utf-8?q?Gro=C3=9Fer_Gewinn?=\r\nContent-Type: multipart/mixed; boundary=XX\r\n"
        "\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64"
        f"\r\n\r\n{body}\r\n--XX\r\nContent-Type: text/plain\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nbreak caf=C3=A9\r\n"
        '--XX\r\nContent-Type: application/octet-stream; name="invoice.exe"\r\n\r\nMZ\r\n--XX--\r\n'
    ).encode()
    tokens = tokenize(raw)
    assert {"gewinnen", "preis", "softbreak", "subject:großer", "filename-ext:exe"} <= tokens


def test_tokens_keys_are_stable_signed_64_bit() -> None:
    key = token_key("viagra")
    assert key == token_key("viagra") and key != token_key("Viagra")
    assert -(2**63) <= key < 2**63


def _bounded(raw: bytes) -> tuple[float, int, int]:
    tracemalloc.start()
    started = time.process_time()
    analysis = analyse(raw, 512 * 1024)
    elapsed = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(analysis.tokens) <= MAX_TOKENS + 10
    return elapsed, peak, len(analysis.document.parts)


def test_tokens_bounded_on_deep_nesting() -> None:
    depth = 20000
    head = "".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(depth)
    )
    elapsed, peak, parts = _bounded(head.encode() + b"Content-Type: text/plain\r\n\r\nx\r\n")
    assert elapsed < 10 and peak < 64 * 1024 * 1024 and parts <= MAX_PARTS


def test_tokens_bounded_on_many_parts() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=Z\r\n\r\n" + b"--Z\r\n\r\nword\r\n" * 100000
    elapsed, peak, parts = _bounded(raw)
    assert elapsed < 10 and peak < 64 * 1024 * 1024 and parts <= MAX_PARTS


def test_tokens_bounded_on_enormous_html() -> None:
    html = ("<html><body>" + "<div style='display:none'><a href='http://x.example/a'>" * 200000
            + "<!-- " * 50000 + "<style>" * 50000 + "</body>")  # fmt: skip
    raw = b"Content-Type: text/html\r\n\r\n" + html.encode()
    assert len(raw) > 10 * 1024 * 1024
    elapsed, peak, _ = _bounded(raw)
    assert elapsed < 10 and peak < 64 * 1024 * 1024


def test_tokens_bounded_on_binary_garbage_and_broken_mime() -> None:
    for raw in (
        os.urandom(5 * 1024 * 1024),
        b"\x00" * 1000 + b"\r\n\r\n" + os.urandom(100000),
        b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",  # no boundary
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====@@@@",
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nhello there",
        # codecs that are no text encodings, or refuse errors="replace"
        b"Content-Type: text/plain; charset=idna\r\n\r\n\xff\xfe caf\xe9",
        b"Content-Type: text/plain; charset=punycode\r\n\r\n\xff\xfe caf\xe9",
        b"Content-Type: text/plain; charset=undefined\r\n\r\nhello",
        b"Content-Type: text/plain; charset=rot13\r\n\r\nhello",
        b"Subject: =?x-unknown?b?????=\r\n\r\n",
        b"",
        b"\r\n\r\n",
        b"From " * 100000,
    ):
        elapsed, peak, _ = _bounded(raw)
        assert elapsed < 10 and peak < 64 * 1024 * 1024


def test_tokens_malformed_mime_is_a_token() -> None:
    doc = parse_document(b"Content-Type: multipart/mixed\r\n\r\nbody text\r\n")
    assert doc.malformed == ["multipart without boundary"]
    assert "mime:malformed:multipart without boundary" in tokenize(
        b"Content-Type: multipart/mixed\r\n\r\nbody text\r\n"
    )


def test_tokens_shape_of_an_advance_fee_letter() -> None:
    from mailwright.spam.checks import shape_reasons

    raw = (b"From: \"DR JAMES OKORO\" <okoro2002@freemail.example>\r\nTo: undisclosed-recipients:;\r\n"
           b"Subject: URGENT BUSINESS PROPOSAL!!!\r\nDate: Thu, 05 Sep 2002 02:00:11\r\n\r\n"
           b"STRICTLY CONFIDENTIAL\r\nI am the next of kin of the late minister. US$25 million"
           b" (twenty-five million dollars) awaits transfer into your bank account; you keep 20%.\r\n"
           b"Click here or call 1-888-555-0123 to be removed.\r\n")  # fmt: skip
    tokens = tokenize(raw)
    for token in ("shape:money", "shape:money-millions", "shape:percent", "shape:removal-offer",
                  "shape:toll-free-number", "shape:secrecy-phrases:2-3", "shape:from-name-capitals",
                  "shape:from-local-ends-in-digits", "shape:to-undisclosed",
                  "shape:date-without-zone", "shape:subject-exclamation"):  # fmt: skip
        assert token in tokens, token
    names = {r.name for r in shape_reasons(tokens)}
    assert {"ADVANCE_FEE", "DATE_WITHOUT_ZONE", "FROM_NAME_CAPITALS"} <= names
    assert "BULK_SENDER_ALIGNED" not in names


def test_tokens_shape_of_a_well_behaved_newsletter() -> None:
    from mailwright.spam.checks import shape_reasons

    raw = (b"From: Larkspur Books <news@larkspur.example>\r\nTo: bob@example.test\r\n"
           b"Subject: New in September\r\nDate: Mon, 02 Sep 2002 10:00:00 +0000\r\n"
           b"Message-ID: <123.456@mail.larkspur.example>\r\n"
           b"List-Unsubscribe: <https://larkspur.example/u?e=bob>, <mailto:u@larkspur.example>\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n"
           b"<html><body><table><tr><td><p>Our picks: <a href='https://www.larkspur.example/p/1'>"
           b"a novel</a></p><img src='https://img.larkspur.example/logo.png'></td></tr></table>"
           b"</body></html>\r\n")  # fmt: skip
    tokens = tokenize(raw)
    assert {"shape:list-unsubscribe-aligned", "shape:message-id-aligned",
            "shape:links-only-to-sender", "tag:img"} <= tokens  # fmt: skip
    # tag names that only say "HTML" are not tokens (the MIME structure says it once)
    assert not {"tag:p", "tag:td", "tag:table", "tag:body"} & tokens
    # nor are the words of the Content-Type field (the part's type is, once)
    assert "content-type:text/html" in tokens
    assert not {"content-type:html", "content-type:utf-8", "content-type:charset"} & tokens
    assert [r.name for r in shape_reasons(tokens)] == ["BULK_SENDER_ALIGNED"]


def test_tokens_shape_bounded_on_hostile_text() -> None:
    lines = ("A" * 400 + " US$ 9 million dollars confidential!!\n") * 20000
    raw = b"Content-Type: text/plain\r\n\r\n" + lines.encode()
    elapsed, peak, _ = _bounded(raw)
    assert elapsed < 10 and peak < 64 * 1024 * 1024


def test_tokens_advance_fee_story_in_families_of_wording() -> None:
    """Each move of the story is one token however it is worded; a letter with none of them
    still has its count (0), and an ordinary message has no family at all."""
    raw = (b"From: Dr Steven <steven@freemail.example>\r\nSubject: Assistance\r\n\r\n"
           b"My late father lodged the box with a security company through diplomatic means."
           b" I need your help for the transfer of the money; 20% of the total sum is your"
           b" compensation for assisting me. Please keep this secret. God bless you.\r\n")  # fmt: skip
    tokens = tokenize(raw)
    for family in ("late-relative", "funds-held", "funds-transfer", "share-offer", "secrecy",
                   "blessing"):  # fmt: skip
        assert f"shape:fraud:{family}" in tokens, family
    assert "shape:fraud-families:4-9" in tokens
    plain = tokenize(ham(0))
    assert "shape:fraud-families:0" in plain
    assert not any(t.startswith("shape:fraud:") for t in plain)
    # reworded: the husband instead of the father, funds instead of money
    other = tokenize(raw.replace(b"late father", b"late husband").replace(b"the money", b"funds"))
    assert {"shape:fraud:late-relative", "shape:fraud:funds-transfer"} <= other
