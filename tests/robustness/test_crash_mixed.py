"""SIGKILL `mailwright serve` at random moments under a mixed load and check every promise
(tests/robustness/mixedload.py). A few rounds here; bench/crash_soak.py runs many."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .mixedload import MixedCrashWorld

pytestmark = pytest.mark.slow


def test_crash_mixed_load_sigkill_rounds(tmp_path: Path) -> None:
    rounds = int(os.environ.get("MAILWRIGHT_MIXED_CRASH_ROUNDS", "3"))
    world = MixedCrashWorld(tmp_path, seed=int(os.environ.get("MAILWRIGHT_CRASH_SEED", "7")))
    try:
        for _ in range(rounds):
            world.run_round(min_acks=10, max_load=1.5)
        stats = world.finish()
    finally:
        world.close()
    print(f"mixed crash: {stats}")
    assert stats.kills == rounds
    for kind in ("smtp-mx", "submission", "imap-append"):
        assert stats.acked[kind] > 0, stats.acked
    assert stats.checked_messages > 0
