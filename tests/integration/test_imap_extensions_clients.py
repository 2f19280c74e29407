"""The extensions and old/new-client rules of docs/imap.md through a real client library
(imapclient) over real sockets and TLS: \\Recent, UTF-8 downgrade, PREVIEW, OBJECTID."""

from __future__ import annotations

import asyncio
import email.header
from collections.abc import AsyncIterator
from pathlib import Path

import imapclient
import pytest

from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server

USER = "alice@example.test"

INTL = (
    "From: Jürgen <jürgen@müller.example>\r\nTo: alice@example.test\r\n"
    "Subject: Grüße aus Köln\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nHallo Alice,\r\n"
    "  bis bald.\r\n"
).encode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path)
    await srv.add_user()
    try:
        yield srv
    finally:
        await srv.stop()


def _client(server: ImapServer) -> imapclient.IMAPClient:
    c = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
    c.starttls(server.client_ssl())
    c.login(USER, PASSWORD)
    return c


async def test_imapclient_recent_downgrade_preview_objectid(server: ImapServer) -> None:
    def run() -> None:
        c = _client(server)
        caps = c.capabilities()
        for cap in (b"PREVIEW", b"OBJECTID", b"STATUS=DELETED", b"UTF8=ACCEPT"):
            assert cap in caps
        c.append("INBOX", INTL)
        # RFC 3501 2.3.2: the first session to select sees the message as recent
        info = c.select_folder("INBOX")
        assert info[b"RECENT"] == 1
        data = c.fetch([1], ["ENVELOPE", "FLAGS", "PREVIEW", "EMAILID", "THREADID"])[1]
        assert b"\\Recent" in data[b"FLAGS"]
        # RFC 6855 7 / RFC 6857: no UTF8=ACCEPT, so the ENVELOPE is ASCII with encoded words
        subject = data[b"ENVELOPE"].subject
        assert subject.isascii()
        assert str(email.header.make_header(email.header.decode_header(subject.decode()))) == (
            "Grüße aus Köln")
        assert data[b"PREVIEW"].decode() == "Hallo Alice, bis bald."
        assert data[b"EMAILID"][0].startswith(b"M")
        assert data[b"THREADID"] is None
        status = c.folder_status("INBOX", ["MESSAGES", "RECENT"])
        assert status[b"RECENT"] == 0  # taken by this session
        mailboxid = c.folder_status("INBOX", ["MAILBOXID"])[b"MAILBOXID"]
        assert mailboxid[0].startswith(b"F")
        c.logout()

        other = _client(server)
        other.enable("UTF8=ACCEPT")
        info = other.select_folder("INBOX", readonly=True)
        assert info[b"RECENT"] == 0
        data = other.fetch([1], ["ENVELOPE"])[1]
        assert data[b"ENVELOPE"].subject == "Grüße aus Köln".encode()
        other.logout()

    await asyncio.to_thread(run)
