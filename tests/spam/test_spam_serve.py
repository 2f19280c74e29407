"""The spam filter in `mailwright serve` as an operator runs it: mail from the world is judged
and carries its X-Spam-Status, and the server learns by itself from a user's IMAP moves."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from pathlib import Path

from mailwright.cli.common import opened_store
from mailwright.config import load_config
from tests.support.dnsserver import DNSServer
from tests.support.server import PASSWORD, MailwrightServer, wait_for

from .messages import ham, spam


def _totals(server: MailwrightServer, address: str) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        async with opened_store(load_config(server.cfg)) as store:
            account = await store.find_account(address)
            assert account is not None
            return (await store.spam_totals([account.id]))[account.id]

    return asyncio.run(read())


def test_spam_serve_judges_mail_and_learns_from_imap(tmp_path: Path, dns_server: DNSServer) -> None:
    server = MailwrightServer(tmp_path / "srv")
    server.use_dns(dns_server.config_value)
    server.cfg.write_text(server.cfg.read_text() + '\n[spam]\nlearn_interval = "0.2s"\n')
    server.add_user("bob@example.test")
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
            smtp.ehlo("client.remote.test")
            forged = b"X-Spam-Status: No, score=-99\r\n" + spam(3)
            smtp.sendmail("promo@offers.example", ["bob@example.test"], forged)
            smtp.sendmail("alice@friends.example", ["bob@example.test"], ham(3))
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        try:
            imap.login("bob@example.test", PASSWORD)
            imap.select("INBOX")
            _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER])")
            headers = [part[1] for part in data if isinstance(part, tuple)]
            assert len(headers) == 2
            for header in headers:
                assert header.count(b"X-Spam-Status:") == 1 and b"score=-99" not in header
            assert imap.uid("COPY", "1", "Junk")[0] == "OK"  # the user says: spam
            imap.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
            imap.expunge()
            assert imap.uid("STORE", "2", "+FLAGS", "($NotJunk)")[0] == "OK"  # and: not spam
        finally:
            imap.logout()
        wait_for("the trainer to learn both",
                 lambda: _totals(server, "bob@example.test") == (1, 1))  # fmt: skip
    finally:
        assert server.stop() == 0
