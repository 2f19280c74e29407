"""`python -m bench.spam` runs end to end (on a small corpus of our own messages), and on the
shared corpus, when it is there, classifies every file in bounded time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench.spam import clean, default_corpus

from mailwright.spam.classifier import analyse

from .messages import ham, spam

ROOT = Path(__file__).resolve().parents[2]


def test_spam_bench_runs_on_a_small_corpus(tmp_path: Path) -> None:
    for label, make in (("ham", ham), ("spam", spam)):
        (tmp_path / label).mkdir()
        for i in range(24):
            (tmp_path / label / f"{i}.eml").write_bytes(make(i).replace(b"\r\n", b"\n"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    cp = subprocess.run([sys.executable, "-m", "bench.spam", "--corpus", str(tmp_path),
                         "--engines", "mailwright"], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    (row,) = [line for line in cp.stdout.splitlines() if line.startswith("| mailwright")]
    assert "(0/12)" in row and "(12/12)" in row, row


def test_spam_bench_user_feedback_rows(tmp_path: Path) -> None:
    # the flow of the test half with a user correcting mistakes (and sorting everything): extra
    # rows, the plain row unchanged
    for label, make in (("ham", ham), ("spam", spam)):
        (tmp_path / label).mkdir()
        for i in range(24):
            (tmp_path / label / f"{i}.eml").write_bytes(make(i).replace(b"\r\n", b"\n"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    cp = subprocess.run([sys.executable, "-m", "bench.spam", "--corpus", str(tmp_path), "--hard-ham", "0",
                         "--engines", "mailwright", "--feedback", "errors,all"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    rows = [line for line in cp.stdout.splitlines() if line.startswith("| mailwright")]
    assert len(rows) == 3, cp.stdout
    assert "user feedback (errors)" in rows[1] and "0 lessons from the test flow" in rows[1]
    assert "user feedback (all)" in rows[2] and "24 lessons from the test flow" in rows[2]
    assert all("(0/12)" in row and "(12/12)" in row for row in rows), rows


def test_spam_bench_strips_collection_headers() -> None:
    raw = (b"From someone  Thu Aug 22 12:36:23 2002\nReturn-Path: <a@b>\nDelivered-To: z@localhost\n"
           b"Received: from phobos [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0)\n"
           b"Received: from mx.sender.example by relay.example\nX-Spam-Status: No\n"
           b"Subject: hi\n\nbody\n")  # fmt: skip
    assert clean(raw) == (b"Received: from mx.sender.example by relay.example\r\n"
                          b"Subject: hi\r\n\r\nbody\r\n")  # fmt: skip


def test_spam_corpus_every_file_within_bounds() -> None:
    corpus = default_corpus()
    if not (corpus / "ham").is_dir():
        pytest.skip(f"no spam corpus at {corpus} (shared/corpus-spam): extra coverage only")
    files = sorted((corpus / "ham").iterdir()) + sorted((corpus / "spam").iterdir())
    for path in files:
        started = time.process_time()
        analysis = analyse(clean(path.read_bytes()), 512 * 1024)
        assert time.process_time() - started < 5, path.name
        assert analysis.tokens, path.name


def test_spam_bench_hard_ham_is_deterministic_and_varied() -> None:
    from bench.hardham import KINDS, hard_ham

    first = list(hard_ham(36))
    assert first == list(hard_ham(36))  # the same seed, the same messages
    assert len({name.split("-", 2)[2] for name, _ in first}) == len(KINDS)
    for _, raw in first:
        assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
        assert b"List-Unsubscribe: <https://" in raw and b".example" in raw


def test_spam_validate_grid_of_robinson_parameters(tmp_path: Path) -> None:
    """`python -m bench.spam_validate` tries every combination of the values it is given (one
    line each, naming them), on slices of the training half of a small corpus of our own."""
    for label, make in (("ham", ham), ("spam", spam)):
        (tmp_path / label).mkdir()
        for i in range(24):
            (tmp_path / label / f"{i}.eml").write_bytes(make(i).replace(b"\r\n", b"\n"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    cp = subprocess.run([sys.executable, "-m", "bench.spam_validate", "--corpus", str(tmp_path),
                         "--strength", "0.45,1", "--unknown", "0.5,0.6"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert len(lines) == 4, lines
    for s, x in (("0.45", "0.5"), ("0.45", "0.6"), ("1.0", "0.5"), ("1.0", "0.6")):
        named = [line for line in lines if f" s {s} x {x} |" in line]
        assert len(named) == 1 and "latest-quarter:" in named[0], (s, x, lines)
