"""docs/operator.md and docs/deployment.md say what the program does: the documented config
loads, every command and HTTP path is documented, and the log lines shown are the lines a
running server writes."""

from __future__ import annotations

import re
import smtplib
import ssl
import tomllib
from pathlib import Path

from mailwright.cli.main import build_parser
from mailwright.config import parse_config
from tests.cli.test_readme import blocks
from tests.conftest import REPO
from tests.support.server import PASSWORD, MailwrightServer, wait_for

OPERATOR = REPO / "docs" / "operator.md"
DEPLOYMENT = REPO / "docs" / "deployment.md"


def test_docs_operator_md_stands_alone() -> None:
    text = OPERATOR.read_text()
    assert "shared/" not in text and "operator-contract" not in text
    readme = (REPO / "README.md").read_text()
    assert "shared/design" not in readme


def test_docs_every_command_is_documented() -> None:
    text = OPERATOR.read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():  # type: ignore[union-attr]
        assert f"`{name}" in text, name
        for action in p._actions:
            if action.dest == "action" and action.choices:
                for verb in action.choices:
                    assert f"{name} {verb}" in text, f"{name} {verb}"
    for path in ("/healthz", "/metrics", "/mail/config-v1.1.xml",
                 "/.well-known/autoconfig/mail/config-v1.1.xml", "/autodiscover/autodiscover.xml"):
        assert path in text and path in (REPO / "src/mailwright/web/listener.py").read_text()
    for what in ("dkim list", "loopback", "--disabled", "550 5.1.1", "quickstart",
                 "import imap", "--storage sqlite\\|postgres", "`HEAD`", "405 Method Not Allowed"):
        assert what in text, what


def test_docs_documented_config_is_a_valid_config(tmp_path: Path) -> None:
    toml = [b for b in blocks(OPERATOR.read_text(), "toml") if "[server]" in b]
    assert len(toml) == 1
    config = parse_config(tomllib.loads(toml[0]), tmp_path / "mailwright.toml")
    assert config.listeners[0].protocol == "smtp"


def _pattern(line: str) -> re.Pattern[str]:
    """A documented log line as a pattern: the same logger, event and keys in the same order."""
    _time, level, logger, rest = line.split(" ", 3)
    event = rest.partition("=")[0].rsplit(" ", 1)[0]
    keys = re.findall(r"(?:^| )([a-z_]+)=", rest)
    body = "".join(rf" {k}=\S+" for k in keys)
    return re.compile(rf"\S+Z {level} {re.escape(logger)} {re.escape(event)}{body}$")


def test_docs_log_lines_and_disabled_accounts_are_what_the_server_does(tmp_path: Path) -> None:
    documented = [line for doc in (OPERATOR, DEPLOYMENT) for b in blocks(doc.read_text(), "")
                  for line in b.splitlines() if re.match(r"\d{4}-\d\d-\d\dT\S+Z info ", line)]
    assert len(documented) >= 3
    server = MailwrightServer(tmp_path / "i")
    server.add_user("alice@example.test")
    with server:
        ctx = ssl.create_default_context(cafile=str(server.dir / "tls" / "cert.pem"))
        with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=60) as smtp:
            smtp.starttls(context=ctx)
            smtp.login("alice@example.test", PASSWORD)
            smtp.sendmail("alice@example.test", ["alice@example.test"],
                          b"From: alice@example.test\r\nSubject: log\r\n\r\nhello\r\n")

        def written() -> list[str]:
            lines = [line.rstrip("\n") for line in server.stderr]
            return lines if any(" connection id=" in line for line in lines) else []

        lines = wait_for("the connection log line", written)

        # "Disabled accounts": mail for a disabled account is refused at RCPT TO
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as mx:
            mx.ehlo("client.example.org")
            assert mx.mail("")[0] == 250
            assert mx.rcpt("alice@example.test")[0] == 250
            mx.rset()
            server.cli("user", "set", "alice@example.test", "--disabled", "yes")
            assert mx.mail("")[0] == 250
            code, text = mx.rcpt("alice@example.test")
            assert (code, text[:5]) == (550, b"5.1.1"), (code, text)
            assert mx.rcpt("postmaster@example.test")[0] == 550  # an alias only to it, too
    for doc_line in documented:
        pattern = _pattern(doc_line)
        assert any(pattern.match(line) for line in lines), (doc_line, lines)
