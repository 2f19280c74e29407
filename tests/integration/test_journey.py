"""The whole journey on one real server: submit, receive from the world, read by IMAP and POP3.

Python's own clients (smtplib, imaplib, poplib) over real sockets and real TLS against
`mailwright serve` as an operator runs it.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, MailwrightServer


def tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("journey"))
    for user in ("alice@example.test", "bob@example.test"):
        srv.add_user(user)
    srv.cli("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
    srv.start()
    yield srv
    assert srv.stop() == 0  # graceful SIGTERM exits 0


def message(subject: str, frm: str, to: str) -> bytes:
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n\r\n"
            f"Body of {subject}.\r\n").encode()


def imap_login(server: MailwrightServer, user: str) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=tls())
    m.login(user, PASSWORD)
    return m


def test_journey_submission_delivers_locally(server: MailwrightServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as s:
        s.starttls(context=tls())
        s.login("alice@example.test", PASSWORD)
        refused = s.sendmail("alice@example.test", ["bob@example.test"],
                             message("hello bob", "alice@example.test", "bob@example.test"))
        assert refused == {}
    inbox = server.mailbox("bob@example.test")
    assert any(b"Subject: hello bob" in m for m in inbox)
    got = next(m for m in inbox if b"Subject: hello bob" in m)
    assert got.startswith(b"Return-Path: <alice@example.test>\r\n")
    assert b"Received: from" in got


def test_journey_submission_requires_auth_and_own_sender(server: MailwrightServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as s:
        s.starttls(context=tls())
        code, _ = s.mail("alice@example.test")
        assert code == 530  # RFC 4954 6: authentication required
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), timeout=30, context=tls()) as s:
        s.login("alice@example.test", PASSWORD)
        code, _ = s.mail("bob@example.test")  # not alice's address
        assert code == 553


def test_journey_mx_accepts_local_refuses_relay(server: MailwrightServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as s:
        s.ehlo("sender.example.org")
        s.mail("someone@sender.example.org")
        assert s.rcpt("team@example.test")[0] == 250
        assert s.rcpt("nobody@example.test")[0] == 550
        assert s.rcpt("victim@elsewhere.example")[0] == 554
        code, _ = s.data(message("from the world", "someone@sender.example.org", "team@example.test"))
        assert code == 250
    for user in ("alice@example.test", "bob@example.test"):
        assert any(b"from the world" in m for m in server.mailbox(user))


def test_journey_imap_reads_flags_and_idle(server: MailwrightServer) -> None:
    m = imap_login(server, "bob@example.test")
    try:
        typ, data = m.select("INBOX")
        assert typ == "OK"
        count = int(data[0])
        assert count >= 2
        typ, data = m.uid("SEARCH", None, "SUBJECT", "hello")
        uids = data[0].split()
        assert typ == "OK" and uids
        typ, data = m.uid("FETCH", uids[0], "(BODY.PEEK[] FLAGS)")
        assert typ == "OK" and b"Body of hello bob." in data[0][1]
        m.uid("STORE", uids[0], "+FLAGS", r"(\Seen)")
        typ, data = m.uid("FETCH", uids[0], "(FLAGS)")
        assert b"\\Seen" in data[0]
    finally:
        m.logout()

    # IDLE: a delivery from the MX reaches the idling client
    idler = imap_login(server, "bob@example.test")
    try:
        idler.select("INBOX")
        tag = idler._new_tag().decode()
        idler.send(f"{tag} IDLE\r\n".encode())
        assert idler.readline().startswith(b"+")
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as s:
            s.sendmail("x@sender.example.org", ["bob@example.test"],
                       message("while idle", "x@sender.example.org", "bob@example.test"))
        idler.sock.settimeout(15)
        line = idler.readline()
        assert line.startswith(b"* ") and b"EXISTS" in line, line
        idler.send(b"DONE\r\n")
        while not idler.readline().startswith(tag.encode()):
            pass
    finally:
        idler.logout()


def test_journey_pop3_downloads_and_deletes(server: MailwrightServer) -> None:
    before = server.mailbox("alice@example.test")
    assert before
    p = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=tls(), timeout=30)
    try:
        p.user("alice@example.test")
        p.pass_(PASSWORD)
        count, _size = p.stat()
        assert count == len(before)
        got = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(count)]
        assert got == before  # byte-exact
        for i in range(count):
            p.dele(i + 1)
    finally:
        p.quit()
    assert server.mailbox("alice@example.test") == []


def test_journey_starttls_on_imap_and_pop3(server: MailwrightServer) -> None:
    m = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    m.starttls(ssl_context=tls())
    m.login("bob@example.test", PASSWORD)
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    p.stls(context=tls())
    p.user("bob@example.test")
    p.pass_(PASSWORD)
    assert p.stat()[0] >= 1
    p.quit()


def test_journey_graceful_shutdown_finishes_transaction(tmp_path: Path) -> None:
    srv = MailwrightServer(tmp_path / "g")
    srv.add_user("carol@example.test")
    srv.start()
    s = smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30)
    s.ehlo("x.example")
    s.mail("a@x.example")
    s.rcpt("carol@example.test")
    assert srv.proc is not None
    srv.proc.terminate()  # SIGTERM in the middle of a transaction
    time.sleep(0.5)
    code, _ = s.data(message("during shutdown", "a@x.example", "carol@example.test"))
    assert code == 250
    s.quit()
    assert srv.proc.wait(30) == 0
    srv.proc = None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port("smtp")), timeout=2)
    assert any(b"during shutdown" in m for m in srv.mailbox("carol@example.test"))
