"""End to end through real SMTP: `mailwright serve`, a script put with the CLI, mail sent with
smtplib to the MX, to an alias and on the submission port, read back over IMAP; vacation replies
delivered or queued, a reject answered in SMTP or by an MDN."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, MailwrightServer, wait_for

SCRIPT = """\
require ["fileinto", "vacation", "imap4flags", "reject", "mailbox"];
if header :contains "subject" "report" {
    fileinto :create :flags "\\\\Flagged" "Reports";
    stop;
}
if header :contains "subject" "spam offer" {
    reject "No offers, thank you.";
    stop;
}
vacation :days 1 :subject "Out of office" "I am away until Monday.";
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    root = tmp_path_factory.mktemp("sieve-e2e")
    srv = MailwrightServer(root)
    srv.add_user("alice@example.test")
    srv.add_user("bob@example.test")
    script = root / "bob.sieve"
    script.write_text(SCRIPT)
    srv.cli("sieve", "put", "bob@example.test", "main", str(script))
    srv.cli("sieve", "activate", "bob@example.test", "main")
    # carol's own script, and an alias that expands to bob and carol (docs/sieve.md "Where it
    # runs": alias expansions run each account's script on its own copy)
    srv.add_user("carol@example.test")
    carol = root / "carol.sieve"
    carol.write_text('require ["fileinto", "mailbox"];\n'
                     'if address :is "to" "team@example.test" { fileinto :create "Team"; }\n')
    srv.cli("sieve", "put", "carol@example.test", "main", str(carol), "--activate")
    srv.cli("alias", "add", "team@example.test", "bob@example.test", "carol@example.test")
    srv.start()
    yield srv
    assert srv.stop() == 0


def send(server: MailwrightServer, sender: str, subject: str, msgid: str) -> None:
    body = (f"From: <{sender}>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\n\r\nHello Bob.\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(sender, ["bob@example.test"], body.encode())


def imap_folder(server: MailwrightServer, user: str, folder: str) -> list[tuple[bytes, bytes]]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=ctx)
    try:
        m.login(user, PASSWORD)
        typ, _ = m.select(f'"{folder}"', readonly=True)
        if typ != "OK":
            return []
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
        if typ != "OK" or data == [None]:
            return []
        return [(item[0], item[1]) for item in data if isinstance(item, tuple)]
    finally:
        m.logout()


def test_sieve_e2e_fileinto_a_folder_with_flags(server: MailwrightServer) -> None:
    send(server, "alice@example.test", "Quarterly report", "r1@example.test")
    found = imap_folder(server, "bob@example.test", "Reports")
    assert len(found) == 1
    meta, raw = found[0]
    assert b"\\Flagged" in meta and b"Quarterly report" in raw
    assert not any(b"Quarterly report" in raw for _m, raw in
                   imap_folder(server, "bob@example.test", "INBOX"))


def test_sieve_e2e_vacation_reply_once(server: MailwrightServer) -> None:
    send(server, "alice@example.test", "Lunch?", "v1@example.test")
    send(server, "alice@example.test", "Lunch again?", "v2@example.test")
    replies = wait_for("the vacation reply", lambda: [
        raw for _m, raw in imap_folder(server, "alice@example.test", "INBOX")
        if b"Out of office" in raw
    ])
    assert len(replies) == 1  # one reply per sender per period (RFC 5230 4.6)
    reply = replies[0]
    assert b"Auto-Submitted: auto-replied" in reply
    assert b"In-Reply-To: <v1@example.test>" in reply
    assert b"I am away until Monday." in reply
    inbox = imap_folder(server, "bob@example.test", "INBOX")
    assert sum(b"Lunch" in raw for _m, raw in inbox) == 2  # vacation keeps the message


def test_sieve_e2e_vacation_to_remote_sender_is_queued(server: MailwrightServer) -> None:
    send(server, "carol@remote.test", "Hello from outside", "q1@remote.test")
    # the queue may already have tried remote.test (no such domain here) and dropped the
    # entry, so the server's log is where the reply's hand-over to the queue shows
    wait_for("the vacation reply", lambda: any(
        "sieve vacation reply from bob@example.test to carol@remote.test" in line
        for line in server.stderr))


def test_sieve_e2e_reject_in_the_smtp_transaction(server: MailwrightServer) -> None:
    body = (b"From: <spammer@remote.test>\r\nTo: <bob@example.test>\r\n"
            b"Subject: spam offer\r\n\r\nBuy.\r\n")
    with (smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp,
          pytest.raises(smtplib.SMTPDataError) as err):
        smtp.sendmail("spammer@remote.test", ["bob@example.test"], body)
    assert err.value.smtp_code == 550
    assert b"No offers, thank you." in err.value.smtp_error
    assert not any(b"spam offer" in raw for _m, raw in
                   imap_folder(server, "bob@example.test", "INBOX"))


def test_sieve_e2e_alias_expansion_runs_each_accounts_script(server: MailwrightServer) -> None:
    body = (b"From: <dave@remote.test>\r\nTo: <team@example.test>\r\n"
            b"Subject: team report\r\nMessage-ID: <t1@remote.test>\r\n\r\nNumbers.\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail("dave@remote.test", ["team@example.test"], body)
    # bob's script files it by its subject, carol's by the alias it came through
    assert [raw for _m, raw in imap_folder(server, "bob@example.test", "Reports")
            if b"team report" in raw]
    assert [raw for _m, raw in imap_folder(server, "carol@example.test", "Team")
            if b"team report" in raw]
    for user in ("bob@example.test", "carol@example.test"):
        assert not any(b"team report" in raw for _m, raw in imap_folder(server, user, "INBOX"))


def submit(server: MailwrightServer, subject: str, msgid: str) -> None:
    """alice, authenticated on the submission port, writes to bob (a local user)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    body = (f"From: <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\n\r\nHello Bob.\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as smtp:
        smtp.starttls(context=ctx)
        smtp.login("alice@example.test", PASSWORD)
        assert smtp.sendmail("alice@example.test", ["bob@example.test"], body.encode()) == {}


def test_sieve_e2e_submission_to_a_local_user_runs_their_script(server: MailwrightServer) -> None:
    submit(server, "submitted report", "s1@example.test")
    assert [raw for _m, raw in imap_folder(server, "bob@example.test", "Reports")
            if b"submitted report" in raw]
    # a reject on the submission path is not said in SMTP (only the MX refuses in the
    # transaction): the sender gets an MDN instead (RFC 5429 2.1.1), and bob nothing
    submit(server, "spam offer by submission", "s2@example.test")
    mdn = wait_for("the MDN", lambda: [
        raw for _m, raw in imap_folder(server, "alice@example.test", "INBOX")
        if b"disposition-notification" in raw and b"s2@example.test" in raw
    ])
    assert len(mdn) == 1 and b"No offers, thank you." in mdn[0]
    assert b"deleted" in mdn[0]
    assert not any(b"spam offer by submission" in raw for _m, raw in
                   imap_folder(server, "bob@example.test", "INBOX"))


def test_sieve_e2e_broken_active_script_keeps_mail(server: MailwrightServer, tmp_path: Path) -> None:
    # the CLI refuses an invalid script, so break it behind its back in the store
    import asyncio

    from mailwright.cli.common import opened_store
    from mailwright.config import load_config

    async def corrupt() -> None:
        async with opened_store(load_config(server.cfg)) as store:
            acc = await store.find_account("alice@example.test")
            assert acc is not None
            await store.sieve_put(acc.id, "broken", "if { this is not sieve")
            await store.sieve_activate(acc.id, "broken")

    asyncio.run(corrupt())
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail("dave@remote.test", ["alice@example.test"],
                      b"Subject: still delivered\r\n\r\nx\r\n")
    assert any(b"still delivered" in raw for _m, raw in
               imap_folder(server, "alice@example.test", "INBOX"))
    # ... and the error is logged, naming the script and the account
    wait_for("the broken script's log line", lambda: any(
        "active script 'broken' of alice@example.test is broken" in line
        for line in server.stderr))
