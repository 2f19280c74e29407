"""Coverage-guided fuzzing of the protocol cores and the MIME parser with atheris (libFuzzer).

Not part of the test suite (atheris is not a project dependency). To run one target:

    pip install atheris
    python -m tests.fuzz.atheris_fuzz smtp -max_total_time=300 /tmp/fuzz-smtp

Targets: smtp, imap, pop3, mime, proxy, smtpclient (tests/fuzz/fuzz_targets.py). Any other argument goes to
libFuzzer (-jobs=N -workers=N for several cores). A crashing input is written as
`crash-<sha1>`: copy it to tests/fuzz/corpus/<target>/ and tests/fuzz/test_corpus_regressions.py
replays it from then on. See docs/robustness.md.
"""

from __future__ import annotations

import sys


def main() -> None:
    import atheris  # type: ignore[import-not-found]

    if len(sys.argv) < 2 or sys.argv[1] not in ("smtp", "imap", "pop3", "mime", "proxy", "smtpclient"):
        sys.exit(__doc__)
    name = sys.argv.pop(1)
    with atheris.instrument_imports(include=["mailwright"]):
        from tests.fuzz.fuzz_targets import TARGETS
    target = TARGETS[name]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
