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

__all__ = ["Clue", "Estimate", "chi2q", "combine", "token_probability"]

UNKNOWN_WORD_STRENGTH = 0.45  # Robinson's s
UNKNOWN_WORD_PROB = 0.5  # Robinson's x
# |f(w) - 0.5| below this is no evidence (SpamBayes: 0.1; chosen by validation, see below)
MIN_PROB_STRENGTH = 0.25
# How far a token's evidence is counted in units of the smaller class (0 = Robinson's raw
# count, 1 = fully rescaled); see `token_probability`
BALANCE = 0.5
MAX_DISCRIMINATORS = 150
ACCOUNT_WEIGHT = 2  # an account's own counts weigh this many times the server-wide ones


@dataclass(frozen=True, slots=True)
class Clue:
    token: str
    probability: float


@dataclass(frozen=True, slots=True)
class Estimate:
    probability: float  # 0 = surely ham, 1 = surely spam, 0.5 = no idea
    clues: tuple[Clue, ...]  # the strongest evidence, strongest first


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
    counts: Mapping[str, tuple[float, float]], nham: float, nspam: float, tokens: Iterable[str]
) -> Estimate:
    """The spam probability of a message with `tokens`, given each token's (ham, spam) counts
    and the number of ham and spam messages they were counted over."""
    clues: list[tuple[float, str, float]] = []
    for token in tokens:
        ham, spam = counts.get(token, (0, 0))
        if ham == 0 and spam == 0:
            continue
        p = token_probability(ham, spam, nham, nspam)
        strength = abs(p - 0.5)
        if strength >= MIN_PROB_STRENGTH:
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
    return Estimate(probability, tuple(Clue(t, p) for _, t, p in chosen[:10]))
