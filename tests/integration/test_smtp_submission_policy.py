"""Submission over real sockets (smtplib, STARTTLS, AUTH): what an authenticated user may put in
From:/Sender:, which DKIM signatures it gets, forged Authentication-Results, and the Date: and
Message-ID: an MSA adds (RFC 6409 8.1-8.3).

The attack these guard against: an authenticated alice@example.test sends
`From: CEO <carol@other.test>`, other.test being another domain of this server, and the relayed
copy carried `DKIM-Signature: d=other.test`: our own key vouching for a forgery.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.mailauth import KeyStore
from tests.smtpd.harness import PASSWORD, SmtpServer, add_user, inbox, start_server
from tests.support.listening import cheap_hash

ALICE = "alice@example.test"
CAROL = "carol@other.test"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path, outbound=True)
    await add_user(srv.store, "alice")
    await add_user(srv.store, "bob")
    await srv.store.add_domain("other.test")
    await srv.store.add_account(CAROL, cheap_hash(PASSWORD))
    await srv.store.add_alias("sales@example.test", [ALICE])
    keys = KeyStore(srv.ctx.config.server.data_dir)
    for domain in ("example.test", "other.test"):
        keys.generate(domain, algorithm="ed25519")
    try:
        yield srv
    finally:
        await srv.stop()


def submit(server: SmtpServer, headers: str, rcpts: list[str], *,
           sender: str = ALICE, body: str = "hello\r\n") -> dict[str, tuple[int, bytes]]:
    """Send one message as alice through the submission port; raises what smtplib raises."""
    message = (headers.replace("\n", "\r\n") + "\r\n" + body).encode("utf-8")
    with smtplib.SMTP(server.host, server.submission_port, timeout=30) as s:
        s.starttls(context=server.client_ssl())
        s.login(ALICE, PASSWORD)
        return s.sendmail(sender, rcpts, message)


async def refused(server: SmtpServer, headers: str, rcpts: list[str]) -> tuple[int, str]:
    with pytest.raises(smtplib.SMTPDataError) as info:
        await asyncio.to_thread(submit, server, headers, rcpts)
    return info.value.smtp_code, info.value.smtp_error.decode()


async def queued_messages(server: SmtpServer) -> list[bytes]:
    return [await server.store.read_blob(e.blob_id) for e in await server.store.queue_list()]


def mailwright_cli(server: SmtpServer, *args: str) -> subprocess.CompletedProcess[str]:
    config = server.cert.parent / "mailwright.toml"
    return subprocess.run(
        [sys.executable, "-m", "mailwright", "--config", str(config), *args],
        capture_output=True, text=True, env=os.environ.copy(), timeout=120, check=False,
    )


async def test_smtp_submission_forged_from_other_local_domain_is_refused(
    server: SmtpServer,
) -> None:
    code, text = await refused(
        server, "From: CEO <carol@other.test>\nTo: x@remote.test\nSubject: wire\n",
        ["x@remote.test", "bob@example.test"],
    )
    assert code == 550 and text.startswith("5.7.1") and CAROL in text
    assert await queued_messages(server) == []  # nothing relayed, so nothing signed
    assert await inbox(server.store, "bob@example.test") == []


@pytest.mark.parametrize("headers", [
    'From: "alice@example.test" <carol@other.test>\n',  # the display name is not the address
    "From: alice@example.test, carol@other.test\n",  # every author counts
    "From: alice@example.test\nSender: carol@other.test\n",  # Sender: too
    "From: alice@example.test\nFrom: carol@other.test\n",  # a second From field
    "From: ceo@outside.test\n",  # a remote domain
    "From: alice@example.test (x) <carol@other.test>\n",  # parser differentials
])
async def test_smtp_submission_refuses_every_unowned_author(
    server: SmtpServer, headers: str
) -> None:
    code, text = await refused(server, headers + "Subject: s\n", ["x@remote.test"])
    assert code == 550 and text.startswith("5.7.1")
    assert await queued_messages(server) == []


async def test_smtp_submission_signs_only_the_users_own_domain(server: SmtpServer) -> None:
    await asyncio.to_thread(
        submit, server, "From: Alice <alice@example.test>\nSubject: a\n", ["x@remote.test"]
    )
    await asyncio.to_thread(
        submit, server, "From: Sales <sales+q4@example.test>\nSubject: b\n", ["y@remote.test"]
    )
    first, second = await queued_messages(server)
    for message in (first, second):
        assert b"DKIM-Signature:" in message and b"d=example.test" in message
        assert b"d=other.test" not in message


async def test_smtp_submission_send_as_grant_from_the_cli(server: SmtpServer) -> None:
    headers = "From: CEO <carol@other.test>\nSubject: granted\n"
    assert (await refused(server, headers, ["x@remote.test"]))[0] == 550

    r = await asyncio.to_thread(mailwright_cli, server, "user", "set", ALICE,
                                "--send-as", CAROL, "--send-as", "ceo@example.test")
    assert r.returncode == 0, r.stderr
    listing = (await asyncio.to_thread(mailwright_cli, server, "user", "list")).stdout
    assert f"{ALICE} send-as=carol@other.test,ceo@example.test" in listing

    await asyncio.to_thread(submit, server, headers, ["x@remote.test"], sender=CAROL)
    [message] = await queued_messages(server)
    assert b"d=other.test" in message  # the administrator vouched for it

    r = await asyncio.to_thread(mailwright_cli, server, "user", "set", ALICE,
                                "--no-send-as", CAROL)
    assert r.returncode == 0, r.stderr
    assert (await refused(server, headers, ["z@remote.test"]))[0] == 550
    r = await asyncio.to_thread(mailwright_cli, server, "user", "set", ALICE,
                                "--no-send-as", CAROL)
    assert r.returncode == 1 and "no send-as grant" in r.stderr


async def test_smtp_submission_removes_forged_authentication_results(
    server: SmtpServer,
) -> None:
    headers = (
        "Authentication-Results: mail.example.test; dkim=pass header.d=bank.test\n"
        "Authentication-Results: elsewhere.test; spf=pass\n"
        "From: alice@example.test\nSubject: ar\n"
    )
    await asyncio.to_thread(submit, server, headers, ["bob@example.test", "x@remote.test"])
    [local] = await inbox(server.store, "bob@example.test")
    [remote] = await queued_messages(server)
    for message in (local, remote):
        assert b"Authentication-Results: mail.example.test" not in message
        assert b"Authentication-Results: elsewhere.test; spf=pass\r\n" in message


async def test_smtp_submission_adds_date_and_message_id(server: SmtpServer) -> None:
    await asyncio.to_thread(submit, server, "From: alice@example.test\nSubject: bare\n",
                            ["bob@example.test"])
    await asyncio.to_thread(
        submit, server,
        "From: alice@example.test\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n"
        "Message-ID: <given@laptop.example.test>\nSubject: complete\n",
        ["bob@example.test"],
    )
    bare, complete = await inbox(server.store, "bob@example.test")
    header = bare.split(b"\r\n\r\n", 1)[0]
    assert header.count(b"\r\nDate: ") == 1 and header.count(b"\r\nMessage-ID: <") == 1
    assert b"@mail.example.test>\r\n" in header
    header = complete.split(b"\r\n\r\n", 1)[0]
    assert header.count(b"\r\nDate: ") == 1
    assert header.count(b"\r\nMessage-ID: ") == 1 and b"<given@laptop.example.test>" in header


async def test_smtp_mx_does_not_add_date_or_message_id(server: SmtpServer) -> None:
    def send() -> None:
        with smtplib.SMTP(server.host, server.port, timeout=30) as s:
            s.sendmail("x@remote.test", ["bob@example.test"], b"Subject: mx\r\n\r\nhi\r\n")

    await asyncio.to_thread(send)
    [message] = await inbox(server.store, "bob@example.test")
    assert b"\r\nDate:" not in message and b"Message-ID" not in message
