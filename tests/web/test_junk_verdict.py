"""The junk training page reads the verdict the spam filter wrote at delivery
(`spam.report.spam_fields`) back out of the stored header."""

from __future__ import annotations

from mailwright.spam.checks import Reason
from mailwright.spam.report import spam_fields
from mailwright.web.account.junk import verdict_of


def test_verdict_read_back_from_our_own_fields() -> None:
    reasons = (Reason("BAYES_99", 3.5, "the classifier is sure"),
               Reason("SPF_FAIL", 1.2, "SPF says the sender may not use this server"),
               Reason("DKIM_VALID", -0.5, "signed by the author's domain"))
    head = spam_fields(7.2, 5.0, "junk", reasons) + b"Subject: hi\r\n\r\n"
    v = verdict_of(head)
    assert v is not None and v.spam and v.score == 7.2 and v.required == 5.0
    assert v.tests == (("BAYES_99", 3.5), ("SPF_FAIL", 1.2), ("DKIM_VALID", -0.5))
    assert len(v.report) == 3 and "the classifier is sure" in v.report[0]

    ham = verdict_of(spam_fields(-0.4, 5.0, "ham", ()) + b"\r\n")
    assert ham is not None and not ham.spam and ham.score == -0.4 and ham.tests == ()
    assert ham.report == ()


def test_no_or_broken_verdict_is_none() -> None:
    assert verdict_of(b"Subject: hi\r\n\r\nbody") is None
    assert verdict_of(b"X-Spam-Status: maybe\r\n\r\n") is None
    assert verdict_of(b"X-Spam-Status: Yes, score=1.2.3.4 required=x\r\n\r\n") is None
    assert verdict_of(b"\xff\xfe garbage \x00\r\n\r\n") is None
    assert verdict_of(b"") is None
