"""The operator commands, run as a subprocess exactly as an operator would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.ptyrun import run_on_pty
from tests.support.server import CHEAP_PASSWORDS


def mw(cfg: Path | None, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mailwright"]
    if cfg is not None:
        cmd += ["-c", str(cfg)]
    return subprocess.run(cmd + list(args), input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("inst")
    r = mw(None, "init", str(d), "--domain", "example.test", "--port-base", "30000")
    assert r.returncode == 0, r.stderr
    cfg = d / "mailwright.toml"
    with cfg.open("a") as f:
        f.write(CHEAP_PASSWORDS)  # cheap argon2id: these tests are about the commands
    return cfg


def test_cli_help_lists_every_subcommand() -> None:
    r = mw(None, "--help")
    assert r.returncode == 0
    for sub in ("init", "serve", "check", "domain", "user", "alias", "queue", "dkim",
                "dns-records", "import", "export"):
        assert sub in r.stdout


def test_cli_init_writes_config_cert_and_refuses_overwrite(inst: Path) -> None:
    d = inst.parent
    assert (d / "tls" / "cert.pem").exists() and (d / "tls" / "key.pem").exists()
    assert (d / "data").is_dir()
    text = inst.read_text()
    assert "port = 30025" in text and "port = 30993" in text
    r = mw(None, "init", str(d), "--domain", "example.test")
    assert r.returncode == 1 and "--force" in r.stderr
    assert mw(inst, "check").returncode == 0
    assert "example.test" in mw(inst, "domain", "list").stdout


def test_cli_users_and_errors(inst: Path) -> None:
    r = mw(inst, "user", "add", "carol@example.test", "--password-stdin", stdin="pw\n")
    assert r.returncode == 0, r.stderr
    r = mw(inst, "user", "add", "carol@example.test", "--password-stdin", stdin="pw\n")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = mw(inst, "user", "add", "dave@unknown.test", "--password-stdin", stdin="pw\n")
    assert r.returncode == 1 and "unknown domain" in r.stderr
    r = mw(inst, "user", "add", "not an address", "--password-stdin", stdin="pw\n")
    assert r.returncode == 2 and "invalid address" in r.stderr
    r = mw(inst, "user", "add", "erin@example.test", "--password-stdin", stdin="\n")
    assert r.returncode == 2
    assert "carol@example.test" in mw(inst, "user", "list").stdout
    # the domain's first user receives postmaster mail (RFC 5321 4.5.1)
    assert "postmaster@example.test -> carol@example.test" in mw(inst, "alias", "list").stdout
    assert mw(inst, "user", "passwd", "carol@example.test", "--password-stdin", stdin="new\n").returncode == 0
    assert mw(inst, "user", "passwd", "zed@example.test", "--password-stdin", stdin="x\n").returncode == 1
    assert mw(inst, "user", "set", "carol@example.test", "--pop3-keep", "yes").returncode == 0
    # RFC 9208 QUOTA=RES-MESSAGE: the limit on the number of messages
    assert mw(inst, "user", "set", "carol@example.test", "--quota-messages", "100").returncode == 0
    assert mw(inst, "user", "del", "carol@example.test").returncode == 0
    assert "carol@" not in mw(inst, "user", "list").stdout
    for r in (mw(inst, "user"), mw(inst, "bogus")):
        assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_aliases_and_domains(inst: Path) -> None:
    mw(inst, "user", "add", "frank@example.test", "--password-stdin", stdin="pw\n")
    assert mw(inst, "alias", "add", "sales@example.test", "frank@example.test").returncode == 0
    assert mw(inst, "alias", "add", "@example.test", "frank@example.test").returncode == 0
    out = mw(inst, "alias", "list").stdout
    assert "sales@example.test -> frank@example.test" in out and "@example.test ->" in out
    r = mw(inst, "alias", "add", "x@nowhere.test", "frank@example.test")
    assert r.returncode == 1
    assert mw(inst, "alias", "del", "sales@example.test").returncode == 0
    assert mw(inst, "domain", "add", "other.test").returncode == 0
    assert mw(inst, "domain", "add", "bad_domain!").returncode == 2
    r = mw(inst, "domain", "del", "example.test")
    assert r.returncode == 1 and "account" in r.stderr
    assert mw(inst, "domain", "del", "other.test").returncode == 0


def _deliver_one(cfg: Path, user: str, tmp: Path) -> None:
    md = tmp / f"md-{user}"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1.x:2,S").write_bytes(b"Subject: keep me\n\nbody\n")
    r = mw(cfg, "import", "maildir", str(md), "--user", user)
    assert r.returncode == 0, r.stderr


def test_cli_user_add_without_terminal_names_password_stdin(inst: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "mailwright", "-c", str(inst), "user", "add",
                        "nopw@example.test"], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "--password-stdin" in r.stderr and "Traceback" not in r.stderr
    assert "nopw@" not in mw(inst, "user", "list").stdout


def test_cli_user_add_prompts_on_a_terminal(inst: Path) -> None:
    code, shown = run_on_pty(
        [sys.executable, "-m", "mailwright", "-c", str(inst), "user", "add", "tty@example.test"],
        [(b"Password: ", b"s3cret\n"), (b"Again: ", b"s3cret\n")])
    assert code == 0, shown
    assert "tty@example.test" in mw(inst, "user", "list").stdout


def test_cli_user_del_with_mail_needs_force_and_rewires_aliases(tmp_path: Path) -> None:
    d = tmp_path / "i"
    assert mw(None, "init", str(d), "--domain", "del.test").returncode == 0
    cfg = d / "mailwright.toml"
    for u in ("first", "other"):
        assert mw(cfg, "user", "add", f"{u}@del.test", "--password-stdin", stdin="pw\n").returncode == 0
    assert mw(cfg, "alias", "add", "team@del.test", "first@del.test", "other@del.test").returncode == 0
    _deliver_one(cfg, "first@del.test", tmp_path)
    # piped: refuses, names --force, keeps the mail
    r = mw(cfg, "user", "del", "first@del.test")
    assert r.returncode == 1 and "--force" in r.stderr and "1 message" in r.stderr
    assert "first@del.test" in mw(cfg, "user", "list").stdout
    # on a terminal: asks; "n" keeps it
    code, shown = run_on_pty([sys.executable, "-m", "mailwright", "-c", str(cfg), "user", "del",
                              "first@del.test"], [(b"[y/N]", b"n\n")])
    assert code == 1 and b"Delete the account" in shown
    r = mw(cfg, "user", "del", "first@del.test", "--force")
    assert r.returncode == 0, r.stderr
    assert "deleted user first@del.test and 1 message(s)" in r.stdout
    # postmaster pointed only to it: removed, with a warning; team keeps its other member
    assert "alias postmaster@del.test removed" in r.stdout and "RFC 5321 4.5.1" in r.stdout
    aliases = mw(cfg, "alias", "list").stdout
    assert "team@del.test -> other@del.test\n" in aliases and "postmaster@" not in aliases
    assert mw(cfg, "check").returncode == 0
    # an account without mail goes without asking
    assert mw(cfg, "user", "del", "other@del.test").returncode == 0


def test_cli_check_reports_dangling_aliases(tmp_path: Path) -> None:
    d = tmp_path / "i"
    assert mw(None, "init", str(d), "--domain", "dangle.test").returncode == 0
    cfg = d / "mailwright.toml"
    assert mw(cfg, "user", "add", "a@dangle.test", "--password-stdin", stdin="pw\n").returncode == 0
    assert mw(cfg, "check").returncode == 0
    assert mw(cfg, "alias", "add", "ghost@dangle.test", "nobody@dangle.test",
              "a@dangle.test", "friend@remote.example").returncode == 0
    r = mw(cfg, "check")
    assert r.returncode == 1
    assert r.stdout.strip().splitlines() == [
        "alias ghost@dangle.test: target nobody@dangle.test has no account (mail to it would bounce)"]
