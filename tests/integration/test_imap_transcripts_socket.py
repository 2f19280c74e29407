"""The session transcripts of tests/imapd/transcripts replayed over a real socket against the
real listener (net.server + imapd.listener), as the client sends them: whole blocks, and one
byte per write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.imapd.imap_harness import PASSWORD as TRANSCRIPT_PASSWORD
from tests.imapd.imap_harness import TRANSCRIPTS, message, password_hash, replay
from tests.integration.imap_support import ImapServer, start_imap_server

FILES = sorted(TRANSCRIPTS.glob("*.txt"))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path)
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_imap_transcript_over_socket(server: ImapServer, path: Path, bytewise: bool) -> None:
    acc = await server.add_user()
    for i in range(1, 4):
        await server.deliver(acc, message(i))
    inbox = await server.store.get_mailbox(acc.id, "INBOX")
    assert inbox is not None
    # the transcripts' password is the session harness's; give alice that one here
    await server.store.set_password(acc.id, password_hash())
    reader, writer = await asyncio.open_connection(server.host, server.port)

    async def send(data: bytes) -> None:
        if bytewise:
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
        else:
            writer.write(data)
            await writer.drain()

    async def read_line() -> bytes:
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)
        return line[:-2]

    try:
        # over a socket the greeting has STARTTLS (a certificate is configured)
        values = {"PASSWORD": TRANSCRIPT_PASSWORD, "UIDVALIDITY": str(inbox.uidvalidity),
                  "HOSTNAME": "mail.example.test"}
        await replay(path, send, read_line, values, greeting_wildcard=True)
    finally:
        writer.close()
