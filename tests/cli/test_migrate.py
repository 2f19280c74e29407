"""Maildir and mbox import/export, including malformed messages that must not be lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS


def mw(cfg: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwright", "-c", str(cfg), *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def inst(tmp_path: Path) -> Path:
    r = subprocess.run(
        [sys.executable, "-m", "mailwright", "init", str(tmp_path / "i"), "--domain", "example.test"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    cfg = tmp_path / "i" / "mailwright.toml"
    assert mw(cfg, "user", "add", "alice@example.test", "--password-stdin", stdin="pw\n").returncode == 0
    return cfg


def make_maildir(root: Path) -> dict[str, bytes]:
    msgs = {
        "cur/1.a:2,S": b"From: a@x.test\nSubject: seen\n\nhello\n",
        "new/2.b": b"From: b@x.test\r\nSubject: new\r\n\r\nworld\r\n",
        "cur/3.c:2,": b"\x00\x01garbage without any header\n",  # malformed, must still import
        ".Work/cur/4.d:2,FR": b"Subject: in a folder\n\nbody\n",
    }
    for sub in ("cur", "new", "tmp", ".Work/cur", ".Work/new", ".Work/tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, data in msgs.items():
        (root / name).write_bytes(data)
    return msgs


def test_migrate_maildir_import_export_roundtrip(inst: Path, tmp_path: Path) -> None:
    src = tmp_path / "Maildir"
    msgs = make_maildir(src)
    r = mw(inst, "import", "maildir", str(src), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert "imported 4 message(s)" in r.stdout
    assert "3.c" in r.stderr and "warning" in r.stderr
    assert mw(inst, "check").returncode == 0
    out = tmp_path / "out"
    r = mw(inst, "export", "maildir", str(out), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    exported = sorted(p.read_bytes() for p in out.rglob("cur/*"))
    expected = sorted(d.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for d in msgs.values())
    assert exported == expected
    names = [p.name for p in (out / "cur").iterdir()]
    assert any(n.endswith(":2,S") for n in names)
    assert [p.name.endswith(":2,FR") for p in (out / ".Work" / "cur").iterdir()] == [True]


def test_migrate_mbox_import(inst: Path, tmp_path: Path) -> None:
    box = tmp_path / "in.mbox"
    box.write_bytes(
        b"From a@x.test Thu Jan  1 00:00:00 2026\nSubject: one\n\n>From quoted line\n\n"
        b"From b@x.test Thu Jan  1 00:00:00 2026\nSubject: two\n\nbody\n"
    )
    r = mw(inst, "import", "mbox", str(box), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert "imported 2 message(s)" in r.stdout
    r = mw(inst, "export", "mbox", str(tmp_path / "out.mbox"), "--user", "alice@example.test")
    assert r.returncode == 0
    assert (tmp_path / "out.mbox").read_bytes().count(b"\nFrom ") + 1 >= 2


def test_migrate_errors(inst: Path, tmp_path: Path) -> None:
    r = mw(inst, "import", "maildir", str(tmp_path / "missing"), "--user", "alice@example.test")
    assert r.returncode == 2 and "no such file" in r.stderr
    (tmp_path / "notmd").mkdir()
    r = mw(inst, "import", "maildir", str(tmp_path / "notmd"), "--user", "alice@example.test")
    assert r.returncode == 2 and "not a Maildir" in r.stderr
    src = tmp_path / "md"
    make_maildir(src)
    r = mw(inst, "import", "maildir", str(src), "--user", "nobody@example.test")
    assert r.returncode == 1 and "no such user" in r.stderr


def test_migrate_corpus_import_is_lossless(inst: Path, tmp_path: Path) -> None:
    msgs = CORPUS / "messages"
    if not msgs.is_dir():
        pytest.skip(f"corpus not found at {msgs} (set MAILWRIGHT_CORPUS)")
    md = tmp_path / "corpus-md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    files = sorted(msgs.glob("*.eml"))
    for i, f in enumerate(files):
        (md / "cur" / f"{i:04d}.corpus:2,S").write_bytes(f.read_bytes())
    r = mw(inst, "import", "maildir", str(md), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert f"imported {len(files)} message(s)" in r.stdout
    out = tmp_path / "out"
    assert mw(inst, "export", "maildir", str(out), "--user", "alice@example.test").returncode == 0
    got = sorted(p.read_bytes() for p in (out / "cur").iterdir())
    import re

    want = sorted(re.sub(rb"(?<!\r)\n", b"\r\n", f.read_bytes()) for f in files)
    assert got == want
