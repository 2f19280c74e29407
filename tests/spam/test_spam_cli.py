"""`mailwright spam train` and `mailwright spam check`, as the operator runs them."""

from __future__ import annotations

import mailbox
from pathlib import Path

from tests.support.dnsserver import DNSServer
from tests.support.server import MailwrightServer

from .messages import ham, spam


def _server(tmp_path: Path) -> MailwrightServer:
    server = MailwrightServer(tmp_path / "srv")
    server.add_user("bob@example.test")
    return server


def _sources(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Spam as single files, ham as a Maildir plus an mbox (LF line ends, as on disk)."""
    files = tmp_path / "spamfiles"
    files.mkdir()
    for i in range(12):
        (files / f"{i}.eml").write_bytes(spam(i).replace(b"\r\n", b"\n"))
    maildir = mailbox.Maildir(tmp_path / "hammaildir", create=True)
    for i in range(6):
        maildir.add(ham(i))
    box = mailbox.mbox(tmp_path / "ham.mbox", create=True)
    for i in range(6, 12):
        box.add(ham(i))
    box.close()
    return files, tmp_path / "hammaildir", tmp_path / "ham.mbox"


def test_spam_cli_train_then_check(tmp_path: Path) -> None:
    server = _server(tmp_path)
    files, maildir, mbox = _sources(tmp_path)
    out = server.cli("spam", "train", "bob@example.test", "--spam", str(files),
                     "--ham", str(maildir), str(mbox))  # fmt: skip
    assert out == "trained 12 spam and 12 ham for bob@example.test (0 already known)\n"
    again = server.cli("spam", "train", "bob@example.test", "--spam", str(files / "0.eml"))
    assert "(1 already known)" in again
    probe = tmp_path / "probe.eml"
    probe.write_bytes(spam(40))
    lines = server.cli("spam", "check", str(probe), "--user", "bob@example.test").splitlines()
    assert lines[0].startswith("score ") and lines[0].endswith(" verdict junk"), lines
    assert any(" BAYES_SPAM " in line for line in lines[1:])
    probe.write_bytes(ham(40))
    lines = server.cli("spam", "check", str(probe)).splitlines()
    assert lines[0].endswith(" verdict ham") and any("BAYES_HAM" in x for x in lines), lines


def test_spam_cli_check_with_peer_uses_block_lists(tmp_path: Path, dns_server: DNSServer) -> None:
    server = _server(tmp_path)
    server.use_dns(dns_server.config_value)
    server.cfg.write_text(server.cfg.read_text() + '\n[spam]\ndnsbl = ["bl.test"]\n')
    dns_server.add("9.2.0.192.bl.test", "A", "127.0.0.2")
    probe = tmp_path / "probe.eml"
    probe.write_bytes(ham(1))
    listed = server.cli("spam", "check", str(probe), "--peer", "192.0.2.9").splitlines()
    assert listed[0].endswith("verdict reject"), listed
    assert any("DNSBL" in x and "bl.test" in x for x in listed)
    clean = server.cli("spam", "check", str(probe), "--peer", "192.0.2.10").splitlines()
    assert not clean[0].endswith("verdict reject")
    no_peer = server.cli("spam", "check", str(probe)).splitlines()
    assert not any("DNSBL" in x for x in no_peer)


def test_spam_cli_bad_usage(tmp_path: Path) -> None:
    server = _server(tmp_path)
    server.cli("spam", "train", "bob@example.test", expect=2)
    server.cli("spam", "train", "bob@example.test", "--spam", str(tmp_path / "missing"), expect=2)
    server.cli("spam", "check", str(tmp_path / "missing.eml"), expect=2)
    probe = tmp_path / "p.eml"
    probe.write_bytes(ham(0))
    server.cli("spam", "check", str(probe), "--peer", "not-an-ip", expect=2)
    server.cli("spam", "check", str(probe), "--user", "nobody@example.test", expect=1)
