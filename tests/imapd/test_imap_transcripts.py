"""Replays tests/imapd/transcripts/*.txt against a session on a real store (SQLite and
PostgreSQL): each file fed whole, byte by byte and in 7-byte pieces (the integration suite
replays them over a real socket)."""

from __future__ import annotations

from pathlib import Path

import pytest
from imap_harness import PASSWORD, TRANSCRIPTS, imap_server, message, replay
from tests.support.backends import Backend

FILES = sorted(TRANSCRIPTS.glob("*.txt"))


@pytest.mark.parametrize("split", [0, 1, 7], ids=["whole", "bytewise", "split7"])
@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_imap_transcript(tmp_path: Path, backend: Backend, path: Path, split: int) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        for i in range(1, 4):
            await srv.deliver(acc, message(i))
        inbox = await srv.store.get_mailbox(acc, "INBOX")
        assert inbox is not None
        c = srv.client(split=split)

        async def send(data: bytes) -> None:
            c.send(data)

        await replay(path, send, c.read_line,
                     {"PASSWORD": PASSWORD, "UIDVALIDITY": str(inbox.uidvalidity),
                      "HOSTNAME": "imap.example.test"})
