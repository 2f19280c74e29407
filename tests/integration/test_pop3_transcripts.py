"""The POP3 session transcripts (tests/pop3d/transcripts) replayed over a real socket.

Each one runs against a fresh server whose user bob has two known messages; the client
side is sent line by line, byte by byte, and all at once (RFC 2449 PIPELINING).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.pop3d.harness import Pop3Server, add_message, add_user, start_server

TRANSCRIPTS = sorted((Path(__file__).parents[1] / "pop3d" / "transcripts").glob("*.txt"))
MSG1 = b"Subject: one\r\n\r\n.dot line\r\nbody\r\n"
MSG2 = b"Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    srv = await start_server(tmp_path)
    account = await add_user(srv.store, "bob")
    await add_message(srv.store, account, MSG1)
    await add_message(srv.store, account, MSG2)
    try:
        yield srv
    finally:
        await srv.stop()


def load(path: Path, uidvalidity: int) -> list[tuple[str, bytes]]:
    steps: list[tuple[str, bytes]] = []
    for raw in path.read_text().split("\n"):
        if not raw or raw.startswith("#"):
            continue
        kind, _, text = raw.partition(":")
        text = text[1:] if text.startswith(" ") else text
        text = text.replace("{uidvalidity}", f"{uidvalidity:08X}")
        steps.append((kind, text.encode() + b"\r\n"))
    return steps


async def uidvalidity(srv: Pop3Server) -> int:
    account = await srv.store.find_account("bob@example.test")
    assert account is not None
    box = await srv.store.get_mailbox(account.id, "INBOX")
    assert box is not None
    return box.uidvalidity


async def replay(srv: Pop3Server, steps: list[tuple[str, bytes]], mode: str) -> None:
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    try:
        if mode == "pipelined":
            writer.write(b"".join(data for kind, data in steps if kind == "C"))
            await writer.drain()
            expected = b"".join(data for kind, data in steps if kind == "S")
            got = await asyncio.wait_for(reader.readexactly(len(expected)), 30)
            assert got == expected
        else:
            for kind, data in steps:
                if kind == "C":
                    pieces = [data] if mode == "lines" else [data[i : i + 1] for i in range(len(data))]
                    for piece in pieces:
                        writer.write(piece)
                        await writer.drain()
                else:
                    got = await asyncio.wait_for(reader.readexactly(len(data)), 30)
                    assert got == data
        # After QUIT the server closes the connection and says nothing more.
        assert await asyncio.wait_for(reader.read(), 30) == b""
    finally:
        writer.close()


@pytest.mark.parametrize("mode", ["lines", "bytes", "pipelined"])
@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
async def test_pop3_transcripts_over_socket(server: Pop3Server, path: Path, mode: str) -> None:
    await replay(server, load(path, await uidvalidity(server)), mode)
