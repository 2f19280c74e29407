"""Every POP3 core transcript, fed whole, byte by byte and at random splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.proto.pop3_transcript import TRANSCRIPT_DIR, Driver, bytewise, load, random_splits, whole

TRANSCRIPTS = sorted(TRANSCRIPT_DIR.glob("*.txt"))


def test_pop3_transcripts_exist() -> None:
    assert len(TRANSCRIPTS) >= 10


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_pop3_transcript_whole(path: Path) -> None:
    Driver(load(path), whole).run()


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_pop3_transcript_bytewise(path: Path) -> None:
    Driver(load(path), bytewise).run()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_pop3_transcript_random_splits(path: Path, seed: int) -> None:
    Driver(load(path), random_splits(seed)).run()
