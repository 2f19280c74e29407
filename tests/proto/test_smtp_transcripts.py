"""Every SMTP core transcript, fed whole, byte by byte and at random splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.proto.test_smtp_harness import (
    TRANSCRIPT_DIR,
    bytewise,
    check,
    load,
    random_splits,
    whole,
)

TRANSCRIPTS = sorted(TRANSCRIPT_DIR.glob("*.txt"))


def test_smtp_transcripts_exist() -> None:
    assert len(TRANSCRIPTS) >= 40


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_smtp_transcript_whole(path: Path) -> None:
    check(load(path), whole)


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_smtp_transcript_bytewise(path: Path) -> None:
    check(load(path), bytewise)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_smtp_transcript_random_splits(path: Path, seed: int) -> None:
    check(load(path), random_splits(seed))
