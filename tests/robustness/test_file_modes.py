"""Nothing under the server's directory is readable by other users, whatever the umask.

Everything goes through the real CLI in subprocesses started with umask 022 (the usual shell
default): `init`, `user add`, `import maildir`, then `serve` and a real SMTP delivery. Before,
the database (password hashes), every blob and the configuration were mode 0644.
"""

from __future__ import annotations

import os
import smtplib
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import MailwrightServer, free_port_base

USER = "alice@example.test"


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwright", *args], input=stdin, capture_output=True, text=True,
        timeout=120, preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # `serve` below inherits it
    try:
        yield
    finally:
        os.umask(previous)


def _walk(root: Path) -> list[tuple[str, int]]:
    """Everything under `root`, not `root` itself: the folder `init` made holds only the
    names mailwright.toml, tls and data, and stays passable (0755, as /etc/postfix) for the
    user a root-started server drops to."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out.append((str(path), stat.S_IMODE(path.lstat().st_mode)))
    return out


def test_file_modes_closed_to_other_users_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    root = tmp_path / "mw"
    cfg = root / "mailwright.toml"
    base = free_port_base()
    done = _cli("init", str(root), "--domain", "example.test", "--port-base", str(base))
    assert done.returncode == 0, done.stderr
    done = _cli("user", "add", USER, "--password-stdin", "-c", str(cfg), stdin="pw\n")
    assert done.returncode == 0, done.stderr
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1.host:2,S").write_bytes(b"Subject: imported\r\n\r\nold mail\r\n")
    done = _cli("import", "maildir", str(maildir), "--user", USER, "-c", str(cfg))
    assert done.returncode == 0, done.stderr

    srv = MailwrightServer(root, init=False, port_base=base)
    srv.start()
    try:
        body = f"From: <x@remote.test>\r\nTo: <{USER}>\r\nSubject: delivered\r\n\r\nhello\r\n"
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as smtp:
            assert smtp.sendmail("x@remote.test", [USER], body.encode()) == {}
        blobs = [p for p in (root / "data" / "blobs").rglob("*") if p.is_file()]
        assert len(blobs) >= 2  # the imported message and the delivered one
        open_now = [(p, oct(m)) for p, m in _walk(root) if m & 0o007]
        assert not open_now, open_now  # while serving: database WAL and SHM included
    finally:
        srv.stop()

    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    modes = _walk(root)
    assert any(p.endswith("mailwright.db") for p, _ in modes)
    assert any(p.endswith("key.pem") for p, _ in modes)
    exposed = [(p, oct(m)) for p, m in modes if m & 0o007]
    assert not exposed, exposed

    done = _cli("check", "-c", str(cfg))
    assert done.returncode == 0, done.stdout + done.stderr
    # `check` names anything an operator (or an older version) left open to other users
    blobs[0].chmod(0o644)
    (root / "data").chmod(0o755)
    done = _cli("check", "-c", str(cfg))
    assert done.returncode == 1
    assert str(blobs[0]) in done.stdout and "0644" in done.stdout, done.stdout
    assert str(root / "data") + ":" in done.stdout, done.stdout
