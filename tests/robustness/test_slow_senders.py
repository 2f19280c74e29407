"""Slow senders (issue 10, item 4): a command trickled in a byte at a time cannot hold a
session open, on any protocol; a slow but complete conversation is not cut off.

The idle timeouts run from the last complete command (net/limits.py `Deadline`, the listeners'
deadlines), so a byte every 0.3 s keeps no session alive past its timeout. The servers' real
floors (RFC 5321 4.5.3.2: 5 minutes; RFC 1939 3: 10 minutes; IMAP 60 s before login) are
lowered to about a second here, in-process, with real listeners and sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import mailwright.imapd.listener as imap_listener
import mailwright.pop3d.listener as pop3_listener
import mailwright.smtpd.listener as smtp_listener
from mailwright.app import build_context, handler_for
from mailwright.config import load_config
from mailwright.imapd.session import SessionConfig
from mailwright.net.server import ListenerSet

TIMEOUT = 1.0


@pytest.fixture
async def ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, int]]:
    monkeypatch.setattr(smtp_listener, "MIN_TIMEOUT", TIMEOUT)
    monkeypatch.setattr(pop3_listener, "MIN_IDLE_TIMEOUT", TIMEOUT)
    monkeypatch.setattr(
        imap_listener, "session_config",
        lambda ctx: SessionConfig(hostname="mail.example.test", preauth_timeout=TIMEOUT,
                                  idle_timeout=TIMEOUT),
    )  # fmt: skip
    (tmp_path / "data").mkdir()
    listeners = "".join(
        f'[[listener]]\nprotocol = "{p}"\naddress = "127.0.0.1"\nport = 0\n'
        for p in ("smtp", "imap", "pop3")
    )
    (tmp_path / "mailwright.toml").write_text(
        '[server]\nhostname = "mail.example.test"\ndata_dir = "data"\n'
        f'[storage]\nfsync = false\n[limits]\nidle_timeout = "1s"\n{listeners}'
    )
    config = load_config(tmp_path / "mailwright.toml")
    ctx = await build_context(config)
    server = ListenerSet(None)
    for lc in config.listeners:
        await server.add(lc, handler_for(ctx, lc))
    try:
        yield {lc.protocol: port for lc, port in server.bound()}
    finally:
        await server.shutdown(grace=1.0)
        await ctx.store.close()


async def _trickle(port: int, command: bytes) -> tuple[bytes, float]:
    """Send `command` a byte every 0.3 s, for ever; (what the server said, seconds to EOF)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    said = await reader.readline()
    started = time.monotonic()
    try:
        for i in range(200):  # 60 s at most: far beyond the timeout
            writer.write(command[i % len(command) : i % len(command) + 1])
            await writer.drain()
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.3)
            except TimeoutError:
                continue
            said += chunk
            if not chunk:
                return said, time.monotonic() - started
    except ConnectionError:
        return said, time.monotonic() - started
    finally:
        writer.close()
    raise AssertionError(f"a trickled command held the session for 60 s: {said!r}")


@pytest.mark.parametrize(("proto", "command"), [
    ("smtp", b"EHLO a-very-slow-client.example.test and it never ends"),
    ("imap", b"a LOGIN alice@example.test never-ending-password-for-ever-and-ever"),
    ("pop3", b"USER alice@example.test-and-so-on-and-so-forth-for-ever"),
])  # fmt: skip
async def test_slow_senders_trickled_command_is_timed_out(
    ports: dict[str, int], proto: str, command: bytes
) -> None:
    said, _seconds = await _trickle(ports[proto], command)
    # each protocol says why it hangs up (RFC 5321 421, IMAP BYE, POP3 -ERR)
    assert said.splitlines()[-1].startswith((b"421", b"* BYE", b"-ERR")), said


@pytest.mark.parametrize(("proto", "noop"), [("smtp", b"NOOP\r\n"), ("imap", b"n NOOP\r\n"),
                                             ("pop3", b"NOOP\r\n")])  # fmt: skip
async def test_slow_senders_slow_complete_commands_are_served(
    ports: dict[str, int], proto: str, noop: bytes
) -> None:
    # A command every 0.5 s for 3 s (three times the timeout): every one answered.
    reader, writer = await asyncio.open_connection("127.0.0.1", ports[proto])
    try:
        await reader.readline()
        for _ in range(6):
            await asyncio.sleep(TIMEOUT / 2)
            writer.write(noop)
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), 30)
            # (POP3 answers NOOP before login with -ERR: an answer all the same)
            assert answer and not answer.startswith((b"421", b"* BYE")), answer
            assert b"Autologout" not in answer and b"timeout" not in answer, answer
    finally:
        writer.close()
