"""The shortcuts of `spam.shape.body_shape` and `spam.tokens._words` (a literal each pattern
needs, ASCII lines counted with `bytes.translate`, ASCII text lower-cased before the scan,
each distinct word looked at once) give exactly the tokens of the plain definitions: the
patterns run on the whole text, letters counted per line by regular expression, every
word lower-cased after the scan."""

from __future__ import annotations

import random
import re

from mailwright.spam import shape, tokens
from mailwright.spam.shape import _bucket

# the advance-fee families without the look-ahead of the letters they begin with
PLAIN_FRAUD = re.compile(r"\b" + shape._FRAUD.pattern.removeprefix(shape._FRAUD_START))


def plain_body_shape(text: str) -> set[str]:
    out: set[str] = set()
    original, text = text, text.lower()
    for pattern, token in ((shape._MONEY, "money"), (shape._MILLIONS, "money-millions"),
                           (shape._PERCENT, "percent"), (shape._REMOVAL, "removal-offer"),
                           (shape._BILL, "cites-spam-law"),
                           (shape._TOLL_FREE, "toll-free-number")):  # fmt: skip
        if pattern.search(text):
            out.add("shape:" + token)
    out.add("shape:sales-phrases:" + _bucket(len(shape._GUARANTEE.findall(text, 0, 100_000))))
    out.add("shape:secrecy-phrases:" + _bucket(len(shape._SECRECY.findall(text, 0, 100_000))))
    families = {m.lastgroup for m in PLAIN_FRAUD.finditer(text, 0, 100_000)}
    out |= {"shape:fraud:" + f.replace("_", "-") for f in families if f}
    out.add("shape:fraud-families:" + _bucket(len(families)))
    if "!!" in text:
        out.add("shape:exclamations")
    caps = lines = 0
    for line in original.splitlines()[:2000]:
        line = line[:500]
        letters = len(shape._LETTER.findall(line))
        if len(line) < 10 or letters < 10:
            continue
        lines += 1
        if line != line.lower() and len(shape._UPPER.findall(line)) >= 0.8 * letters:
            caps += 1
    out.add("shape:capital-lines:" + _bucket(caps))
    if shape._SPACED_LETTERS.search(original[:100_000]):
        out.add("shape:spaced-letters")
    if lines and caps * 4 >= lines and caps >= 2:
        out.add("shape:mostly-capitals")
    return out


def plain_words(text: str, prefix: str) -> set[str]:
    out: set[str] = set()
    for m in tokens._WORD.finditer(text):
        word = m.group(0).lower().rstrip(".-'!")
        if len(word) > 12:
            out.add(f"{prefix}skip:{word[0]} {len(word) // 10 * 10}")
        elif len(word) >= 3:
            out.add(prefix + word)
    return out


PIECES = [*"abcXYZ09 $%.*_-!'\n", "€", "£", "US $25 million dollars", "1618", "s. 1618",
          "H.R. 3113", "title iii", "1-888-555-1234", "(800) 555-1234", "50 %", "Remove me",
          "opt-out", "unsubscribe", "CLICK HERE", "100% free", "risk-free", "next of kin",
          "URGENT BUSINESS", "confidentiality", "V-I-A-G-R-A", "f r e e", "É", "ÀÉÎ", "×××××",
          "Σ", "İstanbul", "ß", "ﬁ", "²", "½", "e\u0301", "ǅ", "\u2028", "\x0c",
          "SHOUTING IN CAPITALS HERE", "late father", "was killed", "were assassinated",
          "20% of the total", "share for you", "god bless", "keep it secret", "inheritance",
          "bequeath", "utmost secrecy", "overseas account", "honest and", "reply urgently",
          "transfer of the funds", "petroleum corporation", "top secret", "deceased",
          "fixed account", "compensation for your", "ministry of", "absolute secrecy"]  # fmt: skip


def random_texts(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 120))) for _ in range(n)]


def test_shape_fastpaths_body_shape_same_tokens_as_plain_definition() -> None:
    for text in random_texts(3000, seed=7):
        got: set[str] = set()
        shape.body_shape(text, got)
        assert got == plain_body_shape(text), repr(text)


def test_shape_fastpaths_words_same_tokens_as_plain_definition() -> None:
    for i, text in enumerate(random_texts(3000, seed=11)):
        prefix = "subject:" if i % 2 else ""
        got: set[str] = set()
        tokens._words(text, prefix, got)
        assert got == plain_words(text, prefix), repr(text)
