"""The core's transcripts that do not depend on session policy, replayed over a real socket
against the real MX listener, pipelined in one write (style.md: transcripts are replayed by
the integration tests)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.proto.test_smtp_harness import TRANSCRIPT_DIR, load
from tests.smtpd.harness import SmtpServer, add_user, start_server

# Transcripts whose every reply is the core's own (or the same from any session policy).
POLICY_FREE = [
    "sequence_before_helo",
    "sequence_rcpt_before_mail",
    "sequence_nested_mail",
    "rset_clears_transaction",
    "misc_commands",
    "quit_discards_pipelined_rest",
    "mail_syntax_errors",
    "ehlo_missing_name",
    "command_bad_bytes",
    "smuggling_cr_dot_cr",
    "smuggling_crlf_dot_cr",
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path, hostname="mx.example.test")
    await add_user(srv.store, "bob")
    try:
        yield srv
    finally:
        await srv.stop()


def _replay(host: str, port: int, client: bytes, expected: int) -> bytes:
    with socket.create_connection((host, port), timeout=10) as s:
        # Wait for the greeting first: a client that talks before it is an early talker (RFC 5321
        # 4.3.1; the MX's pregreet test drops it), which is not what these transcripts test.
        out = b""
        while b"\r\n" not in out:
            data = s.recv(65536)
            if not data:
                return out
            out += data
        s.sendall(client)
        while len(out) < expected:
            data = s.recv(65536)
            if not data:
                break
            out += data
        return out


@pytest.mark.parametrize("name", POLICY_FREE)
async def test_smtp_transcript_over_socket(server: SmtpServer, name: str) -> None:
    t = load(TRANSCRIPT_DIR / f"{name}.txt")
    assert len(t.segments) == 1 and not t.options, "only single-segment default transcripts"
    out = await asyncio.to_thread(
        _replay, server.host, server.port, t.segments[0].client, len(t.server)
    )
    assert out.decode("utf-8", "replace").splitlines() == t.server.decode().splitlines()
