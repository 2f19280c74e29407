"""Mailwright's IMAP server over real sockets and real TLS, driven by Python's imaplib (and
imapclient when it is installed)."""

from __future__ import annotations

import asyncio
import imaplib
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.mime import normalize_crlf
from tests.integration.imap_support import (
    PASSWORD,
    ImapServer,
    corpus_messages,
    imaplib_idle,
    start_imap_server,
)

USER = "alice@example.test"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path)
    await srv.add_user()
    try:
        yield srv
    finally:
        await srv.stop()


def msg(n: int) -> bytes:
    return (
        f"From: Bob <bob@example.test>\r\nTo: {USER}\r\nSubject: note {n}\r\n"
        f"Date: Tue, 02 Jan 2024 10:00:0{n % 10} +0000\r\nMessage-ID: <n{n}@example.test>\r\n"
        f"\r\nbody of note {n}\r\n"
    ).encode()


async def test_imaplib_full_session(server: ImapServer) -> None:
    def run() -> None:
        imap = imaplib.IMAP4(server.host, server.port, timeout=30)
        assert "IMAP4REV2" in imap.capabilities
        typ, _ = imap.login(USER, PASSWORD)
        assert typ == "OK"
        typ, boxes = imap.list()
        assert typ == "OK" and any(b'"/" INBOX' in b for b in boxes)  # type: ignore[operator]
        assert imap.create("Projects/Mailwright")[0] == "OK"
        for i in range(1, 6):
            typ, data = imap.append("INBOX", r"(\Flagged)" if i == 2 else None,
                                    imaplib.Time2Internaldate(1700000000 + i), msg(i))
            assert typ == "OK" and b"APPENDUID" in data[0]  # type: ignore[operator]
        typ, data = imap.select("INBOX")
        assert (typ, data) == ("OK", [b"5"])
        typ, data = imap.fetch("1:2", "(UID FLAGS RFC822.SIZE)")
        assert data == [
            b"1 (UID 1 FLAGS (\\Recent) RFC822.SIZE %d)" % len(msg(1)),
            b"2 (UID 2 FLAGS (\\Flagged \\Recent) RFC822.SIZE %d)" % len(msg(2)),
        ]
        typ, data = imap.fetch("3", "(BODY.PEEK[])")
        assert data[0][1] == msg(3)  # type: ignore[index]
        typ, data = imap.uid("FETCH", "4", "(RFC822.HEADER)")
        assert data[0][1].startswith(b"From: Bob")  # type: ignore[index]
        assert imap.search(None, "FLAGGED")[1] == [b"2"]
        assert imap.search(None, '(SUBJECT "note 4")')[1] == [b"4"]
        assert imap.store("1:2", "+FLAGS", r"(\Seen)")[0] == "OK"
        assert imap.search(None, "UNSEEN")[1] == [b"3 4 5"]
        typ, data = imap.copy("1", "Projects/Mailwright")
        assert typ == "OK"
        typ, data = imap.uid("MOVE", "5", "Archive")
        assert typ == "OK"
        assert imap.store("4", "+FLAGS", r"(\Deleted)")[0] == "OK"
        typ, data = imap.expunge()
        assert data == [b"5", b"4"]  # imaplib also collected the EXPUNGE of the MOVE
        typ, data = imap.status("Projects/Mailwright", "(MESSAGES UNSEEN)")
        assert data == [b"Projects/Mailwright (MESSAGES 1 UNSEEN 0)"]
        typ, data = imap.status("Archive", "(MESSAGES)")
        assert data == [b"Archive (MESSAGES 1)"]
        assert imap.rename("Projects", "Work")[0] == "OK"
        assert imap.delete("Work/Mailwright")[0] == "OK"
        imap.close()
        assert imap.logout()[0] == "BYE"

    await asyncio.to_thread(run)


async def test_imaplib_starttls_and_imaps(server: ImapServer) -> None:
    def run() -> None:
        imap = imaplib.IMAP4(server.host, server.port, timeout=30)
        assert "STARTTLS" in imap.capabilities
        imap.starttls(server.client_ssl())
        assert "STARTTLS" not in imap.capabilities
        assert imap.login(USER, PASSWORD)[0] == "OK"
        imap.logout()
        imaps = imaplib.IMAP4_SSL(server.host, server.tls_port, ssl_context=server.client_ssl(),
                                  timeout=30)
        assert "STARTTLS" not in imaps.capabilities
        assert imaps.login(USER, PASSWORD)[0] == "OK"
        assert imaps.select("INBOX")[0] == "OK"
        imaps.logout()

    await asyncio.to_thread(run)


async def test_imap_starttls_injection_is_discarded(server: ImapServer) -> None:
    """Commands pipelined after STARTTLS in plaintext must not run (RFC 7817 / CVE-2011-0411
    class): the server drops whatever was buffered before the TLS handshake.

    The injected commands travel in the same segment as STARTTLS (one small send on loopback is
    one segment, read at once), so they are always in the server's buffers when it answers
    STARTTLS; a second segment could arrive after the handshake began and be read as a broken
    ClientHello instead, which proves nothing and fails at random."""

    def run() -> None:
        with socket.create_connection((server.host, server.port), timeout=30) as raw:
            f = raw.makefile("rb")
            assert f.readline().startswith(b"* OK")
            raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\nx LOGOUT\r\n")
            # nothing of b or x is answered in plaintext: the next line is STARTTLS's OK
            assert f.readline() == b"a OK Begin TLS negotiation now\r\n"
            tls = server.client_ssl().wrap_socket(raw, server_hostname="mail.example.test")
            tf = tls.makefile("rb")
            tls.sendall(b"c NOOP\r\n")
            line = tf.readline()
            # no "* CAPABILITY" for b and no "* BYE" for x: they were dropped, never run
            assert line == b"c OK NOOP completed\r\n", line
            tls.close()

    await asyncio.to_thread(run)


async def test_imaplib_idle_sees_delivery(server: ImapServer) -> None:
    account = await server.store.find_account(USER)
    assert account is not None
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()

    def run() -> list[bytes]:
        imap = imaplib.IMAP4(server.host, server.port, timeout=30)
        imap.login(USER, PASSWORD)
        imap.select("INBOX")
        got = imaplib_idle(imap, lambda: loop.call_soon_threadsafe(ready.set))
        imap.logout()
        return got

    task = asyncio.ensure_future(asyncio.to_thread(run))
    await ready.wait()
    from mailwright.delivery.ingest import stage_bytes

    report = await server.ctx.delivery.deliver(await stage_bytes(server.store, msg(1)), [USER])
    assert len(report.records) == 1
    got = await task
    assert got == [b"* 1 EXISTS\r\n", b"* 1 RECENT\r\n"]


async def test_imaplib_corpus_roundtrip(server: ImapServer) -> None:
    files = corpus_messages(limit=40)
    assert len(files) == 40

    def run() -> None:
        imap = imaplib.IMAP4(server.host, server.port, timeout=60)
        imap.login(USER, PASSWORD)
        imap.create("Corpus")
        for f in files:
            typ, data = imap.append("Corpus", None, None, f.read_bytes())
            assert typ == "OK", (f.name, data)
        imap.select("Corpus", readonly=True)
        for i, f in enumerate(files, 1):
            typ, data = imap.fetch(str(i), "(RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE ENVELOPE)")
            assert typ == "OK"
            body = data[0][1]  # type: ignore[index]
            expected = normalize_crlf(f.read_bytes())
            assert body == expected.replace(b"\x00", b"\x80") or body == expected, f.name
            assert re.search(rb"RFC822\.SIZE %d" % len(expected), data[0][0])  # type: ignore[index]
        imap.logout()

    await asyncio.to_thread(run)


async def test_imapclient_when_installed(server: ImapServer) -> None:
    import imapclient  # the test extras install it

    def run() -> None:
        c = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
        c.starttls(server.client_ssl())
        c.login(USER, PASSWORD)
        c.append("INBOX", msg(7), flags=[b"$Label1"])
        info = c.select_folder("INBOX")
        assert info[b"EXISTS"] == 1
        assert info[b"UIDVALIDITY"] > 0
        uids = c.search(["SUBJECT", "note 7"])
        assert uids == [1]
        data = c.fetch(uids, ["ENVELOPE", "FLAGS", "BODY.PEEK[TEXT]"])
        assert data[1][b"FLAGS"] == (b"\\Recent", b"$Label1")
        assert data[1][b"ENVELOPE"].subject == b"note 7"
        assert data[1][b"BODY[TEXT]"] == b"body of note 7\r\n"
        c.add_flags(uids, [imapclient.SEEN])
        assert set(c.get_flags(uids)[1]) == {b"$Label1", b"\\Recent", b"\\Seen"}
        folders = [f[2] for f in c.list_folders()]
        assert "INBOX" in folders and "Sent" in folders
        c.create_folder("Tmp")
        c.move(uids, "Tmp")
        assert c.folder_status("Tmp", ["MESSAGES"])[b"MESSAGES"] == 1
        c.idle()
        c.idle_done()
        c.logout()

    await asyncio.to_thread(run)


async def test_imap_garbage_and_huge_lines_over_socket(server: ImapServer) -> None:
    def run() -> None:
        with socket.create_connection((server.host, server.port), timeout=30) as raw:
            f = raw.makefile("rb")
            f.readline()
            raw.sendall(b"a " + b"x" * 200_000 + b"\r\n")
            assert f.readline().startswith(b"a BAD [TOOBIG]")
            raw.sendall(b"\x00\xff\xfe junk\r\nb NOOP\r\n")
            assert f.readline().startswith(b"* BAD")
            assert f.readline() == b"b OK NOOP completed\r\n"
            raw.sendall(b"c LOGIN {99999999}\r\n")
            assert f.readline().startswith(b"c BAD [TOOBIG]")
            raw.sendall(b"d LOGOUT\r\n")
            assert f.readline().startswith(b"* BYE")

    await asyncio.to_thread(run)
