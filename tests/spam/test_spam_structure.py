"""The structure-only second opinion of the classifier (fourth round): the form of a message
judged apart from its words, and hostile input through the whole judgement, bounded."""

from __future__ import annotations

import os

from mailwright.spam import bayes
from mailwright.spam.bayes import Clue, Estimate, structure_probability
from mailwright.spam.checks import header_reasons
from mailwright.spam.classifier import (
    FULL_EVIDENCE,
    analyse,
    bayes_reason,
    estimate_from_counts,
    structure_reason,
)
from mailwright.spam.service import SpamFilter
from mailwright.spam.settings import SpamSettings
from mailwright.spam.tokens import MAX_TOKENS
from mailwright.store.api import Store

from .messages import HAM_TOPICS, SPAM_TOPICS, ham, spam


def _counts(ham_tokens: dict[str, int], spam_tokens: dict[str, int]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for token, n in ham_tokens.items():
        out[token] = (float(n), out.get(token, (0.0, 0.0))[1])
    for token, n in spam_tokens.items():
        out[token] = (out.get(token, (0.0, 0.0))[0], float(n))
    return out


def test_structure_reads_only_the_form_of_a_message() -> None:
    # the words say ham (seen in 300 of 500 ham, no spam); the form says spam
    words = [f"word{i}" for i in range(30)]
    counts = _counts(dict.fromkeys(words, 300),
                     {"mime:html-only": 240, "tag:font": 200, "shape:date-after-received": 60})  # fmt: skip
    tokens = frozenset([*words, "mime:html-only", "tag:font", "shape:date-after-received"])
    estimate = estimate_from_counts(counts, 500, 250, tokens)
    assert estimate.probability < 0.2  # the words win the full estimate
    assert estimate.structure is not None and estimate.structure > 0.95
    reason = structure_reason(estimate)
    assert reason is not None and reason.name == "STRUCTURE_SPAM" and 1.5 < reason.points <= 2.0
    # words never enter the structure estimate, whatever their counts
    assert structure_probability(counts, 500, 250, words) is None


def test_structure_reason_only_confident_and_only_toward_spam() -> None:
    assert structure_reason(Estimate(0.5, (), None)) is None  # no structure clue at all
    assert structure_reason(Estimate(0.9, (), 0.79)) is None  # under STRUCTURE_FROM
    assert structure_reason(Estimate(0.0, (), 0.05)) is None  # ham-like form: no negative points
    top = structure_reason(Estimate(0.5, (), 1.0))
    assert top is not None and top.points == 2.0
    middle = structure_reason(Estimate(0.5, (), 0.9))
    assert middle is not None and middle.points == 1.0


def test_structure_weak_form_clues_still_count_on_their_own_scale() -> None:
    # a structure token seen 12 to 20 is strength 0.12: no clue in the full estimate (0.25),
    # a clue in the structure-only one (SpamBayes' own 0.1)
    counts = _counts({"charset:iso-8859-1": 12}, {"charset:iso-8859-1": 20})
    p = bayes.token_probability(12, 20, 250, 250)
    assert bayes.STRUCTURE_MIN_STRENGTH <= abs(p - 0.5) < bayes.MIN_PROB_STRENGTH
    assert not bayes.combine(counts, 250, 250, ["charset:iso-8859-1"]).clues
    assert structure_probability(counts, 250, 250, ["charset:iso-8859-1"]) is not None


def test_structure_html_only_is_no_rule_of_its_own() -> None:
    # learnt by the classifier (mime:html-only), no longer also a fixed rule on top
    analysis = analyse(spam(1), 512 * 1024)
    assert "mime:html-only" in analysis.tokens
    assert "HTML_ONLY" not in {r.name for r in header_reasons(analysis.document)}


async def _trained(store: Store) -> tuple[SpamFilter, int]:
    await store.add_domain("example.test")
    account = await store.add_account("bob@example.test", "x")
    spam_filter = SpamFilter(SpamSettings(), store, None, "mail.example.test")
    for i in range(12):
        for label, raw in (("ham", ham(i)), ("spam", spam(i))):
            await spam_filter.classifier.learn(account.id, f"{label}{i}", label,
                                               await spam_filter.classifier.analyse(raw))  # fmt: skip
    return spam_filter, account.id


def _spam_form_in_ham_words(variant: int) -> bytes:
    """A ham letter's words in the form the training spam had (HTML only, a line in capitals, a
    font tag, a removal offer): what later spam written in new words looks like."""
    subject, text = HAM_TOPICS[variant % len(HAM_TOPICS)]
    spam_subject, spam_text = SPAM_TOPICS[variant % len(SPAM_TOPICS)]
    raw = spam(variant).replace(spam_subject.encode(), subject.encode())
    return raw.replace(spam_text.upper().encode(), text.upper().encode())


async def test_structure_second_opinion_in_the_judgement(store: Store) -> None:
    spam_filter, account = await _trained(store)
    raw = _spam_form_in_ham_words(40)
    judged = await spam_filter.judge(raw, recipients=["bob@example.test"], account_ids=[account])
    names = {r.name: r.points for r in judged.reasons}
    assert names.get("STRUCTURE_SPAM", 0) > 0, judged.lines()
    assert round(sum(r.points for r in judged.reasons), 1) == judged.score
    # ordinary ham in the ham's own form gets nothing from it
    plain = await spam_filter.judge(ham(3), recipients=["bob@example.test"], account_ids=[account])
    assert "STRUCTURE_SPAM" not in {r.name for r in plain.reasons}, plain.lines()


async def test_structure_hostile_input_is_judged_within_bounds(store: Store) -> None:
    spam_filter, account = await _trained(store)
    head = b"From: x@y.example\r\nTo: bob@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                      for i in range(20000))  # fmt: skip
    hostile = [
        # malformed MIME: a multipart without its boundary, an unknown encoding, a broken base64
        head + b"Content-Type: multipart/mixed\r\nContent-Transfer-Encoding: x-weird\r\n\r\n"
        b"--\r\n=?utf-8?B?####?=\r\n" + b"A" * 5000,
        # 10 MiB of HTML
        head + b"Content-Type: text/html\r\n\r\n" + b"<div><font size=1>x</font>" * 400_000,
        # 20,000 levels of nested multiparts
        head + nested,
        # 5 MiB of random bytes, with no header section at all
        os.urandom(5 * 1024 * 1024),
    ]
    for raw in hostile:
        analysis = await spam_filter.classifier.analyse(raw)
        assert len(analysis.tokens) <= MAX_TOKENS + 50
        judged = await spam_filter.judge(raw, recipients=["bob@example.test"], account_ids=[account])
        assert judged.verdict in ("ham", "junk", "reject")
        assert len(judged.reasons) < 40
        assert sum(1 for r in judged.reasons if r.name == "STRUCTURE_SPAM") <= 1


def test_structure_few_clues_give_few_spam_points() -> None:
    # a two-line news item: a dozen clues reach p = 0.95 as easily as a hundred do
    clue = (Clue("debt", 0.99),)
    full = bayes_reason(Estimate(0.95, clue, evidence=FULL_EVIDENCE), "test")
    few = bayes_reason(Estimate(0.95, clue, evidence=FULL_EVIDENCE // 4), "test")
    assert full is not None and few is not None
    assert full.points == round(7.0 * 0.75 / 0.8, 1)
    assert few.points == round(full.points / 4, 1)
    # the ham side is not scaled: few clues of ham still count in full
    ham_side = bayes_reason(Estimate(0.0, clue, evidence=2), "test")
    assert ham_side is not None and ham_side.points == -4.0


def test_structure_evidence_is_the_number_of_clues_combined() -> None:
    counts = {f"w{i}": (0.0, 40.0) for i in range(30)} | {"weak": (10.0, 12.0)}
    estimate = bayes.combine(counts, 200, 200, [*counts, "unseen"])
    assert estimate.evidence == 30 and len(estimate.clues) == 10
