"""`mailwright import imap`: an account copied from a live IMAP server, every folder, flag,
keyword and internal date, from a real Dovecot on loopback and from Mailwright itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_migrate import SOURCE, make_maildir, snapshot
from tests.support.server import PASSWORD, MailwrightServer

NOBODY = 65534


def mw(cfg: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwright", "-c", str(cfg), *args],
        input=stdin, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, **(env or {})),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_config(d: Path, port: int) -> str:
    return f"""base_dir = {d}/run
state_dir = {d}/state
instance_name = mw-import-test-{os.getpid()}
protocols = imap
listen = 127.0.0.1
log_path = {d}/dovecot.log
auth_verbose = yes
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = .
  mailbox "Sent Items" {{
    special_use = \\Sent
  }}
}}
first_valid_uid = {NOBODY}
last_valid_uid = {NOBODY}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@pytest.fixture
def dovecot_maildir() -> Iterator[tuple[int, Path]]:
    """Dovecot serving a Maildir made like the one the file-import tests use."""
    assert shutil.which("dovecot"), "dovecot is not installed (scripts/test.sh installs dovecot-imapd)"
    assert os.geteuid() == 0, "running Dovecot as another user needs root"
    d = Path(tempfile.mkdtemp(prefix="mw-import-dovecot-"))
    d.chmod(0o755)
    try:
        for sub in ("run", "state"):
            (d / sub).mkdir()
        maildir = d / "home" / "Maildir"
        make_maildir(maildir)
        # NUL is not allowed in an IMAP literal (RFC 9051 4.3): Dovecot and Mailwright send
        # 0x80 instead, so a message with NULs moves only by file import; leave it out
        for f in maildir.rglob("1004.e*"):
            f.unlink()
        # a mailbox with the \Sent special use (RFC 6154) under another name
        for sub in ("cur", "new", "tmp"):
            (maildir / ".Sent Items" / sub).mkdir(parents=True)
        (maildir / ".Sent Items" / "cur" / "1009.i:2,S").write_bytes(b"Subject: sent items\n\nx\n")
        os.utime(maildir / ".Sent Items" / "cur" / "1009.i:2,S", (1_700_001_009, 1_700_001_009))
        for dirpath, _dirs, files in os.walk(d / "home"):
            os.chown(dirpath, NOBODY, NOBODY)
            for name in files:
                os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
        (d / "users").write_text(f"bob:{{PLAIN}}{PASSWORD}:{NOBODY}:{NOBODY}::{d / 'home'}::\n")
        # Dovecot's auth process (user dovecot) reads it: readable whatever the umask, which
        # an earlier test that ran Mailwright's CLI in this process has tightened to 027
        # (restrict_umask), so the file would depend on which tests ran before
        (d / "users").chmod(0o644)
        port = free_port()
        (d / "dovecot.conf").write_text(dovecot_config(d, port))
        proc = subprocess.Popen(["dovecot", "-F", "-c", str(d / "dovecot.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    log = d / "dovecot.log"
                    assert proc.poll() is None, "Dovecot did not start: " + (
                        log.read_text()[-800:] if log.exists() else "")
                    time.sleep(0.05)
            else:
                raise AssertionError("Dovecot never listened on its port")
            yield port, maildir
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.interop
def test_import_imap_from_dovecot_keeps_folders_flags_keywords_dates(
    dovecot_maildir: tuple[int, Path], tmp_path: Path
) -> None:
    port, maildir = dovecot_maildir
    mw_inst = MailwrightServer(tmp_path / "mw")
    mw_inst.add_user("alice@example.test")
    mw_inst.add_user("ref@example.test")
    # the reference: the same Maildir imported from its files
    plain = tmp_path / "plain"
    shutil.copytree(maildir, plain)
    r = mw(mw_inst.cfg, "import", "maildir", str(plain), "--user", "ref@example.test")
    assert r.returncode == 0, r.stderr

    args = ("import", "imap", "127.0.0.1", "--port", str(port), "--tls", "none",
            "--user", "alice@example.test", "--login", "bob", "--password-stdin")
    dovecot_log = maildir.parent.parent / "dovecot.log"

    def failure(r: subprocess.CompletedProcess[str]) -> str:
        """Our stderr and Dovecot's side of the story, for a run that should have passed."""
        log = dovecot_log.read_text(errors="replace")[-3000:] if dovecot_log.exists() else ""
        return f"rc={r.returncode}\nstderr:\n{r.stderr}\ndovecot.log:\n{log}"

    r = mw(mw_inst.cfg, *args, stdin=PASSWORD + "\n")
    assert r.returncode == 0, failure(r)
    assert "imported 8 message(s)" in r.stdout, r.stdout
    got = snapshot(mw_inst.cfg, "alice@example.test")
    want = snapshot(mw_inst.cfg, "ref@example.test")
    # Dovecot's Maildir has no flag for the letter P; everything else is the same
    want = {box: [(b, tuple(f for f in fl if f != "$Forwarded"), t) for b, fl, t in msgs]
            for box, msgs in want.items()}
    # the source's \Sent mailbox "Sent Items" lands in our \Sent mailbox
    assert "Sent Items" not in got
    assert sorted(got.pop("Sent")) == sorted(want.pop("Sent") + want.pop("Sent Items"))
    assert {"INBOX", "Work/Projects", "Entwürfe", "Empty"} <= set(got)
    assert got == want

    # running it again adds nothing
    r = mw(mw_inst.cfg, *args, stdin=PASSWORD + "\n")
    assert r.returncode == 0, failure(r)
    assert "imported 0 message(s)" in r.stdout and "8 already there" in r.stdout
    assert "Sent Items" not in snapshot(mw_inst.cfg, "alice@example.test")

    # no password anywhere: a usage error, not a hang on a prompt
    r = mw(mw_inst.cfg, *args[:-1], env={"MAILWRIGHT_IMAP_PASSWORD": ""})
    assert r.returncode == 2 and "--password-stdin" in r.stderr
    r = mw(mw_inst.cfg, *args[:-1], "--exclude", "Sent",
           env={"MAILWRIGHT_IMAP_PASSWORD": "wrong"})
    assert r.returncode == 1 and "Traceback" not in r.stderr


@pytest.mark.interop
def test_import_imap_from_mailwright_over_tls_is_exact(tmp_path: Path) -> None:
    source = MailwrightServer(tmp_path / "src")
    source.add_user("old@example.test")
    md = tmp_path / "md"
    make_maildir(md)
    for f in md.rglob("1004.e*"):
        f.unlink()  # NUL bytes: IMAP servers send 0x80 instead (RFC 9051 4.3), see above
    r = mw(source.cfg, "import", "maildir", str(md), "--user", "old@example.test")
    assert r.returncode == 0, r.stderr
    target = MailwrightServer(tmp_path / "dst")
    target.add_user("new@example.test")
    with source:
        base = ("import", "imap", "127.0.0.1", "--user", "new@example.test",
                "--login", "old@example.test")
        env = {"MAILWRIGHT_IMAP_PASSWORD": PASSWORD}
        # the self-signed certificate is refused unless trusted
        r = mw(target.cfg, *base, "--port", str(source.port("imaps")), env=env)
        assert r.returncode == 1 and "certificate" in r.stderr.lower()
        cert = str(source.dir / "tls" / "cert.pem")
        r = mw(target.cfg, *base, "--port", str(source.port("imaps")), "--ca-file", cert, env=env)
        assert r.returncode == 0, r.stderr
        assert f"imported {len(SOURCE) - 2} message(s)" in r.stdout
        r = mw(target.cfg, *base, "--port", str(source.port("imap")), "--tls", "starttls",
               "--insecure", env=env)
        assert r.returncode == 0, r.stderr
        assert "imported 0 message(s)" in r.stdout
    assert snapshot(target.cfg, "new@example.test") == snapshot(source.cfg, "old@example.test")
