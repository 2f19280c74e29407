"""`mailwright sieve put|activate|list|del|get|check` (operator contract), in-process."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from mailwright.cli.main import main


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    import sys

    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    assert run("init", str(tmp_path / "srv"), "--domain", "example.test")[0] == 0
    path = str(tmp_path / "srv" / "mailwright.toml")
    assert run("user", "add", "bob@example.test", "--password-stdin", "-c", path,
               stdin="pw\n")[0] == 0
    return path


def test_sieve_cli_put_refuses_invalid_script_with_line(cfg: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sieve"
    bad.write_text('require "fileinto";\nif header :is "subject" "x" {\n  fileinto "y";\n')
    code, _out, err = run("sieve", "put", "bob@example.test", "main", str(bad), "-c", cfg)
    assert code == 1
    assert "line 4: missing '}' for the block opened at line 2" in err
    assert "Traceback" not in err
    assert run("sieve", "list", "bob@example.test", "-c", cfg)[1] == ""


def test_sieve_cli_put_activate_list_get_del(cfg: str, tmp_path: Path) -> None:
    good = tmp_path / "good.sieve"
    good.write_text('require "fileinto";\nfileinto "Archive";\n')
    assert run("sieve", "put", "bob@example.test", "main", str(good), "-c", cfg)[0] == 0
    assert run("sieve", "put", "bob@example.test", "other", "-", "-c", cfg, stdin="keep;\n")[0] == 0
    assert run("sieve", "activate", "bob@example.test", "main", "-c", cfg)[0] == 0
    code, out, _ = run("sieve", "list", "bob@example.test", "-c", cfg)
    assert code == 0 and out.splitlines() == [f"main ACTIVE {len(good.read_bytes())}", "other 6"]
    assert run("sieve", "get", "bob@example.test", "main", "-c", cfg)[1] == good.read_text()
    code, _, err = run("sieve", "del", "bob@example.test", "main", "-c", cfg)
    assert code == 1 and "active" in err
    assert run("sieve", "del", "bob@example.test", "other", "-c", cfg)[0] == 0
    code, _, err = run("sieve", "activate", "bob@example.test", "nope", "-c", cfg)
    assert code == 1 and "no script 'nope'" in err
    code, _, err = run("sieve", "list", "nobody@example.test", "-c", cfg)
    assert code == 1 and "no account" in err


def test_sieve_cli_check(tmp_path: Path) -> None:
    f = tmp_path / "x.sieve"
    f.write_text("keep;\n")
    assert run("sieve", "check", str(f))[0] == 0
    f.write_text("keep;\nfrobnicate;\n")
    code, _, err = run("sieve", "check", str(f))
    assert code == 1 and "line 2: unknown command 'frobnicate'" in err


def test_sieve_cli_init_writes_managesieve_listener(tmp_path: Path) -> None:
    assert run("init", str(tmp_path / "s"), "--domain", "example.test", "--port-base", "10000")[0] == 0
    text = (tmp_path / "s" / "mailwright.toml").read_text()
    assert 'protocol = "managesieve"' in text and "port = 14190" in text


def test_sieve_cli_check_reports_a_broken_global_script(cfg: str, tmp_path: Path) -> None:
    before = tmp_path / "before.sieve"
    before.write_text('require "fileinto";\nfileinto "Junk"\n')
    text = Path(cfg).read_text()
    Path(cfg).write_text(text.replace("[storage]", f'[sieve]\nbefore = "{before}"\n\n[storage]'))
    code, out, _ = run("check", "-c", cfg)
    assert code == 1 and f"sieve.before: {before}: line 3: expected ';'" in out
    before.write_text('require "fileinto";\nfileinto "Junk";\n')
    assert run("check", "-c", cfg)[0] == 0
