"""Real SpamAssassin (spamd) and rspamd processes on loopback, for the external-engine tests.

Both are Debian packages (scripts/test.sh installs them); a missing one fails the test that
needs it. Each runs from a private copy of its configuration with every network test off.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 300.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, "the engine exited during start-up"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"port {port} never opened")


@contextlib.contextmanager
def spamd(root: Path) -> Iterator[int]:
    binary = shutil.which("spamd") or "/usr/sbin/spamd"
    assert Path(binary).exists(), "spamd is missing: apt-get install spamassassin"
    # spamd's children run as nobody: the configuration must be readable outside pytest's
    # private (0700) temporary directories
    root = Path(tempfile.mkdtemp(prefix="mw-spamd-"))
    root.chmod(0o755)
    site = root / "sa-site"
    shutil.copytree("/etc/spamassassin", site)
    (site / "zz_test.cf").write_text("dns_available no\nskip_rbl_checks 1\nuse_bayes 0\n")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--siteconfigpath", str(site), "--listen", f"127.0.0.1:{port}",
         "--max-children", "1", "--min-children", "1", "--nouser-config", "-u", "nobody"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port, proc)
        wait_ping(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def wait_ping(port: int, proc: subprocess.Popen[bytes], deadline: float = 300.0) -> None:
    """spamd listens before its child is ready: PING (the SPAMC protocol) until one answers."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        assert proc.poll() is None, "spamd exited during start-up"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"PING SPAMC/1.5\r\n\r\n")
                if b"PONG" in s.recv(100):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("spamd never answered PING")


@contextlib.contextmanager
def rspamd(root: Path) -> Iterator[int]:
    binary = shutil.which("rspamd")
    assert binary is not None, "rspamd is missing: apt-get install rspamd"
    conf, run = root / "rspamd", root / "rspamd-run"
    shutil.copytree("/etc/rspamd", conf)
    run.mkdir()
    run.chmod(0o777)
    port, controller = free_port(), free_port()
    override = conf / "override.d"
    override.mkdir(exist_ok=True)
    (override / "worker-normal.inc").write_text(f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n')
    (override / "worker-controller.inc").write_text(
        f'bind_socket = "127.0.0.1:{controller}";\ncount = 1;\n'
    )
    (override / "worker-proxy.inc").write_text("enabled = false;\n")
    (override / "worker-fuzzy.inc").write_text("enabled = false;\n")
    (override / "options.inc").write_text(
        'dns { nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 1; }\n'
    )
    proc = subprocess.Popen(
        [binary, "-f", "-u", "_rspamd", "-g", "_rspamd", "-c", str(conf / "rspamd.conf"),
         "--insecure", f"--var=DBDIR={run}", f"--var=RUNDIR={run}", f"--var=LOGDIR={run}",
         f"--var=LOCAL_CONFDIR={conf}", f"--var=CONFDIR={conf}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)
