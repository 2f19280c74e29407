"""Pigeonhole's `sieve-test` as an oracle: the actions it would take, in a comparable form.

Both sides are reduced to a sorted tuple of short strings ("store INBOX flags=\\seen",
"redirect a@b.c", "reject reason", "vacation 259200 text", "notify to=a@b.c", "discard",
"implicit INBOX flags=", "failed", "invalid line N"), so the differential test compares what would
happen to the message, not how each implementation prints it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from mailwright.sieve import (
    CompiledScript,
    Envelope,
    NullEnvironment,
    SieveMessage,
    SieveSyntaxError,
    compile_script,
    run_script,
)
from mailwright.sieve.actions import Discard, FileInto, Keep, Notify, Redirect, Reject, Vacation

CORPUS = Path(__file__).parent / "corpus"
INCLUDES = CORPUS / "include"
GLOBALS = CORPUS / "global"
SENDER = "alice@example.com"
RECIPIENT = "bob+lists@example.net"

DOVECOT_CONF = """\
mail_uid = nobody
mail_gid = nogroup
mail_location = maildir:{home}/mail
plugin {{
  sieve = file:{home}/sieve;active={home}/.dovecot.sieve
  sieve_global = {home}/global
  sieve_extensions = +vacation-seconds +editheader +spamtest +spamtestplus +virustest +special-use
  sieve_vacation_min_period = 0
  sieve_spamtest_status_type = score
  sieve_spamtest_status_header = X-Spam-Score
  sieve_spamtest_max_value = 10
  sieve_virustest_status_type = score
  sieve_virustest_status_header = X-Virus-Score
  sieve_virustest_max_value = 5
}}
"""


def write_config(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o777)
    for sub in ("sieve", "global", "mail"):
        (home / sub).mkdir(exist_ok=True)
        (home / sub).chmod(0o777)
    # scripts that corpus scripts include: personal ones, and the administrator's global ones
    for src, dst in ((INCLUDES, home / "sieve"), (GLOBALS, home / "global")):
        for f in src.glob("*.sieve"):
            (dst / f.name).write_bytes(f.read_bytes())
            (dst / f.name).chmod(0o644)
    conf = home / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(home=home))
    return conf


def _flags(text: str) -> str:
    return " ".join(sorted(f.lower() for f in text.split()))


def pigeonhole(conf: Path, script: Path, message: Path, workdir: Path) -> tuple[str, ...]:
    """Run sieve-test on a copy of the script in `workdir` (it writes a binary next to it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o777)
    copy = workdir / script.name
    copy.write_bytes(script.read_bytes())
    copy.chmod(0o644)
    proc = subprocess.run(
        ["sieve-test", "-c", str(conf), "-f", SENDER, "-r", RECIPIENT, "-a", RECIPIENT,
         str(copy), str(message)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    out = proc.stdout
    if "failed to compile" in proc.stderr or "validation failed" in out + proc.stderr:
        m = re.search(r": line (\d+): error", out + proc.stderr)
        return (f"invalid line {m.group(1) if m else '?'}",)
    if "final result: failed" in proc.stderr + out:
        return ("failed",)
    if proc.returncode != 0:
        raise RuntimeError(f"sieve-test failed: {proc.stderr}")
    return parse_report(out)


def parse_report(out: str) -> tuple[str, ...]:
    items: list[str] = []
    section = ""
    current: list[str] | None = None

    def close() -> None:
        nonlocal current
        if current is not None:
            items.append(" ".join(current))
        current = None

    vacation_text: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("Performed actions:"):
            section = "actions"
            continue
        if line.startswith("Implicit keep:"):
            close()
            section = "implicit"
            continue
        if vacation_text is not None:
            if line == "END MESSAGE":
                assert current is not None
                current.append(repr("\n".join(vacation_text)))
                vacation_text = None
            else:
                vacation_text.append(line)
            continue
        if line == "START MESSAGE":
            vacation_text = []
            continue
        m = re.match(r"^ \* (.*)$", line)
        if m:
            close()
            text = m.group(1)
            if text.startswith("store message in folder: "):
                current = ["implicit" if section == "implicit" else "store",
                           text.split(": ", 1)[1], "flags="]
            elif text.startswith("redirect message to: "):
                current = ["redirect", text.split(": ", 1)[1].strip("<>")]
            elif text.startswith("reject message with reason: "):
                current = ["reject", repr(text.split(": ", 1)[1])]
            elif text == "discard":
                current = ["discard"]
            elif text.startswith("send vacation message"):
                current = ["vacation"]
            elif text.startswith("send notification"):
                current = ["notify"]
            else:
                current = [text]
            continue
        m = re.match(r"^\s+\+ add IMAP flags: (.*)$", line)
        if m and current is not None:
            current[-1] = "flags=" + _flags(m.group(1))
            continue
        m = re.match(r"^\s+=> seconds : (\d+)", line)
        if m and current is not None:
            current.append(m.group(1))
            continue
        m = re.match(r"^\s+\+ To: (.*)$", line)
        if m and current is not None and current[0] == "notify":
            current.append("to=" + m.group(1).strip())
    close()
    return tuple(sorted(items))


class CorpusEnvironment(NullEnvironment):
    """Includes come from the corpus folders, as sieve-test finds them in its config."""

    def load_include(self, name: str, global_: bool) -> CompiledScript | None:
        path = (GLOBALS if global_ else INCLUDES) / f"{name}.sieve"
        return compile_script(path.read_bytes()) if path.is_file() else None


def ours(script: Path, message: Path) -> tuple[str, ...]:
    try:
        compiled = compile_script(script.read_bytes())
    except SieveSyntaxError as exc:
        return (f"invalid line {exc.line}",)
    msg = SieveMessage.from_bytes(message.read_bytes())
    result = run_script(compiled, msg, Envelope(SENDER, RECIPIENT, RECIPIENT),
                        CorpusEnvironment())
    if result.failed:
        return ("failed",)
    items: list[str] = []
    for action in result.actions:
        if isinstance(action, Keep):
            items.append(f"store INBOX flags={_flags(' '.join(action.flags))}")
        elif isinstance(action, FileInto):
            name = action.mailbox.replace("\r", "?").replace("\n", "?")  # sieve-test prints '?'
            items.append(f"store {name} flags={_flags(' '.join(action.flags))}")
        elif isinstance(action, Redirect):
            items.append(f"redirect {action.address}")
        elif isinstance(action, Reject):
            items.append(f"reject {action.reason!r}")
        elif isinstance(action, Discard):
            items.append("discard")
        elif isinstance(action, Vacation):
            body = action.reason
            items.append(f"vacation {action.seconds} {body.replace(chr(13), '')!r}")
        elif isinstance(action, Notify):
            to = action.method.partition(":")[2].partition("?")[0]
            items.append(f"notify to={to}")
    if result.implicit_keep:
        items.append(f"implicit INBOX flags={_flags(' '.join(result.implicit_flags))}")
    return tuple(sorted(items))
