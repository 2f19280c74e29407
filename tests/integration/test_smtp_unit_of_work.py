"""A message to one local and one remote recipient, over a real socket, when the queue part of
its commit fails: the client gets a 4xx and retries, and the local recipient must end up with
exactly one copy (local delivery and the queue entry are one unit of work). The failure is the
database's own: a trigger refusing queue rows. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.smtpd.harness import (
    PASSWORD,
    SmtpServer,
    add_user,
    inbox,
    refuse_queue_rows,
    start_server,
)
from tests.support.backends import Backend

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
async def server(tmp_path: Path, backend: Backend) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path, outbound=True, backend=backend)
    await add_user(srv.store, "alice")
    await add_user(srv.store, "bob")
    try:
        yield srv
    finally:
        await srv.stop()


def submit(server: SmtpServer) -> None:
    message = b"From: alice@example.test\r\nSubject: once\r\n\r\nexactly once\r\n"
    with smtplib.SMTP(server.host, server.submission_port, timeout=30) as s:
        s.starttls(context=server.client_ssl())
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [BOB, "carol@remote.test"], message)


async def test_smtp_local_and_remote_commit_together(server: SmtpServer) -> None:
    refuse_queue_rows(server.store)
    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(submit, server)
    assert info.value.smtp_code == 451
    assert await inbox(server.store, BOB) == []  # nothing half-committed

    refuse_queue_rows(server.store, on=False)
    await asyncio.to_thread(submit, server)  # the client's retry
    assert len(await inbox(server.store, BOB)) == 1
    [entry] = await server.store.queue_list()
    assert [r.address for r in entry.recipients] == ["carol@remote.test"]
