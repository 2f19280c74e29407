"""Sharing (RFC 4314 ACL, RFC 2342 NAMESPACE) through a real client library, imapclient, over
a real socket with STARTTLS: alice shares a folder with bob by SETACL, bob finds it in the
other users' namespace, reads and appends within his rights and is refused beyond them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import imapclient
import pytest
from imapclient.exceptions import IMAPClientError

from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server

MSG = b"From: a@example.test\r\nSubject: plan\r\n\r\nthe plan\r\n"
SHARED = "Other Users/alice@example.test/Projects"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path)
    await srv.add_user("alice")
    await srv.add_user("bob")
    try:
        yield srv
    finally:
        await srv.stop()


def _client(server: ImapServer, user: str) -> imapclient.IMAPClient:
    c = imapclient.IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
    c.starttls(server.client_ssl())
    c.login(f"{user}@example.test", PASSWORD)
    return c


async def test_imapclient_acl_share_between_two_users(server: ImapServer) -> None:
    def run() -> None:
        alice = _client(server, "alice")
        assert b"ACL" in alice.capabilities()
        assert b"RIGHTS=TEXK" in {c.upper() for c in alice.capabilities()}
        alice.create_folder("Projects")
        alice.append("Projects", MSG)
        alice.setacl("Projects", "bob@example.test", "lrsi")
        assert alice.getacl("Projects") == [
            (b"alice@example.test", b"lrswipkxtea"), (b"bob@example.test", b"lrsi")]

        bob = _client(server, "bob")
        ns = bob.namespace()
        assert ns.personal[0][0] == ""
        assert ns.other[0][0] == "Other Users/"
        names = [name for _, _, name in bob.list_folders("Other Users/", "*")]
        assert names == ["Other Users/alice@example.test", SHARED]
        info = bob.select_folder(SHARED)
        assert info[b"EXISTS"] == 1
        assert info[b"READ-WRITE"]
        data = bob.fetch([1], ["BODY[]", "FLAGS"])[1]
        assert data[b"BODY[]"] == MSG
        assert b"\\Seen" in data[b"FLAGS"]  # bob has s: reading marks it seen
        bob.append(SHARED, b"Subject: from bob\r\n\r\nhi\r\n")
        with pytest.raises(IMAPClientError, match="NOPERM"):
            bob.add_flags([1], [b"\\Flagged"])
        with pytest.raises(IMAPClientError, match="NOPERM"):
            bob.getacl(SHARED)
        with pytest.raises(IMAPClientError, match="NOPERM"):
            bob.delete_folder(SHARED)
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            bob.select_folder("Other Users/alice@example.test/INBOX")
        bob.logout()

        assert alice.folder_status("Projects", ["MESSAGES"])[b"MESSAGES"] == 2
        alice.setacl("Projects", "bob@example.test", "-lrsi")  # no rights left: no entry
        assert alice.getacl("Projects") == [(b"alice@example.test", b"lrswipkxtea")]
        alice.logout()

    await asyncio.to_thread(run)
