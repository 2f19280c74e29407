"""Past the recipient limit (RFC 5321 4.5.3.1.10) over a real socket: the excess gets
`452 4.5.3`, which is not an error of the client's, so the session is not ended with 421 and the
recipients already accepted get the message; the client sends the rest in another transaction.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.smtpd.harness import SmtpServer, add_user, inbox, start_server

USERS = [f"user{i:03d}" for i in range(150)]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path)  # [limits] max_recipients = 100 (the default)
    for local in USERS:
        await add_user(srv.store, local)
    try:
        yield srv
    finally:
        await srv.stop()


async def test_smtp_recipients_past_the_limit_get_452_and_the_rest_is_delivered(
    server: SmtpServer,
) -> None:
    rcpts = [f"{u}@example.test" for u in USERS]
    message = b"From: x@remote.test\r\nSubject: many\r\n\r\nto all of you\r\n"

    def send() -> tuple[dict[str, tuple[int, bytes]], dict[str, tuple[int, bytes]]]:
        with smtplib.SMTP(server.host, server.port, timeout=60) as s:
            first = s.sendmail("x@remote.test", rcpts, message)
            # as RFC 5321 4.5.3.1.10 says a client does: the rest in another transaction
            second = s.sendmail("x@remote.test", list(first), message)
            s.noop()  # still connected: no 421
            return first, second

    first, second = await asyncio.to_thread(send)
    assert sorted(first) == rcpts[100:]
    assert all(reply == (452, b"4.5.3 Error: too many recipients") for reply in first.values())
    assert second == {}
    for rcpt in rcpts:
        assert len(await inbox(server.store, rcpt)) == 1, rcpt
