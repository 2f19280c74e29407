"""`serve` started as root binds privileged ports, then drops to `[server] user`."""

from __future__ import annotations

import os
import pwd
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import MailwrightServer
from tests.support.workers import worker_pids

USER = "mailwright-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start as root and drop")


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("useradd not available to create the test user")
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", USER], check=True, capture_output=True)
        return pwd.getpwnam(USER)


def privileged_port() -> int:
    for _ in range(200):
        port = random.randrange(600, 1000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free privileged port")


@pytest.fixture
def traversable_python() -> Iterator[None]:
    """Let the unprivileged user reach the interpreter and this checkout while the test runs.

    On these machines Python lives under /root (mode 0700); a real installation lives in
    /usr. Directories on the way that lack search permission for others get it (o+x, no
    listing) for the test, and lose it again afterwards.
    """
    import sysconfig

    import mailwright

    targets = {Path(sys.prefix), Path(sys.base_prefix), Path(sysconfig.get_paths()["purelib"]),
               Path(mailwright.__file__).resolve().parent}
    targets |= {Path(p) for p in sys.path if p and Path(p).is_dir()}  # venvs see system ones
    changed: list[tuple[Path, int]] = []
    for target in targets:
        for d in [target, *target.parents]:
            mode = d.stat().st_mode
            if not mode & 0o001:
                d.chmod(mode | 0o001)
                changed.append((d, mode))
    try:
        yield
    finally:
        for d, mode in reversed(changed):
            d.chmod(mode & 0o7777)


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    # pytest's tmp_path lives under a 0700 root directory the dropped user cannot enter
    d = Path(tempfile.mkdtemp(prefix="mw-priv-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_privileges_bind_then_drop(world_readable_dir: Path, traversable_python: None,
                                   workers: int) -> None:
    pw = ensure_user()
    srv = MailwrightServer(world_readable_dir / "inst", workers=workers)
    srv.add_user("alice@example.test")
    port = privileged_port()
    srv.edit_config(f"port = {srv.port('smtp')}", f"port = {port}")
    srv.edit_config("[tls]", f'user = "{USER}"\n\n[tls]')  # the end of [server]
    srv.start()
    try:
        assert srv.proc is not None
        # with several workers: the supervisor dropped before forking them
        pids = [srv.proc.pid, *(worker_pids(srv.proc.pid) if workers > 1 else [])]
        assert len(pids) == (1 if workers == 1 else 1 + workers)
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            uids = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1:]
            assert uids == [str(pw.pw_uid)] * 4  # real, effective, saved, filesystem
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("x@sender.example", ["alice@example.test"],
                       b"Subject: after the drop\r\n\r\nstored by an unprivileged process\r\n")
    finally:
        assert srv.stop() == 0
    assert any(b"after the drop" in m for m in srv.mailbox("alice@example.test"))
    for root, dirs, files in os.walk(srv.dir / "data"):
        for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
            assert os.lstat(name).st_uid == pw.pw_uid, name


def test_privileges_unknown_user_is_a_config_error(tmp_path: Path) -> None:
    srv = MailwrightServer(tmp_path / "bad")
    srv.edit_config("[tls]", 'user = "no-such-user-here"\n\n[tls]')
    out = srv.cli("check", expect=2)
    assert out == ""
