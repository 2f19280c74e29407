"""README.md's "Running it for real" runs as written, and its DNS records are what the program
prints: the commands are parsed from README.md itself, so the page cannot drift again."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.cli.ptyrun import run_on_pty
from tests.conftest import REPO
from tests.support.server import free_port_base

README = REPO / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def blocks(text: str, lang: str) -> list[str]:
    """The fenced code blocks of language `lang` ("" for none), in order."""
    out: list[str] = []
    body: list[str] | None = None
    current = ""
    indent = 0
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if body is None:
                body, current = [], line.strip()[3:].strip()
                indent = len(line) - len(line.lstrip())  # a block inside a list item
            else:
                if current == lang:
                    out.append("\n".join(body) + "\n")
                body = None
        elif body is not None:
            body.append(line[indent:])
    return out


def commands(block: str) -> list[tuple[list[str], str]]:
    """(argv, comment) of each line; the comment tells what the line does interactively."""
    out = []
    for line in block.strip().splitlines():
        code, _, comment = line.partition("#")
        if code.strip():
            out.append((shlex.split(code), comment.strip()))
    return out


def test_readme_running_it_for_real_runs_as_written(tmp_path: Path) -> None:
    text = section("Running it for real")
    sh = blocks(text, "sh")
    assert len(sh) == 2, "the one-step and the step-by-step blocks"
    base = free_port_base(("0.0.0.0",))
    mw = [sys.executable, "-m", "mailwright"]
    env = dict(os.environ)

    def where(argv: list[str], root: Path) -> list[str]:
        return [a.replace("/etc/mailwright", str(root)) for a in argv]

    # the one-step way
    for argv, _ in commands(sh[0]):
        if argv[:2] == ["pip", "install"]:
            continue  # the package is installed: the tests run it
        assert argv[0] == "mailwright", argv
        argv = [*where(argv, tmp_path / "quick"), "--port-base", str(base), "--bind", "127.0.0.1"]
        r = subprocess.run(mw + argv[1:], capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, (argv, r.stderr)
        assert re.search(r"^  password: \S+$", r.stdout, re.M)

    # step by step
    root = tmp_path / "etc-mailwright"
    cwd: Path | None = None
    outputs: dict[str, str] = {}
    for argv, comment in commands(sh[1]):
        if argv[:2] == ["pip", "install"]:
            continue
        argv = where(argv, root)
        if argv[0] == "cd":
            cwd = Path(argv[1])
            continue
        assert argv[0] == "mailwright", argv
        if argv[1] == "init":
            argv += ["--port-base", str(base)]  # the standard ports belong to the machine
        if argv[1] == "serve":
            serve(mw + argv[1:], cwd, env)
            continue
        if "prompts for the password" in comment:
            code, shown = run_on_pty(mw + argv[1:], [(b"Password: ", b"pw-from-readme\n"),
                                                     (b"Again: ", b"pw-from-readme\n")],
                                     env=env, cwd=cwd)
            assert code == 0, (argv, shown)
            outputs[argv[1]] = shown.decode()
            continue
        r = subprocess.run(mw + argv[1:], capture_output=True, text=True, timeout=300, cwd=cwd,
                           env=env)
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
        outputs[" ".join(argv[1:2])] = r.stdout
    assert "postmaster@example.com now delivers to alice@example.com" in outputs["user"]

    # the records shown are the records printed (ports moved by the test's port base)
    printed = {line for line in outputs["dns-records"].splitlines() if not line.startswith(";")}
    shown = [line for line in blocks(text, "")[0].strip().splitlines()]
    assert len(shown) >= 8
    for line in shown:
        srv = re.match(r"(.* SRV 0 1 )(\d+)( .*)", line)
        if srv:
            line = f"{srv.group(1)}{int(srv.group(2)) + base}{srv.group(3)}"
        pattern = re.escape(line).replace("YYYYMM", r"\d{6}").replace(r"\.\.\.", ".+")
        assert any(re.fullmatch(pattern, p) for p in printed), (line, sorted(printed))


def serve(argv: list[str], cwd: Path | None, env: dict[str, str]) -> None:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        ready.wait(120)
        assert any("ready" in line for line in lines), "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, "".join(lines)
