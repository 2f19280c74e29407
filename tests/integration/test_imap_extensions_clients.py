"""The extensions and old/new-client rules of docs/imap.md through a real client library
(imapclient) over real sockets and TLS: \\Recent, UTF-8 downgrade, PREVIEW, OBJECTID, METADATA,
SAVEDATE, PARTIAL, QUOTA=RES-MESSAGE and MULTISEARCH."""

from __future__ import annotations

import asyncio
import email.header
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import imapclient
import pytest

from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server

USER = "alice@example.test"

INTL = (
    "From: Jürgen <jürgen@müller.example>\r\nTo: alice@example.test\r\n"
    "Subject: Grüße aus Köln\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nHallo Alice,\r\n"
    "  bis bald.\r\n"
).encode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path)
    await srv.add_user()
    try:
        yield srv
    finally:
        await srv.stop()


def _client(server: ImapServer) -> imapclient.IMAPClient:
    c = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
    c.starttls(server.client_ssl())
    c.login(USER, PASSWORD)
    return c


async def test_imapclient_recent_downgrade_preview_objectid(server: ImapServer) -> None:
    def run() -> None:
        c = _client(server)
        caps = c.capabilities()
        for cap in (b"PREVIEW", b"OBJECTID", b"STATUS=DELETED", b"UTF8=ACCEPT"):
            assert cap in caps
        c.append("INBOX", INTL)
        # RFC 3501 2.3.2: the first session to select sees the message as recent
        info = c.select_folder("INBOX")
        assert info[b"RECENT"] == 1
        data = c.fetch([1], ["ENVELOPE", "FLAGS", "PREVIEW", "EMAILID", "THREADID"])[1]
        assert b"\\Recent" in data[b"FLAGS"]
        # RFC 6855 7 / RFC 6857: no UTF8=ACCEPT, so the ENVELOPE is ASCII with encoded words
        subject = data[b"ENVELOPE"].subject
        assert subject.isascii()
        assert str(email.header.make_header(email.header.decode_header(subject.decode()))) == (
            "Grüße aus Köln")
        assert data[b"PREVIEW"].decode() == "Hallo Alice, bis bald."
        assert data[b"EMAILID"][0].startswith(b"M")
        assert data[b"THREADID"] is None
        status = c.folder_status("INBOX", ["MESSAGES", "RECENT"])
        assert status[b"RECENT"] == 0  # taken by this session
        mailboxid = c.folder_status("INBOX", ["MAILBOXID"])[b"MAILBOXID"]
        assert mailboxid[0].startswith(b"F")
        c.logout()

        other = _client(server)
        other.enable("UTF8=ACCEPT")
        info = other.select_folder("INBOX", readonly=True)
        assert info[b"RECENT"] == 0
        data = other.fetch([1], ["ENVELOPE"])[1]
        assert data[b"ENVELOPE"].subject == "Grüße aus Köln".encode()
        other.logout()

    await asyncio.to_thread(run)


async def test_imapclient_metadata_savedate_partial_quota_multisearch(server: ImapServer) -> None:
    """RFC 5464 METADATA (and RFC 9590 LIST-METADATA), RFC 8514 SAVEDATE, RFC 9394 PARTIAL,
    RFC 9208 QUOTA=RES-MESSAGE and RFC 7377 MULTISEARCH through imapclient over TLS: its own
    FETCH (with modifiers) and quota calls, and its command/response machinery for the
    commands it has no method for."""
    from imapclient.response_parser import parse_response

    acc = await server.store.find_account(USER)
    assert acc is not None
    await server.store.set_message_quota(acc.id, 100)

    def run() -> None:
        c = _client(server)
        caps = c.capabilities()
        for cap in (b"METADATA", b"METADATA-SERVER", b"LIST-METADATA", b"SAVEDATE", b"PARTIAL",
                    b"MULTISEARCH", b"QUOTA=RES-MESSAGE", b"UIDONLY", b"REPLACE",
                    b"INPROGRESS"):
            assert cap in caps, cap
        for i in range(3):
            c.append("INBOX", b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
        # METADATA: imapclient sends the command, parses the METADATA response
        c._raw_command_untagged(b"SETMETADATA", [b"INBOX", b'(/private/comment "Inbox note")'],
                                uid=False, response_name="OK")
        data = c._raw_command_untagged(b"GETMETADATA", [b"INBOX", b"/private/comment"],
                                       uid=False, response_name="METADATA")
        assert parse_response(data) == (b"INBOX", (b"/private/comment", b"Inbox note"))
        data = c._raw_command_untagged(
            b"LIST", [b'""', b'"*"', b"RETURN", b"(METADATA", b"(/private/comment))"],
            uid=False, response_name="METADATA")
        assert (b"INBOX", (b"/private/comment", b"Inbox note")) in [
            parse_response([d]) for d in data]
        # SAVEDATE as a FETCH item, PARTIAL as a FETCH modifier (imapclient's fetch)
        c.select_folder("INBOX")
        got = c.fetch([1, 2, 3], ["SAVEDATE"], modifiers=["PARTIAL -1:-2"])
        assert sorted(got) == [2, 3]
        from imapclient.datetime_util import parse_to_datetime

        for v in got.values():
            assert isinstance(parse_to_datetime(v[b"SAVEDATE"]), datetime)
        # QUOTA with both resources
        quotas = c.get_quota()
        assert [(q.resource, q.usage, q.limit) for q in quotas] == [("MESSAGE", 3, 100)]
        # MULTISEARCH: one ESEARCH per mailbox with matches
        data = c._raw_command_untagged(b"ESEARCH", [b"IN", b"(personal)", b"SUBJECT", b"m1"],
                                       uid=False, response_name="ESEARCH")
        assert len(data) == 1 and b'MAILBOX INBOX' in data[0] and data[0].endswith(b"UID ALL 2")
        c.logout()

    await asyncio.to_thread(run)
