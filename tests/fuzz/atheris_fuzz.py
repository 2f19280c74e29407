#!/usr/bin/env python3
"""Coverage-guided fuzzing of the protocol cores and the MIME parser with atheris (libFuzzer).

Not part of the test suite (atheris is not a project dependency). To run one target:

    pip install atheris
    python -m tests.fuzz.atheris_fuzz smtp -max_total_time=300 /tmp/fuzz-smtp
    python -m tests.fuzz.atheris_fuzz imap -jobs=2 -workers=2 -max_total_time=300 /tmp/fuzz-imap

Targets: smtp, imap, pop3, mime, proxy, smtpclient, sieve, managesieve
(tests/fuzz/fuzz_targets.py). Any other
argument goes to libFuzzer. A crashing input is written as `crash-<sha1>`: copy it to
tests/fuzz/corpus/<target>/ and tests/fuzz/test_corpus_regressions.py replays it from then on.
See docs/reliability.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TARGET_NAMES = ("smtp", "imap", "pop3", "mime", "proxy", "smtpclient", "sieve", "managesieve")


def main() -> None:
    import atheris  # type: ignore[import-not-found]

    # libFuzzer's -jobs runs this file again as a program, without the target argument: the
    # repository root and the target travel in the environment.
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    if len(sys.argv) > 1 and sys.argv[1] in TARGET_NAMES:
        os.environ["MAILWRIGHT_FUZZ_TARGET"] = sys.argv.pop(1)
    name = os.environ.get("MAILWRIGHT_FUZZ_TARGET", "")
    if name not in TARGET_NAMES:
        sys.exit(__doc__)
    with atheris.instrument_imports(include=["mailwright"]):
        from tests.fuzz.fuzz_targets import TARGETS
    atheris.Setup(sys.argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
