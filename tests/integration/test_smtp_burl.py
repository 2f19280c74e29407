"""BURL (RFC 4468) on the submission port over a real socket with STARTTLS and AUTH: a client
forwards a message stored in its IMAP mailbox without uploading it again, alone or mixed with
BDAT chunks, and the message takes the same path as DATA (local delivery, queue).  The URLAUTH
token is checked exactly as URLFETCH checks it, for the access ``submit+<user>``; every other
URL is refused with 554 and the transaction ends.

No Debian or PyPI SMTP client speaks BURL (smtplib, swaks and msmtp have no BURL command), so
the commands go through smtplib's raw ``docmd``/``send`` after its real STARTTLS and AUTH.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.imapd import urls
from mailwright.mailauth import KeyStore
from mailwright.store.api import Account, DeliveryTarget, Store
from tests.smtpd.harness import PASSWORD, SmtpServer, add_user, inbox, start_server
from tests.support.backends import Backend

ALICE = "alice@example.test"
BOB = "bob@example.test"
HOST = "imap.example.test"

ATTACHMENT = b"UEsDBBQAAAAIAAAAIQBpbWFnZSBkYXRhIGhlcmU=\r\n"
DRAFT = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: the drawing\r\n"
    b"Message-ID: <drawing@example.test>\r\n"
    b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"The drawing is attached.\r\n"
    b"--b1\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + ATTACHMENT
    + b"--b1--\r\n"
)


@pytest.fixture
async def server(tmp_path: Path, backend: Backend) -> AsyncIterator[SmtpServer]:
    srv = await start_server(tmp_path, outbound=True, backend=backend)
    try:
        yield srv
    finally:
        await srv.stop()


async def _stored(store: Store, account: Account, data: bytes) -> int:
    w = store.blob_writer()
    w.write(data)
    [rec] = await store.deliver(await w.finish(),
                                [DeliveryTarget(account.id, "Drafts", frozenset())])
    return rec.uid


def _enc(address: str) -> str:
    return address.replace("@", "%40")


def _session(server: SmtpServer) -> smtplib.SMTP:
    s = smtplib.SMTP(server.host, server.submission_port, timeout=30)
    s.starttls(context=server.client_ssl())
    s.login(ALICE, PASSWORD)
    s.ehlo()
    return s


def _send(server: SmtpServer, commands: list[bytes],
          rcpts: tuple[str, ...] = (BOB,)) -> list[tuple[int, bytes]]:
    """MAIL, RCPT, then each raw command (a BDAT carries its chunk); every reply."""
    with _session(server) as s:
        assert s.esmtp_features.get("burl") == "imap", s.esmtp_features
        replies = [s.mail(ALICE), *(s.rcpt(r) for r in rcpts)]
        for cmd in commands:
            s.send(cmd)
            replies.append(s.getreply())
        replies.append(s.docmd("NOOP"))
        return replies


async def test_burl_forwards_a_stored_message(server: SmtpServer) -> None:
    store = server.store
    alice = await add_user(store, "alice")
    await add_user(store, "bob")
    uid = await _stored(store, alice, DRAFT)
    base = f"imap://{_enc(ALICE)}@{HOST}/Drafts/;UID={uid}"
    whole = await urls.generate(store, alice, base + f";URLAUTH=submit+{_enc(ALICE)}",
                                "INTERNAL")
    KeyStore(server.ctx.config.server.data_dir).generate("example.test", algorithm="ed25519")
    replies = await asyncio.to_thread(_send, server, [f"BURL {whole} LAST\r\n".encode()],
                                      (BOB, "dave@remote.test"))
    assert [code for code, _ in replies] == [250] * 5, replies
    # the remote copy is queued, DKIM-signed for the author's domain like any submission
    [entry] = await store.queue_list()
    queued = await store.read_blob(entry.blob_id)
    assert b"\r\nDKIM-Signature: " in queued and b"d=example.test" in queued
    assert queued.endswith(DRAFT[DRAFT.index(b"Subject:"):])
    [got] = await inbox(store, BOB)
    # the submission path ran (Return-Path and our Received field on top), then the message
    assert got.startswith(b"Return-Path: <alice@example.test>\r\nReceived: ")
    assert got.endswith(DRAFT[DRAFT.index(b"Subject:"):])

    # BDAT chunks and BURL parts mixed: new header fields, then the draft's body (RFC 4468 3)
    text = await urls.generate(
        store, alice, base + f"/;SECTION=TEXT;URLAUTH=submit+{_enc(ALICE)}", "INTERNAL")
    head = (b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: again\r\n"
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n')
    replies = await asyncio.to_thread(_send, server, [
        b"BDAT %d\r\n" % len(head) + head,
        f"BURL {text}\r\n".encode(),
        b"BDAT 0 LAST\r\n",
    ])
    assert [code for code, _ in replies] == [250] * 6, replies
    mails = await inbox(store, BOB)
    assert len(mails) == 2
    body = DRAFT[DRAFT.index(b"\r\n\r\n") + 4 :]
    assert mails[1].endswith(b"Subject: again\r\n" + head[head.index(b"MIME-Version"):] + body)
    assert ATTACHMENT in mails[1]


async def test_burl_refuses_what_urlfetch_would_refuse(server: SmtpServer) -> None:
    store = server.store
    alice = await add_user(store, "alice")
    bob = await add_user(store, "bob")
    uid = await _stored(store, alice, DRAFT)
    bob_uid = await _stored(store, bob, DRAFT)
    base = f"imap://{_enc(ALICE)}@{HOST}/Drafts/;UID={uid}"
    good = await urls.generate(store, alice, base + f";URLAUTH=submit+{_enc(ALICE)}", "INTERNAL")
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    for_imap = await urls.generate(store, alice, base + f";URLAUTH=user+{_enc(ALICE)}",
                                   "INTERNAL")
    # bob's message, authorized for bob's submissions: alice cannot use it
    bobs = await urls.generate(
        store, bob, f"imap://{_enc(BOB)}@{HOST}/Drafts/;UID={bob_uid};URLAUTH=submit+{_enc(BOB)}",
        "INTERNAL")
    for url in (forged, for_imap, bobs, base, f"{base};URLAUTH=submit+{_enc(ALICE)}",
                "imap://nonsense", "http://example.test/x"):
        replies = await asyncio.to_thread(_send, server, [f"BURL {url} LAST\r\n".encode()])
        code, text = replies[2]
        assert code == 554 and text.startswith(b"5.7.8"), (url, replies)
        assert replies[3][0] == 250  # the session goes on
    # after RESETKEY (the store's reset, as IMAP runs it) a once good URL is refused
    await store.urlauth_reset(alice.id, None)
    replies = await asyncio.to_thread(_send, server, [f"BURL {good} LAST\r\n".encode()])
    assert replies[2][0] == 554, replies
    assert await inbox(store, BOB) == []
    # syntax, and BURL before AUTH (RFC 4468 3: only for authenticated submissions)
    replies = await asyncio.to_thread(_send, server, [b"BURL\r\n", b"BURL a b c\r\n"])
    assert [code for code, _ in replies[2:4]] == [501, 501], replies

    def unauthenticated() -> tuple[int, bytes]:
        with smtplib.SMTP(server.host, server.submission_port, timeout=30) as s:
            s.starttls(context=server.client_ssl())
            s.ehlo()
            assert "burl" not in s.esmtp_features
            return s.docmd("BURL", f"{good} LAST")

    code, _ = await asyncio.to_thread(unauthenticated)
    assert code in (503, 530)
