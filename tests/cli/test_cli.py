"""The operator commands, run as a subprocess exactly as an operator would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


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
    return d / "mailwright.toml"


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
