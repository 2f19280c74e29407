"""Python's smtplib and raw sockets against the real SMTP listeners: MX, submission with
STARTTLS, submissions with implicit TLS, AUTH PLAIN/LOGIN, pipelining, BDAT, 8-bit and UTF-8."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.smtpd.harness import PASSWORD, SmtpServer, add_user, body_of, inbox, start_server

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path)
    await add_user(srv.store, "alice")
    await add_user(srv.store, "bob")
    try:
        yield srv
    finally:
        await srv.stop()


def message(subject: str, body: str, sender: str = ALICE, to: str = BOB) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body)
    return m


async def test_smtp_smtplib_mx_delivery(server: SmtpServer) -> None:
    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(server.host, server.port, local_hostname="client.remote.test") as s:
            return s.sendmail("carol@remote.test", [BOB, "nobody@example.test"],
                              message("MX", "hello", "carol@remote.test").as_bytes())  # fmt: skip

    refused = await asyncio.to_thread(send)
    assert refused == {
        "nobody@example.test": (550, b"5.1.1 Recipient address rejected: User unknown")
    }
    [stored] = await inbox(server.store, BOB)
    assert stored.startswith(b"Return-Path: <carol@remote.test>\r\nReceived: from client.remote")
    assert b"Subject: MX\r\n" in stored


async def test_smtp_smtplib_mx_relay_refused(server: SmtpServer) -> None:
    def send() -> None:
        with smtplib.SMTP(server.host, server.port) as s:
            s.sendmail("carol@remote.test", ["victim@elsewhere.test"], b"Subject: x\r\n\r\nx")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        await asyncio.to_thread(send)
    assert info.value.recipients["victim@elsewhere.test"][0] == 554


async def test_smtp_smtplib_submission_starttls_auth_plain(server: SmtpServer) -> None:
    def send() -> tuple[bool, bool]:
        with smtplib.SMTP(server.host, server.submission_port) as s:
            s.ehlo()
            before = s.has_extn("auth")
            s.starttls(context=server.client_ssl())
            s.ehlo()
            after = s.has_extn("auth")
            s.login(ALICE, PASSWORD, initial_response_ok=True)
            s.send_message(message("Submitted", "via starttls"))
            return before, after

    before, after = await asyncio.to_thread(send)
    assert (before, after) == (False, True)
    [stored] = await inbox(server.store, BOB)
    assert b" with ESMTPSA id " in stored and b"Subject: Submitted\r\n" in stored


async def test_smtp_smtplib_submissions_auth_login(server: SmtpServer) -> None:
    def send() -> None:
        with smtplib.SMTP_SSL(
            server.host, server.submissions_port, context=server.client_ssl()
        ) as s:
            s.ehlo()
            s.user, s.password = ALICE, PASSWORD
            code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            assert code == 235
            s.send_message(message("Implicit", "over 465"))

    await asyncio.to_thread(send)
    [stored] = await inbox(server.store, BOB)
    assert b"Subject: Implicit\r\n" in stored


async def test_smtp_smtplib_submission_wrong_password_and_sender(server: SmtpServer) -> None:
    def attempt() -> tuple[int, int]:
        with smtplib.SMTP_SSL(
            server.host, server.submissions_port, context=server.client_ssl()
        ) as s:
            try:
                s.login(ALICE, "wrong")
            except smtplib.SMTPAuthenticationError as e:
                bad = e.smtp_code
            s.login(ALICE, PASSWORD)
            code, _ = s.mail(BOB)
            return bad, code

    assert await asyncio.to_thread(attempt) == (535, 553)


async def test_smtp_smtplib_utf8_message(server: SmtpServer) -> None:
    await add_user(server.store, "jürgen")

    def send() -> None:
        with smtplib.SMTP(server.host, server.submission_port) as s:
            s.starttls(context=server.client_ssl())
            s.login(ALICE, PASSWORD)
            m = message("Grüße aus München", "Ça marche, 日本語.\n", to="jürgen@example.test")
            s.send_message(m)  # smtplib adds SMTPUTF8 and BODY=8BITMIME for non-ASCII

    await asyncio.to_thread(send)
    [stored] = await inbox(server.store, "jürgen@example.test")
    assert "Subject: Grüße aus München".encode() in stored
    assert "Ça marche, 日本語.".encode() in stored
    assert b" with UTF8SMTPSA id " in stored


async def test_smtp_smtplib_8bit_byte_exact(server: SmtpServer) -> None:
    raw = (
        "From: carol@remote.test\r\nTo: bob@example.test\r\nSubject: 8bit\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße\r\n.leading dot\r\n..two dots\r\n\r\nend\r\n"
    ).encode()

    def send() -> None:
        with smtplib.SMTP(server.host, server.port) as s:
            s.sendmail("carol@remote.test", [BOB], raw, mail_options=["BODY=8BITMIME"])

    await asyncio.to_thread(send)
    [stored] = await inbox(server.store, BOB)
    assert body_of(stored) == raw


def _session(port: int, host: str, payload: bytes, expect: int) -> list[bytes]:
    """Send `payload` in one write after EHLO; read until `expect` replies have come."""
    with socket.create_connection((host, port), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        s.sendall(b"EHLO pipeliner.test\r\n")
        while f.readline()[3:4] == b"-":
            pass
        s.sendall(payload)
        replies = []
        while len(replies) < expect:
            line = f.readline()
            assert line, f"connection closed after {replies}"
            if line[3:4] == b" ":
                replies.append(line.rstrip(b"\r\n"))
        return replies


async def test_smtp_pipelining_one_write(server: SmtpServer) -> None:
    payload = (
        b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
        b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    )
    replies = await asyncio.to_thread(_session, server.port, server.host, payload, 5)
    assert replies[:4] == [b"250 2.1.0 Ok", b"250 2.1.5 Ok",
                           b"550 5.1.1 Recipient address rejected: User unknown",
                           b"250 2.1.5 Ok"]  # fmt: skip
    assert replies[4].startswith(b"354 ")


async def test_smtp_pipelining_whole_transactions(server: SmtpServer) -> None:
    content = b"Subject: piped\r\n\r\nhi\r\n"
    one = b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT %d LAST\r\n%s" % (
        len(content),
        content,
    )
    replies = await asyncio.to_thread(_session, server.port, server.host, one * 3 + b"QUIT\r\n", 10)
    assert [r[:3] for r in replies] == [b"250"] * 9 + [b"221"]
    assert len(await inbox(server.store, BOB)) == 3


async def test_smtp_bdat_chunks_over_socket(server: SmtpServer) -> None:
    body = b"Subject: chunked\r\n\r\n" + b"0123456789" * 1000 + b"\r\n"
    parts = [body[:7], body[7:5000], body[5000:]]
    payload = b"MAIL FROM:<carol@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
    for i, p in enumerate(parts):
        last = b" LAST" if i == len(parts) - 1 else b""
        payload += b"BDAT %d%s\r\n" % (len(p), last) + p
    replies = await asyncio.to_thread(_session, server.port, server.host, payload, 5)
    assert replies[2] == b"250 2.0.0 Ok: 7 octets received"
    assert replies[4].startswith(b"250 2.0.0 Ok: queued as ")
    [stored] = await inbox(server.store, BOB)
    assert body_of(stored) == body


async def test_smtp_line_too_long_session_goes_on(server: SmtpServer) -> None:
    payload = b"NOOP " + b"x" * 2000 + b"\r\nNOOP\r\n"
    replies = await asyncio.to_thread(_session, server.port, server.host, payload, 2)
    assert replies == [b"500 5.5.2 Error: line too long", b"250 2.0.0 Ok"]


async def test_smtp_implicit_tls_rejects_plaintext(server: SmtpServer) -> None:
    def probe() -> bytes:
        with socket.create_connection((server.host, server.submissions_port), timeout=10) as s:
            s.sendall(b"EHLO plain\r\n")
            try:
                return s.recv(100)
            except (ConnectionError, TimeoutError):
                return b""

    assert not (await asyncio.to_thread(probe)).startswith(b"250")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_smtp_tls_versions(server: SmtpServer) -> None:
    def handshake() -> str:
        ctx = server.client_ssl()
        raw = socket.create_connection((server.host, server.submissions_port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="mail.example.test") as s:
            assert s.recv(100).startswith(b"220 ")
            return str(s.version())

    assert await asyncio.to_thread(handshake) in ("TLSv1.2", "TLSv1.3")

    def old() -> None:
        ctx = server.client_ssl()
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection((server.host, server.submissions_port), timeout=10) as raw:
            ctx.wrap_socket(raw, server_hostname="mail.example.test")

    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(old)


async def test_smtp_graceful_shutdown_says_421(tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "s")
    reader, writer = await asyncio.open_connection(srv.host, srv.port)
    assert (await reader.readline()).startswith(b"220 ")
    writer.write(b"HELO client.test\r\n")
    await writer.drain()
    assert await reader.readline() == b"250 mail.example.test\r\n"
    stopping = asyncio.ensure_future(srv.stop())
    assert await reader.readline() == b"421 4.3.2 mail.example.test Service shutting down\r\n"
    assert await reader.read() == b""
    writer.close()
    await stopping
