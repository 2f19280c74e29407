"""The signs that generalise across time (route, HTML, header forms) and the classifier's
evidence balance, on messages written here; hostile input bounded by the work done."""

from __future__ import annotations

import pytest

from mailwright.spam import bayes, shape
from mailwright.spam.bayes import combine, token_probability
from mailwright.spam.checks import shape_reasons
from mailwright.spam.classifier import analyse
from mailwright.spam.tokens import MAX_TOKENS, parse_document, tokenize


def _message(headers: str, body: str = "Hello there, see you at the meeting.\r\n",
             content_type: str = "text/plain") -> bytes:  # fmt: skip
    return (f"From: Alice <alice@example.org>\r\nTo: bob@example.test\r\nSubject: notes\r\n"
            f"Message-ID: <1@example.org>\r\n{headers}Content-Type: {content_type}\r\n\r\n"
            f"{body}").encode()  # fmt: skip


def _html(body: str) -> bytes:
    return _message("Date: Mon, 02 Sep 2002 10:00:00 +0000\r\n", body, "text/html; charset=utf-8")


# ---------------------------------------------------------------- route: Date against Received

RECEIVED = "Received: from mx.example.org (mx.example.org [192.0.2.1]) by mail.example.test; {}\r\n"


def test_shape_rules_date_after_first_received() -> None:
    # written "tomorrow" relative to when the first relay took it: a forged or mis-zoned Date
    raw = _message(RECEIVED.format("Mon, 02 Sep 2002 10:00:00 +0000")
                   + "Date: Mon, 02 Sep 2002 22:00:00 +0000\r\n")  # fmt: skip
    tokens = tokenize(raw)
    assert "shape:date-after-received" in tokens
    assert "DATE_AFTER_RECEIVED" in {r.name for r in shape_reasons(tokens)}


def test_shape_rules_date_long_before_first_received() -> None:
    raw = _message(RECEIVED.format("Fri, 06 Sep 2002 10:00:00 +0000")
                   + "Date: Mon, 02 Sep 2002 10:00:00 +0000\r\n")  # fmt: skip
    tokens = tokenize(raw)
    assert "shape:date-long-before-received" in tokens
    assert "DATE_LONG_BEFORE_RECEIVED" in {r.name for r in shape_reasons(tokens)}


def test_shape_rules_date_near_received_is_no_sign() -> None:
    # minutes apart, in different zones: the same moment as far as the rule goes
    raw = _message(RECEIVED.format("Mon, 02 Sep 2002 12:05:00 +0200")
                   + "Date: Mon, 02 Sep 2002 10:01:00 +0000\r\n")  # fmt: skip
    tokens = tokenize(raw)
    assert not {"shape:date-after-received", "shape:date-long-before-received"} & tokens
    assert not {r.name for r in shape_reasons(tokens)} & {"DATE_AFTER_RECEIVED",
                                                          "DATE_LONG_BEFORE_RECEIVED"}  # fmt: skip


def test_shape_rules_the_earliest_received_is_the_one_compared() -> None:
    # RFC 5321 4.4: each relay prepends its Received; the last one is nearest the author
    raw = _message(RECEIVED.format("Tue, 03 Sep 2002 09:00:00 +0000")  # our own hop, a day later
                   + RECEIVED.format("Mon, 02 Sep 2002 10:02:00 +0000")
                   + "Date: Mon, 02 Sep 2002 10:00:00 +0000\r\n")  # fmt: skip
    assert not {"shape:date-after-received", "shape:date-long-before-received"} & tokenize(raw)


def test_shape_rules_unparseable_dates_and_no_received_are_no_sign() -> None:
    for headers in ("Date: Mon, 02 Sep 2002 22:00:00 +0000\r\n",  # no Received at all
                    RECEIVED.format("yesterday-ish") + "Date: Mon, 02 Sep 2002 22:00:00 +0000\r\n",
                    RECEIVED.format("Mon, 02 Sep 2002 10:00:00 +0000") + "Date: soon\r\n"):  # fmt: skip
        tokens = tokenize(_message(headers))
        assert not any(t.startswith("shape:date-") and "received" in t for t in tokens), headers


def test_shape_rules_client_greeting_with_an_address_or_without_a_name() -> None:
    raw = _message("Received: from [203.0.113.9] (unknown [203.0.113.9]) by mx.example.test;"
                   " Mon, 02 Sep 2002 10:00:00 +0000\r\nDate: Mon, 02 Sep 2002 10:00:00 +0000\r\n")  # fmt: skip
    tokens = tokenize(raw)
    assert {"shape:received-helo-address", "shape:received-unknown-client"} <= tokens
    named = _message(RECEIVED.format("Mon, 02 Sep 2002 10:00:00 +0000")
                     + "Date: Mon, 02 Sep 2002 10:00:00 +0000\r\n")  # fmt: skip
    assert not {"shape:received-helo-address", "shape:received-unknown-client"} & tokenize(named)


def test_shape_rules_received_never_becomes_a_word_token() -> None:
    # the route's host names would teach the collecting site, not the message
    raw = _message(RECEIVED.format("Mon, 02 Sep 2002 10:00:00 +0000")
                   + "Date: Mon, 02 Sep 2002 10:00:00 +0000\r\n")  # fmt: skip
    assert not any("mx.example.org" in t or t.startswith("received:") for t in tokenize(raw))


# ---------------------------------------------------------------- header forms


def test_shape_rules_numeric_to_local_part() -> None:
    raw = _message("").replace(b"To: bob@example.test", b'To: "1194@uk.example" <1194@uk.example>')
    tokens = tokenize(raw)
    assert "shape:to-numeric-local-part" in tokens
    assert "TO_NUMERIC_LOCAL_PART" in {r.name for r in shape_reasons(tokens)}
    assert "shape:to-numeric-local-part" not in tokenize(_message(""))


def test_shape_rules_subject_encoded_in_another_charset() -> None:
    koi8 = _message("").replace(b"Subject: notes", b"Subject: =?koi8-r?B?8NLJ18XU?=")
    assert "shape:subject-encoded-other-charset" in tokenize(koi8)
    utf8 = _message("").replace(b"Subject: notes", b"Subject: =?utf-8?q?caf=C3=A9?=")
    assert "shape:subject-encoded-other-charset" not in tokenize(utf8)


def test_shape_rules_malformed_message_id() -> None:
    # RFC 5322 3.6.4: msg-id = "<" id-left "@" id-right ">"
    for bad in (b"Message-ID: 12345", b"Message-ID: abc@example.org"):
        assert "shape:message-id-malformed" in tokenize(_message("").replace(b"Message-ID: <1@example.org>", bad))
    assert "shape:message-id-malformed" not in tokenize(_message(""))


def test_shape_rules_spaced_out_letters() -> None:
    assert "shape:spaced-letters" in tokenize(_message("", "Buy V-I-A-G-R-A and f r e e pills\r\n"))
    assert "shape:spaced-letters" not in tokenize(_message("", "The U.S. office, e.g. in N.Y.\r\n"))


# ---------------------------------------------------------------- HTML and links


def test_shape_rules_link_text_naming_another_site() -> None:
    phish = _html('<p>Sign in at <a href="http://198.51.100.7.example-login.test/x">'
                  "www.bank.example</a> today</p>")  # fmt: skip
    assert "shape:link-text-other-site" in tokenize(phish)
    honest = _html('<p>Sign in at <a href="https://secure.bank.example/login">www.bank.example</a></p>'
                   '<p><a href="https://shop.example/">our shop</a></p>')  # fmt: skip
    assert "shape:link-text-other-site" not in tokenize(honest)


def test_shape_rules_words_split_by_html_comments() -> None:
    tokens = tokenize(_html("<p>Cheap V<!-- x -->iag<!---->ra here</p>"))
    assert "shape:html-comment-inside-word" in tokens
    assert "shape:html-comment-inside-word" not in tokenize(_html("<p>text</p><!-- footer --><p>more</p>"))


def test_shape_rules_numeric_character_references() -> None:
    spelt = "".join(f"&#{ord(c)};" for c in "mortgage rates")
    assert "shape:html-numeric-entities" in tokenize(_html(f"<p>{spelt}</p>"))
    assert "shape:html-numeric-entities" not in tokenize(_html("<p>caf&#233; &amp; bar</p>"))


def test_shape_rules_images_with_little_text_and_mostly_markup() -> None:
    image_only = _html('<table><tr><td><a href="http://promo.example/"><img src="http://promo.example/a.gif">'
                       "</a></td></tr></table>" + "<table><tr><td> </td></tr></table>" * 80)  # fmt: skip
    tokens = tokenize(image_only)
    assert {"shape:html-images-little-text", "shape:html-mostly-markup"} <= tokens
    letter = _html("<p>" + "We met on Tuesday and agreed the plan for next month. " * 10
                   + '</p><img src="https://example.org/logo.png">')  # fmt: skip
    assert not {"shape:html-images-little-text", "shape:html-mostly-markup"} & tokenize(letter)


@pytest.mark.parametrize(("body", "rule"), [
    ('<p>Visit <a href="http://203.0.113.5/offer">our offer</a></p>', "URL_IP_ADDRESS"),
    ('<p><font style="font-size:0px">hidden words</font>visible</p>', "HTML_TINY_FONT"),
    ('<form action="http://x.example/p"><input name="card"></form>', "HTML_FORM"),
    ("<p>Great deals, click here for more.</p>", "SALES_PHRASE"),
])  # fmt: skip
def test_shape_rules_html_and_link_rules(body: str, rule: str) -> None:
    assert rule in {r.name for r in shape_reasons(tokenize(_html(body)))}


def test_shape_rules_plain_letter_carries_none_of_the_new_rules() -> None:
    raw = _message(RECEIVED.format("Mon, 02 Sep 2002 10:01:00 +0000")
                   + "Date: Mon, 02 Sep 2002 10:00:00 +0000\r\n")  # fmt: skip
    assert shape_reasons(tokenize(raw)) == []


# ---------------------------------------------------------------- the classifier's balance


def test_shape_rules_rare_ham_word_is_weak_evidence_when_spam_is_scarce() -> None:
    # seen in 1 (3) of 1,500 ham and none of 250 spam: 250 spam were too few to expect it even
    # once, so it is no clue (a weak one); with Robinson's raw count it was a clear ham clue
    once, thrice = token_probability(1, 0, 1500, 250), token_probability(3, 0, 1500, 250)
    assert 0.5 - once < bayes.MIN_PROB_STRENGTH
    saved = bayes.BALANCE
    try:
        bayes.BALANCE = 0.0
        assert 0.5 - token_probability(1, 0, 1500, 250) >= bayes.MIN_PROB_STRENGTH
        assert token_probability(3, 0, 1500, 250) < thrice / 2
    finally:
        bayes.BALANCE = saved
    # a word common in ham stays strong ham evidence
    assert token_probability(300, 0, 1500, 250) < 0.05
    # and a word seen in spam only is spam evidence, on the smaller class's own scale
    assert token_probability(0, 20, 1500, 250) > 0.95


def test_shape_rules_balance_changes_nothing_when_classes_are_equal() -> None:
    saved = bayes.BALANCE
    try:
        values = []
        for balance in (0.0, 0.5, 1.0):
            bayes.BALANCE = balance
            values.append(token_probability(3, 1, 500, 500))
        assert values[0] == values[1] == values[2]
    finally:
        bayes.BALANCE = saved


def test_shape_rules_weak_clues_are_left_out_of_the_combination() -> None:
    counts = {"strong": (0.0, 40.0), "weak": (10.0, 12.0)}
    estimate = combine(counts, 200, 200, ["strong", "weak", "unseen"])
    assert [c.token for c in estimate.clues] == ["strong"]
    assert estimate.probability > 0.9


# ---------------------------------------------------------------- hostile input, bounded work


def test_shape_rules_hostile_html_is_cut_before_the_shape_tests() -> None:
    # 12 MiB of unterminated anchors, comments and references: the parse keeps max_bytes of the
    # message, the text budget keeps 200,000 characters, html_shape looks at 200,000 of them
    unit = '<a href="http://a.example/' + "x" * 290 + " &#65;<!--"
    raw = _html(unit * 40000)
    assert len(raw) > 12 * 1024 * 1024
    doc = parse_document(raw, 512 * 1024)
    assert doc.truncated and sum(len(p.text) for p in doc.parts) <= 200_000
    analysis = analyse(raw, 512 * 1024)
    assert len(analysis.tokens) <= MAX_TOKENS + 50
    # html_shape itself reads at most MAX_HTML_SHAPE_CHARS of a source: a sign placed beyond
    # them is never looked for
    late: set[str] = set()
    shape.html_shape(" " * shape.MAX_HTML_SHAPE_CHARS + "V<!-- -->iagra", "", late)
    assert "shape:html-comment-inside-word" not in late
    early: set[str] = set()
    shape.html_shape("V<!-- -->iagra" + " " * shape.MAX_HTML_SHAPE_CHARS, "", early)
    assert "shape:html-comment-inside-word" in early


def test_shape_rules_many_received_fields_are_bounded() -> None:
    # a header section of 20,000 Received fields: the parser keeps 500 fields of at most 64 KiB
    # in all, route_shape reads 30 of them
    received = "".join(RECEIVED.format("Mon, 02 Sep 2002 10:00:00 +0000") for _ in range(20000))
    raw = _message(received + "Date: Mon, 02 Sep 2002 10:00:00 +0000\r\n")
    doc = parse_document(raw, 512 * 1024)
    assert len(doc.headers) <= 500
    tokens: set[str] = set()
    shape.route_shape(doc.headers, tokens)
    assert tokens <= {"shape:received-helo-address", "shape:received-unknown-client",
                      "shape:date-after-received", "shape:date-long-before-received"}  # fmt: skip


def test_shape_rules_deeply_nested_html_and_long_anchor_text() -> None:
    raw = _html("<div>" * 100000 + "<a href='http://x.example/'>" + "www.y.example " * 50000 + "</a>"
                + "</div>" * 100000)  # fmt: skip
    analysis = analyse(raw, 512 * 1024)
    assert len(analysis.tokens) <= MAX_TOKENS + 50
    assert analysis.document.truncated
