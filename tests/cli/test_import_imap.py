"""`mailwright import imap`: an account copied from a live IMAP server, every folder, flag,
keyword and internal date, from a real Dovecot on loopback and from Mailwright itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_migrate import SOURCE, make_maildir, snapshot
from tests.support.dovecot import DEFAULT_PASSWORD, Dovecot, private_dovecot
from tests.support.server import PASSWORD, MailwrightServer


def mw(cfg: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwright", "-c", str(cfg), *args],
        input=stdin, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, **(env or {})),
    )


@pytest.fixture
def dovecot_maildir() -> Iterator[tuple[int, Path, Dovecot]]:
    """Dovecot serving bob a Maildir made like the one the file-import tests use."""

    def prepare(homes: Path) -> None:
        maildir = homes / "bob" / "Maildir"
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

    namespace = '  separator = .\n  mailbox "Sent Items" {\n    special_use = \\Sent\n  }\n'
    with private_dovecot(prepare=prepare, namespace=namespace) as dovecot:
        yield dovecot.port, dovecot.home("bob") / "Maildir", dovecot


@pytest.mark.interop
def test_import_imap_from_dovecot_keeps_folders_flags_keywords_dates(
    dovecot_maildir: tuple[int, Path, Dovecot], tmp_path: Path
) -> None:
    port, maildir, dovecot = dovecot_maildir
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

    def failure(r: subprocess.CompletedProcess[str]) -> str:
        """Our stderr and Dovecot's side of the story, for a run that should have passed."""
        log = dovecot.log()[-3000:]
        return f"rc={r.returncode}\nstderr:\n{r.stderr}\ndovecot.log:\n{log}"

    r = mw(mw_inst.cfg, *args, stdin=DEFAULT_PASSWORD + "\n")
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
    r = mw(mw_inst.cfg, *args, stdin=DEFAULT_PASSWORD + "\n")
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
