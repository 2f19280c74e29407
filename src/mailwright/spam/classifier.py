"""The learning classifier on the store: per-account models plus a server-wide one.

House rules:
- Token counts live in the store (`spam_tokens`, `spam_totals`), scope 0 for the server-wide
  model and the account id for each account's own; a lesson changes every count it touches in
  one transaction, so a crash loses a lesson whole or not at all, never half of one.
- Everything proportional to the message (parsing, tokenising) runs in a worker thread, except
  for messages under `INLINE_ANALYSIS` bytes (most mail): those are analysed on the event
  loop, where the work (about 1 ms for 4 KiB) costs less than the hand-off to a thread and
  back would add; the loop otherwise only awaits, and combines at most MAX_TOKENS counts
  (bounded, well under 1 ms).
- A model that has seen fewer than `MIN_MESSAGES` of either class says nothing: an untrained
  classifier must not move mail.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import replace

from mailwright.store.api import SpamLesson, SpamStore

from .bayes import ACCOUNT_WEIGHT, Estimate, combine, structure_probability, unseen_in_ham
from .checks import Reason
from .tokens import Document, parse_document, token_key, tokenize_document

__all__ = ["INLINE_ANALYSIS", "MIN_MESSAGES", "Analysis", "Classifier", "analyse", "bayes_reason", "estimate_from_counts",
           "novel", "novelty_reason", "sender_keys", "structure_reason"]

MIN_MESSAGES = 10
NEUTRAL_PROBABILITY = 0.2  # SpamBayes' default ham_cutoff
# `bayes_reason`: spam points in full only from this many clues on, in proportion below
FULL_EVIDENCE = 20
# `structure_reason`: points from the structure-only probability above this, up to the maximum
STRUCTURE_FROM = 0.8
STRUCTURE_POINTS = 2.0
TOTALS_TTL = 2.0
# `novelty_reason`
NOVELTY_FROM = 0.7
NOVELTY_MIN_WORDS = 20
NOVELTY_POINTS = 5.0
_ADDR = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,10}", re.UNICODE)


# Messages up to this size are analysed on the event loop (`Classifier.analyse`).
INLINE_ANALYSIS = 16 * 1024


class Analysis:
    """A parsed message: its document (for the header tests) and its tokens and their keys.

    The keys (one BLAKE2b per token, about a tenth of the analysis) are computed when first
    asked for: a classifier that has not learnt enough yet, or a message judged without the
    model, never needs them.
    """

    __slots__ = ("_keys", "document", "tokens")

    def __init__(self, document: Document, tokens: frozenset[str]) -> None:
        self.document = document
        self.tokens = tokens
        self._keys: dict[int, str] | None = None

    @property
    def keys(self) -> dict[int, str]:
        """Each token under the key it is counted by in the store (`token_key`)."""
        keys = self._keys
        if keys is None:
            keys = self._keys = {token_key(t): t for t in self.tokens}
        return keys


def analyse(message: bytes, max_bytes: int) -> Analysis:
    """Parse and tokenise (synchronous: a worker thread's, or the loop's for small messages)."""
    doc = parse_document(message, max_bytes)
    return Analysis(doc, frozenset(tokenize_document(doc)))


def from_address(doc: Document) -> str | None:
    m = _ADDR.search((doc.header("from") or "")[:2000])
    return m.group(0).lower() if m else None


def recipient_addresses(doc: Document) -> list[str]:
    out: list[str] = []
    for name in ("to", "cc", "bcc"):
        for n, value in doc.headers:
            if n == name:
                out += [m.group(0).lower() for m in _ADDR.finditer(value[:20000])]
    return list(dict.fromkeys(out))[:100]


def sender_keys(doc: Document, dmarc_domain: str | None) -> list[tuple[str, str]]:
    """Reputation keys of a message's author: its address, and its domain when DMARC passed."""
    keys: list[tuple[str, str]] = []
    sender = from_address(doc)
    if sender:
        keys.append(("from", sender))
    if dmarc_domain:
        keys.append(("dmarc", dmarc_domain))
    return keys


def bayes_reason(estimate: Estimate, scope: str) -> Reason | None:
    """Points from the classifier's probability: up to +7 for spam, down to -4 for ham, 0 at
    `NEUTRAL_PROBABILITY`.

    Asymmetric on purpose: a classifier's confidence that a message is ham should not cancel
    several independent spam signals, while its confidence that it is spam should reach the
    junk threshold (5) on its own from about p = 0.77.

    Zero sits at SpamBayes' ham cutoff (0.2), not at 0.5: chi-squared combining puts ordinary
    ham near 0 (on the corpus' validation slice, 390 of 391 ham below 0.05), so a message in
    SpamBayes' "unsure" band (0.2 to 0.9) already has real evidence of spam, and with 0.5 as
    zero it got almost no points: new spam that half resembles old spam then needs three
    rules to be junked. Measured on the validation slice carved from the training half (never
    on the test half): 74.6 % of spam caught with zero at 0.5, 82.5 % at 0.2, no ham lost.

    Spam points are in proportion to the evidence below FULL_EVIDENCE clues: chi-squared
    combining of a dozen clues from a two-line message (a headline from a news feed) reaches
    p = 0.9 as easily as that of a hundred, though a dozen words of a kind the training spam
    happened to use say far less. Chosen on the training half (bench/spam_validate.py, with
    its "short ham" check: the validation ham cut to their first 20 and 40 words): 10, 15, 20,
    25 and 30 tried; from 15 on no shortened ham is misfiled (one was without), 20 leaves
    fewer ham within 2 points of the threshold, for 3 of 248 validation spam on one split.
    """
    p = estimate.probability
    if not estimate.clues:
        return None
    n = NEUTRAL_PROBABILITY
    points = 7.0 * (p - n) / (1 - n) if p >= n else -4.0 * (n - p) / n
    if points > 0 and 0 < estimate.evidence < FULL_EVIDENCE:
        points *= estimate.evidence / FULL_EVIDENCE
    if points < 0 and novel(estimate):
        return None  # its ham clues are the few words it knows of a message it cannot read
    if abs(points) < 0.05:
        return None
    clues = ", ".join(c.token for c in estimate.clues[:3])
    name = "BAYES_SPAM" if p >= 0.5 else "BAYES_HAM"
    return Reason(name, round(points, 1),
                  f"classifier ({scope}): spam probability {p:.2f}; strongest clues: {clues}")  # fmt: skip


def structure_reason(estimate: Estimate) -> Reason | None:
    """Points from the structure-only probability (`bayes.structure_probability`): 0 up to
    STRUCTURE_FROM, rising linearly to STRUCTURE_POINTS at 1; never negative.

    Only in the spam direction and at most 2 points, so that it decides only messages the full
    classifier already leans on or that carry another sign: the form of a message is shared by
    much legitimate mail (an HTML-only receipt has the structure of HTML spam). Chosen on
    validation slices of the training half only (bench/spam_validate.py): from 0.5, 0.7, 0.8,
    0.85, 0.9 and 0.95 and 1 to 4 points, the most validation spam caught with no ham or hard
    ham misfiled on any slice of either split.
    """
    p = estimate.structure
    if p is None or p < STRUCTURE_FROM:
        return None
    points = round(STRUCTURE_POINTS * (p - STRUCTURE_FROM) / (1 - STRUCTURE_FROM), 1)
    if points < 0.05:
        return None
    return Reason("STRUCTURE_SPAM", points,
                  f"the message's form alone (MIME structure, HTML, links, header and route signs)"
                  f" has spam probability {p:.2f}")  # fmt: skip


def novel(estimate: Estimate) -> bool:
    """Whether NOVEL_WORDS applies (`novelty_reason`)."""
    share = estimate.novelty
    return share is not None and estimate.words >= NOVELTY_MIN_WORDS and share >= NOVELTY_FROM


def novelty_reason(estimate: Estimate) -> Reason | None:
    """NOVEL_WORDS: most of a message's words were never in the ham this account (or the
    server) learnt: the mail of a language its reader does not receive (`bayes.unseen_in_ham`).

    NOVELTY_POINTS from NOVELTY_FROM of at least NOVELTY_MIN_WORDS words. When it applies,
    the classifier's ham points are not counted (`judge_points`): they come from the few
    words of the message it knows, and in such mail those are the wrapper (a list's name).
    """
    share = estimate.novelty
    if share is None or not novel(estimate):
        return None
    return Reason("NOVEL_WORDS", NOVELTY_POINTS,
                  f"{share:.0%} of its {estimate.words} words were never in the ham learnt"
                  " (a language this account does not receive?)")  # fmt: skip


def estimate_from_counts(
    counts: dict[str, tuple[float, float]], nham: float, nspam: float, tokens: frozenset[str]
) -> Estimate:
    """The full estimate and the structure-only one, from counts already read."""
    full = combine(counts, nham, nspam, tokens)
    novelty, words = unseen_in_ham(counts, nham, tokens)
    return replace(full, structure=structure_probability(counts, nham, nspam, tokens),
                   novelty=novelty, words=words)


class Classifier:
    def __init__(self, store: SpamStore, *, max_bytes: int = 512 * 1024) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._totals_cache: dict[tuple[int, ...], tuple[float, dict[int, tuple[int, int]]]] = {}

    async def analyse(self, message: bytes) -> Analysis:
        if len(message) <= INLINE_ANALYSIS:
            return self.analyse_now(message)
        return await asyncio.to_thread(analyse, message, self.max_bytes)

    def analyse_now(self, message: bytes) -> Analysis:
        """`analyse` on the caller's thread (the loop: only for messages under
        `INLINE_ANALYSIS`)."""
        return analyse(message, self.max_bytes)

    async def estimate(self, analysis: Analysis, account_id: int | None) -> tuple[Estimate, str] | None:
        """The spam probability under the server-wide model and `account_id`'s own, or None
        while neither has seen enough of both classes."""
        scopes = [0] if not account_id else [0, account_id]
        totals = await self._totals(scopes)
        g_ham, g_spam = totals.get(0, (0, 0))
        a_ham, a_spam = totals.get(account_id, (0, 0)) if account_id else (0, 0)
        # The account's own counts weigh ACCOUNT_WEIGHT times the server-wide ones, as a
        # weighted mean: a token's evidence (how often it was seen) stays on the scale of one
        # model, so combining two models never makes rare tokens look more certain.
        w_a = ACCOUNT_WEIGHT / (1 + ACCOUNT_WEIGHT) if (a_ham or a_spam) else 0.0
        w_g = 1.0 - w_a
        nham = w_g * g_ham + w_a * a_ham
        nspam = w_g * g_spam + w_a * a_spam
        if max(g_ham, a_ham) < MIN_MESSAGES or max(g_spam, a_spam) < MIN_MESSAGES:
            return None
        raw = await self.store.spam_counts(scopes, list(analysis.keys))
        keys = analysis.keys

        def work() -> Estimate:
            counts: dict[str, tuple[float, float]] = {}
            for (scope, key), (ham, spam) in raw.items():
                weight = w_g if scope == 0 else w_a
                h, s = counts.get(keys[key], (0.0, 0.0))
                counts[keys[key]] = (h + weight * ham, s + weight * spam)
            return estimate_from_counts(counts, nham, nspam, analysis.tokens)

        scope = "server-wide" if not (a_ham or a_spam) else "your own and server-wide"
        # bounded by MAX_TOKENS (well under a millisecond): cheaper here than a thread hop
        return work(), scope

    async def _totals(self, scopes: list[int]) -> dict[int, tuple[int, int]]:
        """Message totals per scope, cached for a moment (they change only when a lesson
        commits, and a lesson more or less in a total of hundreds moves no probability)."""
        now = time.monotonic()
        key = tuple(scopes)
        cached = self._totals_cache.get(key)
        if cached is not None and now - cached[0] < TOTALS_TTL:
            return cached[1]
        totals = await self.store.spam_totals(scopes)
        if len(self._totals_cache) > 10_000:
            self._totals_cache.clear()
        self._totals_cache[key] = (now, totals)
        return totals

    async def learn(
        self,
        account_id: int,
        blob_id: str,
        label: str,
        analysis: Analysis | None,
        *,
        senders: Sequence[tuple[str, str]] = (),
        server_wide: bool = True,
    ) -> bool:
        """Teach one message as `label` ("spam", "ham", or "filed"); False if already known."""
        tokens = tuple(analysis.keys) if analysis is not None and label != "filed" else ()
        scopes = (0, account_id) if server_wide else (account_id,)
        lesson = SpamLesson(account_id, blob_id, label, scopes, tokens, tuple(senders))
        learnt = await self.store.spam_learn(lesson)
        self._totals_cache.clear()
        return learnt
