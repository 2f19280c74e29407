"""Garbage at a real POP3 server: random mixes of valid commands and random bytes, cut at
random points.  No session may end in an internal error, every answer line is a well-formed
reply, and when all connections are gone the maildrop lock is free and nothing was deleted
without a QUIT that followed a DELE."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.store.api import Account
from tests.pop3d.harness import PASSWORD, Pop3Server, add_message, add_user, start_server

WORDS = [
    b"USER bob@example.test", b"PASS " + PASSWORD.encode(), b"PASS x", b"CAPA", b"STAT",
    b"LIST", b"LIST 1", b"UIDL", b"UIDL 9", b"RETR 1", b"TOP 1 2", b"NOOP", b"RSET",
    b"AUTH PLAIN", b"AUTH PLAIN AGJvYkBleGFtcGxlLnRlc3QAeA==", b"*", b"AUTH", b"APOP a b",
    b"LIST -1", b"TOP 1", b"", b"\x00\x01\x02", b"\xff\xfe", b"A" * 400,
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Pop3Server, Account]]:
    srv = await start_server(tmp_path)
    account = await add_user(srv.store, "bob")
    for i in range(3):
        await add_message(srv.store, account, b"Subject: %d\r\n\r\n.\r\nx\r\n" % i)
    try:
        yield srv, account
    finally:
        await srv.stop()


def script(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(1, 30)):
        if rng.random() < 0.8:
            parts.append(rng.choice(WORDS) + rng.choice([b"\r\n", b"\r\n", b"\n", b" \r\n"]))
        else:
            parts.append(rng.randbytes(rng.randint(1, 80)))
    return b"".join(parts)


async def one_session(srv: Pop3Server, seed: int) -> bytes:
    rng = random.Random(seed)
    data = script(rng)
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    try:
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 64)
            writer.write(data[pos : pos + step])
            pos += step
            await writer.drain()
        if rng.random() < 0.5:
            writer.write(b"QUIT\r\n")  # may land inside an AUTH exchange: then EOF ends it
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 30)
    except (ConnectionError, OSError):
        answer = b"(reset)"  # the server hung up first, e.g. after too many errors
    finally:
        writer.close()
    return answer


async def test_pop3_garbage_never_breaks_the_server(
    server: tuple[Pop3Server, Account], caplog: pytest.LogCaptureFixture
) -> None:
    srv, account = server
    caplog.set_level(logging.INFO, logger="mailwright")
    answers: list[bytes] = []
    for batch in range(3):  # 20 at once: below the per-address connection limit
        seeds = range(batch * 20, batch * 20 + 20)
        answers += await asyncio.gather(*(one_session(srv, seed) for seed in seeds))
    # Wait for the server side of every connection to finish (EOFs arrive asynchronously).
    for _ in range(600):
        if srv.listeners.active == 0:
            break
        await asyncio.sleep(0.01)
    assert srv.listeners.active == 0
    for answer in answers:
        if answer == b"(reset)":
            continue
        assert answer.startswith(b"+OK Mailwright POP3 ready\r\n")
        assert answer.endswith(b"\r\n") and b"Traceback" not in answer
    results = [getattr(r, "fields", {}).get("result") for r in caplog.records if r.getMessage() == "connection"]
    assert len(results) == len(answers)
    assert "internal-error" not in results
    assert [r for r in caplog.records if r.exc_info] == []
    assert await srv.store.lock_maildrop(account.id, "after-garbage", 60)
