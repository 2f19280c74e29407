"""Differential test against Pigeonhole: every corpus script on every corpus message.

`sieve-test` (Debian dovecot-sieve) is the oracle; tests/sieve/oracle.py reduces both sides to
the same comparable actions. The tool is part of scripts/test.sh, so a missing tool fails.
The documented differences (docs/sieve.md) are listed here with their reason; anything else
that disagrees fails the test, and a listed difference that starts agreeing fails it too.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import oracle

CORPUS = Path(__file__).parent / "corpus"
SCRIPTS = sorted((CORPUS / "scripts").glob("*.sieve"))
MESSAGES = sorted((CORPUS / "messages").glob("*.eml"))

# script stem -> why we differ from Pigeonhole 2.3 on purpose (or where it cannot be the oracle)
KNOWN_DIFFERENCES = {
    "ereject": "Pigeonhole 2.3 does not implement ereject (RFC 5429); we do",
    "duplicate": "sieve-test has no duplicate database to write to and fails the run",
    "include-missing-required": "Pigeonhole refuses a missing include at compile time; we"
                                " validate each script alone (it may be uploaded later) and"
                                " fail at run time, keeping the message",
    "string-matches-case": "Pigeonhole 2.3's string test compares with i;octet when no"
                           " :comparator is given (:is, :matches, :value; its header test and"
                           " an explicit i;ascii-casemap do not); we follow RFC 5228 2.7.3",
    "variables-quoteregex": "Pigeonhole 2.3 does not have the regex draft's :quoteregex",
    "invalid-unterminated": "both refuse it; we name the line where the unterminated string"
                            " starts, Pigeonhole the line where the script ends",
}
# (script, message) pairs: Pigeonhole ignores :index when the date test reads Received
KNOWN_PAIRS = {("index", "spam")}


@pytest.fixture(scope="module")
def conf() -> Iterator[Path]:
    assert shutil.which("sieve-test"), "sieve-test missing: apt-get install dovecot-sieve"
    # sieve-test drops to `nobody`, which cannot enter pytest's private temporary tree
    home = Path(tempfile.mkdtemp(prefix="pigeonhole-"))
    try:
        yield oracle.write_config(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_differential_script_agrees_with_pigeonhole(script: Path, conf: Path) -> None:
    disagreements = []
    for message in MESSAGES:
        theirs = oracle.pigeonhole(conf, script, message, conf.parent / "work")
        ours = oracle.ours(script, message)
        if theirs != ours:
            disagreements.append((message.stem, theirs, ours))
    if script.stem in KNOWN_DIFFERENCES:
        assert disagreements, f"{script.stem} agrees now: drop it from KNOWN_DIFFERENCES"
        return
    unexpected = [d for d in disagreements if (script.stem, d[0]) not in KNOWN_PAIRS]
    assert not unexpected, "\n".join(f"{m}: pigeonhole={t} ours={o}" for m, t, o in unexpected)


def test_differential_corpus_is_large() -> None:
    assert len(SCRIPTS) >= 60 and len(MESSAGES) >= 6


def test_differential_only_invalid_scripts_are_invalid() -> None:
    """A script written to exercise an extension must compile: one that both sides refuse
    (a missing `require`) agrees with Pigeonhole while testing nothing but the refusal."""
    wrong = []
    for script in SCRIPTS:
        refused = oracle.ours(script, MESSAGES[0])[0].startswith("invalid line")
        if refused != script.stem.startswith("invalid-"):
            wrong.append(script.stem)
    assert not wrong, f"refused without an invalid- name, or the other way round: {wrong}"
