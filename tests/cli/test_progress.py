"""Long commands draw a progress bar on a terminal and print nothing extra when piped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.ptyrun import run_on_pty

MESSAGES = 300


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("progress")
    r = subprocess.run([sys.executable, "-m", "mailwright", "init", str(d / "i"), "--domain",
                        "example.test"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cfg = d / "i" / "mailwright.toml"
    for user in ("piped", "tty"):
        r = subprocess.run([sys.executable, "-m", "mailwright", "-c", str(cfg), "user", "add",
                            f"{user}@example.test", "--password-stdin"], input="pw\n",
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    md = d / "md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i in range(MESSAGES):
        (md / "cur" / f"{1000 + i}.m:2,S").write_bytes(b"Subject: %d\n\nbody %d\n" % (i, i))
    return cfg, md


def test_progress_piped_output_is_only_the_result_lines(inst: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, md = inst
    for args, want in (
        (("import", "maildir", str(md), "--user", "piped@example.test"),
         f"imported {MESSAGES} message(s) into 1 mailbox(es) of piped@example.test\n"),
        (("export", "mbox", str(tmp_path / "out"), "--user", "piped@example.test"),
         f"exported {MESSAGES} message(s) in 6 mailbox(es) of piped@example.test to {tmp_path / 'out'}\n"),
        (("check",), f"{cfg}: configuration and store OK\n"),
    ):
        r = subprocess.run([sys.executable, "-m", "mailwright", "-c", str(cfg), *args],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout == want
        assert r.stderr == ""


def test_progress_bar_on_a_terminal(inst: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, md = inst
    mw = [sys.executable, "-m", "mailwright", "-c", str(cfg)]
    code, shown = run_on_pty([*mw, "import", "maildir", str(md), "--user", "tty@example.test"])
    assert code == 0, shown
    assert b"import tty@example.test" in shown and b"100%" in shown
    assert f"{MESSAGES}/{MESSAGES}".encode() in shown
    assert f"imported {MESSAGES} message(s)".encode() in shown
    code, shown = run_on_pty([*mw, "export", "maildir", str(tmp_path / "o"), "--user",
                              "tty@example.test"])
    assert code == 0, shown
    assert b"export tty@example.test" in shown and f"{MESSAGES}/{MESSAGES}".encode() in shown
    code, shown = run_on_pty([*mw, "check"])
    assert code == 0, shown
    assert b"check: 100%" in shown and b"mailbox" in shown and b"store OK" in shown
