"""IMAP NOTIFY (RFC 5465) over real sockets: a client that asked for notifications hears of a
message delivered over SMTP at once, with no command and no IDLE in flight (RFC 5465 3: the
server sends them at any time), and the raw exchange is checked line by line."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server

USER = "alice@example.test"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path, smtp=True)
    assert srv.smtp_port is not None
    await srv.add_user()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_imap_notify_hears_smtp_delivery_between_commands(server: ImapServer) -> None:
    loop = asyncio.get_running_loop()
    listening = asyncio.Event()

    def imap_side() -> list[bytes]:
        imap = imaplib.IMAP4(server.host, server.port, timeout=30)
        imap.login(USER, PASSWORD)
        tag = imap._new_tag()  # imaplib has no NOTIFY: the command goes out as written
        imap.send(tag + b" NOTIFY SET STATUS (mailboxes INBOX (MessageNew MessageExpunge)) "
                         b"(personal (MailboxName))\r\n")
        got = [imap.readline(), imap.readline()]
        loop.call_soon_threadsafe(listening.set)
        got.append(imap.readline())  # unsolicited: no command of ours is running
        imap.logout()
        return got

    def smtp_side() -> None:
        assert server.smtp_port is not None
        with smtplib.SMTP(server.host, server.smtp_port, local_hostname="client.remote.test") as s:
            s.sendmail("carol@remote.test", [USER],
                       b"From: carol@remote.test\r\nTo: alice@example.test\r\n"
                       b"Subject: over smtp\r\n\r\nhello\r\n")

    imap_task = asyncio.ensure_future(asyncio.to_thread(imap_side))
    await listening.wait()
    await asyncio.to_thread(smtp_side)
    got = await imap_task
    assert got[0].startswith(b"* STATUS INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY ")
    assert got[1].endswith(b" OK NOTIFY completed\r\n")
    assert got[2].startswith(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")
