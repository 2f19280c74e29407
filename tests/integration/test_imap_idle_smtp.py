"""A message sent over SMTP reaches an IMAP client waiting in IDLE (issue 5: "IDLE notified
on delivery over SMTP"), over real sockets on both sides."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.imap_support import PASSWORD, ImapServer, imaplib_idle, start_imap_server

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


async def test_imap_idle_notified_by_smtp_delivery(server: ImapServer) -> None:
    loop = asyncio.get_running_loop()
    idling = asyncio.Event()

    def imap_side() -> tuple[list[bytes], bytes]:
        imap = imaplib.IMAP4(server.host, server.port, timeout=30)
        imap.login(USER, PASSWORD)
        imap.select("INBOX")
        got = imaplib_idle(imap, lambda: loop.call_soon_threadsafe(idling.set))
        _typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
        imap.logout()
        return got, data[0][1]  # type: ignore[index, return-value]

    def smtp_side() -> None:
        assert server.smtp_port is not None
        with smtplib.SMTP(server.host, server.smtp_port, local_hostname="client.remote.test") as s:
            s.sendmail("carol@remote.test", [USER],
                       b"From: carol@remote.test\r\nTo: alice@example.test\r\n"
                       b"Subject: over smtp\r\n\r\nhello\r\n")

    imap_task = asyncio.ensure_future(asyncio.to_thread(imap_side))
    await idling.wait()
    await asyncio.to_thread(smtp_side)
    got, header = await imap_task
    assert got == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"]
    assert header == b"Subject: over smtp\r\n\r\n"
