"""Replays every input kept in tests/fuzz/corpus/<target>/ (crashes the atheris runs found,
and seeds) through the same target functions the fuzzer ran (tests/fuzz/fuzz_targets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fuzz_targets import TARGETS

CORPUS = Path(__file__).with_name("corpus")
CASES = sorted(p for p in CORPUS.glob("*/*") if p.is_file() and p.parent.name in TARGETS)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_corpus_regressions_replay(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())


def test_corpus_regressions_every_target_has_cases() -> None:
    assert {p.parent.name for p in CASES} == set(TARGETS)
