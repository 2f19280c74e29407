"""swaks (Debian package) against the real listeners: MX, STARTTLS + AUTH PLAIN/LOGIN,
implicit TLS, pipelining, 8-bit data. Without swaks these skip, and the skip guard of
scripts/test.sh (tests/skip-allowlist.txt) fails the run; swaks without `libnet-ssleay-perl`
(its TLS) fails the TLS tests here."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.smtpd.harness import PASSWORD, SmtpServer, add_user, inbox, start_server

SWAKS = shutil.which("swaks")
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(SWAKS is None, reason="swaks is not installed (apt-get install swaks)"),
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path)
    await add_user(srv.store, "alice")
    await add_user(srv.store, "bob")
    try:
        yield srv
    finally:
        await srv.stop()


async def swaks(*args: str) -> tuple[int, str]:
    assert SWAKS is not None
    proc = await asyncio.create_subprocess_exec(
        SWAKS, "--helo", "swaks.client.test", "--timeout", "20", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def test_swaks_mx(server: SmtpServer) -> None:
    code, out = await swaks(
        "--server", server.host, "--port", str(server.port),
        "--from", "carol@remote.test", "--to", "bob@example.test",
        "--header", "Subject: from swaks", "--body", "hello from swaks",
    )  # fmt: skip
    assert code == 0, out
    [stored] = await inbox(server.store, "bob@example.test")
    assert b"Subject: from swaks" in stored and b"hello from swaks" in stored


async def test_swaks_mx_relay_denied(server: SmtpServer) -> None:
    code, out = await swaks(
        "--server", server.host, "--port", str(server.port),
        "--from", "carol@remote.test", "--to", "victim@elsewhere.test",
    )  # fmt: skip
    assert code != 0
    assert "554 5.7.1 Relay access denied" in out


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
async def test_swaks_submission_starttls_auth(server: SmtpServer, mech: str) -> None:
    code, out = await swaks(
        "--server", server.host, "--port", str(server.submission_port), "--tls",
        "--auth", mech, "--auth-user", "alice@example.test", "--auth-password", PASSWORD,
        "--from", "alice@example.test", "--to", "bob@example.test",
        "--header", f"Subject: auth {mech}",
    )  # fmt: skip
    assert code == 0, out
    assert "235 2.7.0 Authentication successful" in out
    [stored] = await inbox(server.store, "bob@example.test")
    assert f"Subject: auth {mech}".encode() in stored
    assert b" with ESMTPSA id " in stored


async def test_swaks_submission_without_tls_gets_no_auth(server: SmtpServer) -> None:
    code, out = await swaks(
        "--server", server.host, "--port", str(server.submission_port),
        "--auth", "PLAIN", "--auth-user", "alice@example.test", "--auth-password", PASSWORD,
        "--from", "alice@example.test", "--to", "bob@example.test",
    )  # fmt: skip
    assert code != 0, out
    assert await inbox(server.store, "bob@example.test") == []


async def test_swaks_submissions_implicit_tls_pipelining(server: SmtpServer) -> None:
    code, out = await swaks(
        "--server", server.host, "--port", str(server.submissions_port), "--tls-on-connect",
        "--pipeline", "--auth", "PLAIN", "--auth-user", "alice@example.test",
        "--auth-password", PASSWORD, "--from", "alice@example.test",
        "--to", "bob@example.test,alice@example.test", "--header", "Subject: piped",
    )  # fmt: skip
    assert code == 0, out
    assert len(await inbox(server.store, "bob@example.test")) == 1
    assert len(await inbox(server.store, "alice@example.test")) == 1


async def test_swaks_8bit_body(server: SmtpServer, tmp_path: Path) -> None:
    data = tmp_path / "msg.eml"
    data.write_bytes(
        "From: carol@remote.test\r\nTo: bob@example.test\r\nSubject: 8bit\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße, 日本語\r\n".encode()
    )
    code, out = await swaks(
        "--server", server.host, "--port", str(server.port),
        "--from", "carol@remote.test", "--to", "bob@example.test", "--data", str(data),
    )  # fmt: skip
    assert code == 0, out
    [stored] = await inbox(server.store, "bob@example.test")
    assert "Grüße, 日本語\r\n".encode() in stored
