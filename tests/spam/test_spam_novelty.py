"""NOVEL_WORDS (fifth round): a message mostly in words no learnt ham contained, as the mail of
a language its reader does not receive is; counted against the ham of the account and the
server, so an account that does receive such mail is not touched."""

from __future__ import annotations

import pytest

from mailwright.spam import bayes
from mailwright.spam.bayes import Estimate, unseen_in_ham
from mailwright.spam.classifier import (
    NOVELTY_MIN_WORDS,
    NOVELTY_POINTS,
    analyse,
    bayes_reason,
    estimate_from_counts,
    novelty_reason,
)
from mailwright.spam.service import SpamFilter
from mailwright.spam.settings import SpamSettings
from mailwright.store.api import Store

from .messages import ham, spam

FRENCH = (
    "Madame, Monsieur, nous avons le plaisir de vous annoncer une occasion unique: notre lettre "
    "mensuelle vous propose des placements garantis avec des rendements exceptionnels. Pour "
    "profiter de cette offre, il suffit de remplir le formulaire sur notre site avant la fin du "
    "mois. Nos conseillers financiers restent disponibles chaque semaine pour répondre à toutes "
    "vos questions concernant votre patrimoine, votre retraite et vos impôts. Cordialement, "
    "toute l'équipe de conseil"
)


def french(variant: int = 0, *, sender: str = "lettre@conseil.example") -> bytes:
    return (
        f"From: Conseil <{sender}>\r\nTo: bob@example.test\r\n"
        f"Subject: Lettre mensuelle {variant}\r\nDate: Mon, 7 Dec 2026 12:{variant % 60:02d}:00 +0000\r\n"
        f"Message-ID: <fr{variant}@conseil.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{FRENCH} (numéro {variant}).\r\n"
    ).encode()


def _words(raw: bytes) -> list[str]:
    return [t for t in analyse(raw, 512 * 1024).tokens if ":" not in t]


def test_novelty_is_the_share_of_words_never_in_ham() -> None:
    english = _words(ham(0))
    counts = dict.fromkeys(english, (5.0, 0.0))
    # an English letter: every word known in ham; the French one: none of its words are
    assert unseen_in_ham(counts, 500, english) == (0.0, len(english))
    share, words = unseen_in_ham(counts, 500, _words(french()))
    assert share == 1.0 and words >= NOVELTY_MIN_WORDS
    # words seen only in spam are still unseen in ham; prefixed tokens never count
    share, words = unseen_in_ham({"lettre": (0.0, 9.0)}, 500, ["lettre", "subject:lettre", "url:x.example"])
    assert (share, words) == (1.0, 1)
    # a young model has seen too little ham to tell a new language from a new topic
    assert unseen_in_ham(counts, bayes.NOVELTY_MIN_HAM - 1, _words(french())) == (None, 0)


def test_novelty_reason_needs_enough_words_and_a_high_share() -> None:
    assert novelty_reason(Estimate(0.5, (), novelty=None, words=200)) is None
    assert novelty_reason(Estimate(0.5, (), novelty=0.69, words=200)) is None
    assert novelty_reason(Estimate(0.5, (), novelty=1.0, words=NOVELTY_MIN_WORDS - 1)) is None
    reason = novelty_reason(Estimate(0.5, (), novelty=0.8, words=NOVELTY_MIN_WORDS))
    assert reason is not None and reason.name == "NOVEL_WORDS" and reason.points == NOVELTY_POINTS


def test_novelty_drops_the_ham_points_of_the_few_known_words() -> None:
    # the few words it knows (a list's name) say ham: that must not outweigh all it cannot read
    french_words = _words(french())
    counts = {"subject:lettre": (300.0, 0.0), "from:conseil": (300.0, 0.0)}
    tokens = frozenset([*french_words, *counts])
    estimate = estimate_from_counts(counts, 500, 250, tokens)
    assert estimate.probability < 0.1 and estimate.novelty == 1.0
    assert bayes_reason(estimate, "test") is None
    # the same ham clues on a message whose words are known keep their negative points
    known = dict(counts) | dict.fromkeys(french_words, (20.0, 0.0))
    ordinary = bayes_reason(estimate_from_counts(known, 500, 250, tokens), "test")
    assert ordinary is not None and ordinary.points < 0


async def _filter(store: Store) -> tuple[SpamFilter, int, int]:
    await store.add_domain("example.test")
    bob = await store.add_account("bob@example.test", "x")
    claire = await store.add_account("claire@example.test", "x")
    spam_filter = SpamFilter(SpamSettings(), store, None, "mail.example.test")
    for i in range(24):
        for label, raw in (("ham", ham(i)), ("spam", spam(i))):
            await spam_filter.classifier.learn(bob.id, f"{label}{i}", label,
                                               await spam_filter.classifier.analyse(raw))  # fmt: skip
    return spam_filter, bob.id, claire.id


async def _names(spam_filter: SpamFilter, raw: bytes, address: str, account: int) -> set[str]:
    judged = await spam_filter.judge(raw, recipients=[address], account_ids=[account])
    return {r.name for r in judged.reasons}


async def test_novelty_in_the_judgement_spares_an_account_that_reads_the_language(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bayes, "NOVELTY_MIN_HAM", 20)  # 24 ham learnt here, not hundreds
    spam_filter, bob, claire = await _filter(store)
    letter = french(99)
    assert "NOVEL_WORDS" in await _names(spam_filter, letter, "bob@example.test", bob)
    assert "NOVEL_WORDS" not in await _names(spam_filter, ham(50), "bob@example.test", bob)
    # claire keeps French mail, in her own model only: she is spared, bob still is not
    for i in range(3):
        await spam_filter.classifier.learn(claire, f"fr{i}", "ham",
                                           await spam_filter.classifier.analyse(french(i)),
                                           server_wide=False)  # fmt: skip
    assert "NOVEL_WORDS" not in await _names(spam_filter, letter, "claire@example.test", claire)
    assert "NOVEL_WORDS" in await _names(spam_filter, letter, "bob@example.test", bob)
    # once the server-wide model has such ham too, nobody on the server is judged by it
    await spam_filter.classifier.learn(claire, "fr-server", "ham",
                                       await spam_filter.classifier.analyse(french(7)))  # fmt: skip
    assert "NOVEL_WORDS" not in await _names(spam_filter, letter, "bob@example.test", bob)
