"""The statistical classifier: Robinson's token probabilities, Fisher's chi-square combining.

This is the scheme SpamBayes settled on after years of measurement: each token's spam
probability is smoothed toward 0.5 by how often it was seen (Robinson's f(w)), only tokens far
from neutral count, and the strongest clues are combined with Fisher's method in both
directions, so that a message with strong evidence both ways comes out "unsure" (near 0.5)
instead of being forced to one side. Pure functions on counts; the store holds the counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["STRUCTURE_PREFIXES", "Clue", "Estimate", "chi2q", "combine", "structure_probability",
           "token_probability", "unseen_in_ham"]

UNKNOWN_WORD_STRENGTH = 0.45  # Robinson's s
UNKNOWN_WORD_PROB = 0.5  # Robinson's x
# |f(w) - 0.5| below this is no evidence (SpamBayes: 0.1; chosen by validation, see below)
MIN_PROB_STRENGTH = 0.25
# How far a token's evidence is counted in units of the smaller class (0 = Robinson's raw
# count, 1 = fully rescaled); see `token_probability`
BALANCE = 0.5
MAX_DISCRIMINATORS = 150
ACCOUNT_WEIGHT = 2  # an account's own counts weigh this many times the server-wide ones
# The tokens that describe a message's form rather than its words (tokens.py, shape.py): MIME
# structure, transfer encodings, charsets, telling HTML tags and tricks, link shapes, header
# oddities, the route's time stamps. See `structure_probability`.
STRUCTURE_PREFIXES = ("shape:", "tag:", "mime:", "html:", "content-type:", "cte:", "charset:",
                      "proto:", "filename-ext:", "url:ip-address")  # fmt: skip
# |f(w) - 0.5| below this is no evidence in the structure-only estimate: SpamBayes' own default,
# as a message has only a few dozen structure tokens (chosen by validation: 0.1 and 0.25 tried)
STRUCTURE_MIN_STRENGTH = 0.1


@dataclass(frozen=True, slots=True)
class Clue:
    token: str
    probability: float


@dataclass(frozen=True, slots=True)
class Estimate:
    probability: float  # 0 = surely ham, 1 = surely spam, 0.5 = no idea
    clues: tuple[Clue, ...]  # the strongest evidence, strongest first
    # the same from the structure tokens alone (`structure_probability`); None = no such clue
    structure: float | None = None
    # how many clues were combined (at most MAX_DISCRIMINATORS): few clues, little evidence
    evidence: int = 0
    # the share of the message's words that no learnt ham contained, and how many words it
    # has (`unseen_in_ham`); None when the ham model is too small to say
    novelty: float | None = None
    words: int = 0


def token_probability(ham: float, spam: float, nham: float, nspam: float) -> float:
    """Robinson's f(w): the token's spam probability, smoothed toward 0.5 when rarely seen.

    Robinson counts a token's evidence as the number of messages it was seen in. When one class
    is much larger than the other (a mailbox keeps six times more ham than spam, as the corpus
    does), a word seen in three of 1,500 ham and in none of 250 spam is then "strong ham"
    (f = 0.07), though 250 spam were too few to expect it even once: ordinary English words
    become ham clues, and new spam made of ordinary words looks like ham. So each count is
    weighed by (smaller class / its class) ** BALANCE: the evidence is counted on the scale of
    the smaller class. Chosen with MIN_PROB_STRENGTH by validation on the training part only
    (bench/spam_validate.py): BALANCE 0 / 0.5 / 0.75, strength 0.1 / 0.25 / 0.4; the best sum of
    spam caught with no ham misfiled on any validation slice.
    """
    hamratio = ham / nham if nham else 0.0
    spamratio = spam / nspam if nspam else 0.0
    if hamratio + spamratio == 0.0:
        return UNKNOWN_WORD_PROB
    p = spamratio / (hamratio + spamratio)
    if nham and nspam:
        smaller = min(nham, nspam)
        n = ham * float((smaller / nham) ** BALANCE) + spam * float((smaller / nspam) ** BALANCE)
    else:
        n = ham + spam
    s = UNKNOWN_WORD_STRENGTH
    return (s * UNKNOWN_WORD_PROB + n * p) / (s + n)


def chi2q(x2: float, v: int) -> float:
    """P(chisq >= x2) with v (even) degrees of freedom."""
    m = x2 / 2.0
    term = math.exp(-m)
    total = term
    for i in range(1, v // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


def combine(
    counts: Mapping[str, tuple[float, float]], nham: float, nspam: float, tokens: Iterable[str],
    *, min_strength: float | None = None,
) -> Estimate:
    """The spam probability of a message with `tokens`, given each token's (ham, spam) counts
    and the number of ham and spam messages they were counted over."""
    least = MIN_PROB_STRENGTH if min_strength is None else min_strength
    clues: list[tuple[float, str, float]] = []
    for token in tokens:
        ham, spam = counts.get(token, (0, 0))
        if ham == 0 and spam == 0:
            continue
        p = token_probability(ham, spam, nham, nspam)
        strength = abs(p - 0.5)
        if strength >= least:
            clues.append((strength, token, p))
    clues.sort(reverse=True)
    chosen = clues[:MAX_DISCRIMINATORS]
    if not chosen:
        return Estimate(0.5, ())
    log_h = log_s = 0.0
    for _, _, p in chosen:
        p = min(max(p, 1e-9), 1.0 - 1e-9)
        log_h += math.log(p)
        log_s += math.log(1.0 - p)
    n = len(chosen)
    s = 1.0 - chi2q(-2.0 * log_s, 2 * n)
    h = 1.0 - chi2q(-2.0 * log_h, 2 * n)
    probability = (s - h + 1.0) / 2.0
    return Estimate(probability, tuple(Clue(t, p) for _, t, p in chosen[:10]), evidence=n)


def structure_probability(
    counts: Mapping[str, tuple[float, float]], nham: float, nspam: float, tokens: Iterable[str]
) -> float | None:
    """The spam probability from the message's structure tokens alone (STRUCTURE_PREFIXES), or
    None when none of them is a clue: a second opinion that does not read the words.

    In the full estimate a message's few dozen structure tokens compete with hundreds of words
    for the 150 places, and words are what drifts: later spam written in words the training spam
    did not use comes out as ham even when its form (HTML only, a forged Date, links elsewhere,
    an odd charset) is plainly that of the spam learnt. Counted on their own, with the same
    counts and arithmetic, the form speaks again; the service gives it a few points only when
    it is confident (`structure_reason`). Same counts as the full model, so every lesson (a
    user's move to Junk included) teaches both.
    """
    chosen = [t for t in tokens if t.startswith(STRUCTURE_PREFIXES)]
    if not chosen:
        return None
    estimate = combine(counts, nham, nspam, chosen, min_strength=STRUCTURE_MIN_STRENGTH)
    return estimate.probability if estimate.clues else None


# `unseen_in_ham`: no opinion below this many (weighted) ham messages learnt
NOVELTY_MIN_HAM = 200


def unseen_in_ham(
    counts: Mapping[str, tuple[float, float]], nham: float, tokens: Iterable[str]
) -> tuple[float | None, int]:
    """(share of the message's body words that no learnt ham contained, number of words).

    A message in a language its reader never receives mail in is mostly words the ham model has
    never seen: the corpus' French and Turkish spam had 76 to 88 % of such words, its ham at
    most 60 % (validation slices of the training half). The classifier cannot see that (unknown
    words are no clue at all), and the few words it does know (a list's name, "mobile",
    "europe") decide it, often as ham. Counted against the learnt ham only, so an account (or a
    server) that does receive mail in that language has its words in ham and is not touched.
    None when fewer than NOVELTY_MIN_HAM ham were learnt: to a young model every word is new.
    Body words are the tokens without a prefix (tokens.py), so header, URL and shape tokens do
    not count.
    """
    if nham < NOVELTY_MIN_HAM:
        return None, 0
    words = unseen = 0
    for token in tokens:
        if ":" in token:
            continue
        words += 1
        if counts.get(token, (0.0, 0.0))[0] <= 0.0:
            unseen += 1
    return (unseen / words if words else None), words
