"""``python -m bench.spam_validate``: choose the classifier's parameters on the training part only.

`python -m bench.spam` trains on one half of the corpus and classifies the other (the test
half). Every parameter of the filter that was chosen by measurement was chosen here instead,
on slices carved from the *training* half, so that the test half stays unseen:

- ``latest-quarter`` and ``latest-half``: per label, the latest quarter (half) of the training
  half by Date is classified after training on the rest of it, as drift would have it;
- ``random-quarter``: a random quarter of the training half (seed 7), the usual check.

The 120 generated hard-ham messages (bench/hardham.py) are classified after each training
too, and so is "short ham": each single-part text ham of the slice cut to its first 20 and 40
words, as the two-line items of a news feed are (the corpus' training half has none of those). Scoring is the service's own arithmetic, in memory (`header_reasons`, `shape_reasons`,
`bayes_reason`, `structure_reason` and `novelty_reason` on an in-memory count table equal to what `Classifier.learn` stores), so a
grid of parameters runs in a minute instead of a bench run each. Each line shows, per slice:
spam caught, ham misfiled, hard ham misfiled, and (in brackets) ham and hard ham within 2
points of the junk threshold, the margin the rule "no lost ham" is judged by.

    python -m bench.spam_validate                          # the parameters as they are
    python -m bench.spam_validate --balance 0,0.5,0.75 --min-strength 0.1,0.25,0.4
    python -m bench.spam_validate --strength 0.2,0.45,1 --unknown 0.5,0.55,0.6   # Robinson's s, x
    python -m bench.spam_validate --split random           # slices of the random split's half
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.spam import Sample, default_corpus, hard_ham_samples, load
from mailwright.spam import bayes
from mailwright.spam.checks import header_reasons, shape_reasons
from mailwright.spam.classifier import (
    Analysis,
    analyse,
    bayes_reason,
    estimate_from_counts,
    novelty_reason,
    structure_reason,
)

Pair = tuple[Sample, Analysis]
JUNK = 5.0


def slices(train: Sequence[Pair]) -> dict[str, tuple[list[Pair], list[Pair]]]:
    """(training, validation) pairs carved from the training half only."""
    out: dict[str, tuple[list[Pair], list[Pair]]] = {}
    for name, fraction in (("latest-quarter", 0.25), ("latest-half", 0.5)):
        fit: list[Pair] = []
        check: list[Pair] = []
        for label in ("ham", "spam"):
            of_label = sorted((p for p in train if p[0].label == label),
                              key=lambda p: (p[0].when, p[0].name))  # fmt: skip
            cut = int(len(of_label) * (1 - fraction))
            fit += of_label[:cut]
            check += of_label[cut:]
        out[name] = (fit, check)
    order = list(range(len(train)))
    random.Random(7).shuffle(order)
    out["random-quarter"] = ([train[j] for n, j in enumerate(order) if n % 4],
                             [train[j] for n, j in enumerate(order) if not n % 4])  # fmt: skip
    return out


def shortened(raw: bytes, words: int) -> bytes | None:
    """A single-part text ham cut to its first `words` words: the two-line items of a news
    feed, which a classifier has little evidence about (the "short ham" check); None for
    multipart or encoded messages."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lower = head.lower()
    if not sep or b"multipart" in lower or b"base64" in lower:
        return None
    return head + sep + b" ".join(body.split(b" ")[:words]) + b"\r\n"


def short_ham(check: Sequence[Pair]) -> list[Pair]:
    out: list[Pair] = []
    for sample, _ in check:
        for words in (20, 40):
            raw = shortened(sample.raw, words) if sample.label == "ham" else None
            if raw is not None:
                out.append(
                    (Sample(sample.name, "shortham", raw, sample.when), analyse(raw, 512 * 1024))
                )
    return out


def evaluate(fit: Sequence[Pair], check: Sequence[Pair]) -> Counter[str]:
    counts: dict[str, list[int]] = {}
    nham = nspam = 0
    for sample, analysis in fit:
        spam = sample.label == "spam"
        nspam += spam
        nham += not spam
        for token in analysis.tokens:
            counts.setdefault(token, [0, 0])[spam] += 1
    result: Counter[str] = Counter()
    for sample, analysis in check:
        known = {
            t: (float(counts[t][0]), float(counts[t][1])) for t in analysis.tokens if t in counts
        }
        reasons = header_reasons(analysis.document) + shape_reasons(analysis.tokens)
        estimate = estimate_from_counts(known, nham, nspam, analysis.tokens)
        for verdict in (
            bayes_reason(estimate, "validation"),
            structure_reason(estimate),
            novelty_reason(estimate),
        ):
            if verdict is not None:
                reasons.append(verdict)
        score = sum(r.points for r in reasons)
        result[sample.label] += 1
        result[sample.label + " junk"] += score >= JUNK
        result[sample.label + " near"] += JUNK - 2 <= score < JUNK
    return result


def line(result: Counter[str]) -> str:
    return (f"{result['spam junk']}/{result['spam']} spam, {result['ham junk']}/{result['ham']} ham,"
            f" {result['hardham junk']}/{result['hardham']} hard,"
            f" {result['shortham junk']}/{result['shortham']} short"
            f" (near: {result['ham near']} ham, {result['hardham near']} hard,"
            f" {result['shortham near']} short)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.spam_validate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--corpus", type=Path, default=default_corpus())
    p.add_argument("--split", choices=["date", "random"], default="date")
    p.add_argument("--balance", default=str(bayes.BALANCE), help="comma-separated values to try")
    p.add_argument("--min-strength", default=str(bayes.MIN_PROB_STRENGTH),
                   help="comma-separated values to try")  # fmt: skip
    p.add_argument("--strength", default=str(bayes.UNKNOWN_WORD_STRENGTH),
                   help="Robinson's s, comma-separated values to try")  # fmt: skip
    p.add_argument("--unknown", default=str(bayes.UNKNOWN_WORD_PROB),
                   help="Robinson's x, comma-separated values to try")  # fmt: skip
    args = p.parse_args(argv)
    if not (args.corpus / "ham").is_dir():
        print(f"bench.spam_validate: no corpus at {args.corpus}", file=sys.stderr)
        return 2
    # the test half is loaded only to be set aside: nothing below looks at it
    train, _ = load(args.corpus, raw_mode=False, ham_test=600, seed=1, split=args.split)
    analysed = [(s, analyse(s.raw, 512 * 1024)) for s in train]
    hard = [(s, analyse(s.raw, 512 * 1024)) for s in hard_ham_samples(120)]
    carved = slices(analysed)
    shorts = {name: short_ham(check) for name, (_, check) in carved.items()}
    grid = itertools.product(*(tuple(float(v) for v in values.split(","))
                               for values in (args.balance, args.min_strength, args.strength, args.unknown)))  # fmt: skip
    for balance, strength, s, x in grid:
        bayes.BALANCE, bayes.MIN_PROB_STRENGTH = balance, strength
        bayes.UNKNOWN_WORD_STRENGTH, bayes.UNKNOWN_WORD_PROB = s, x
        cells = [
            f"{name}: {line(evaluate(fit, check + hard + shorts[name]))}"
            for name, (fit, check) in carved.items()
        ]
        print(
            f"balance {balance} min-strength {strength} s {s} x {x} | " + " | ".join(cells),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
