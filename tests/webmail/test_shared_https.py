"""A shared folder (RFC 4314) in the webmail over real HTTPS, on both store backends: alice
shares a folder over IMAP (imaplib), bob sees and reads it in the webmail under its shared
name, is refused what his rights do not cover, and loses it when alice revokes the share."""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.backends import Backend
from tests.support.server import PASSWORD, MailwrightServer
from tests.support.webclient import WebClient

SHARED = "Other Users/alice@example.test/Projects"


@contextmanager
def _imap(srv: MailwrightServer, user: str) -> Iterator[imaplib.IMAP4_SSL]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=ctx, timeout=30) as c:
        c.login(user, PASSWORD)
        yield c
        c.logout()


def _folder_id(body: str, name: str) -> int | None:
    for m in re.finditer(r'href="/webmail/f/(\d+)"[^>]*>(.*?)</a>', body, re.S):
        if name in m.group(2):
            return int(m.group(1))
    return None


def test_webmail_shared_folder_over_https(tmp_path: Path, backend: Backend) -> None:
    srv = MailwrightServer(tmp_path / "srv")
    srv.edit_config('backend = "sqlite"\ndsn = ""', "\n".join(backend.storage_lines()))
    if backend.name != "sqlite":
        srv.cli("domain", "add", "example.test")  # `init` made it in the SQLite store
    srv.add_user("alice@example.test")
    srv.add_user("bob@example.test")
    srv.start()
    try:
        with _imap(srv, "alice@example.test") as alice:
            assert alice.create("Projects")[0] == "OK"
            msg = b"From: carol@example.test\r\nSubject: roadmap\r\n\r\nQ3 plans\r\n"
            assert alice.append("Projects", "", None, msg)[0] == "OK"
            assert alice._simple_command("SETACL", "Projects", "bob@example.test", "lr")[0] == "OK"
        bob = WebClient(srv)
        assert bob.sign_in("bob@example.test").status == 303
        home = bob.get("/webmail/")
        assert home.status == 200 and SHARED in home.body
        folder = _folder_id(home.body, "Projects")
        assert folder is not None, home.body
        listing = bob.get(f"/webmail/f/{folder}")
        assert listing.status == 200 and "roadmap" in listing.body
        page = bob.get(f"/webmail/m/{folder}/1")
        assert page.status == 200 and "Q3 plans" in page.body
        # lr only: deleting is refused, and the message stays
        denied = bob.post(f"/webmail/f/{folder}/action", {"uid": "1", "action": "delete"})
        assert denied.status == 403
        with _imap(srv, "alice@example.test") as alice:
            status = alice.status("Projects", "(MESSAGES UNSEEN)")
            # reading without s left \Seen as it was (RFC 4314 4)
            assert status[1][0] is not None and b"MESSAGES 1 UNSEEN 1" in status[1][0]
            assert alice._simple_command("DELETEACL", "Projects", "bob@example.test")[0] == "OK"
        assert SHARED not in bob.get("/webmail/").body
        assert bob.get(f"/webmail/f/{folder}").status in (403, 404)
        assert bob.get(f"/webmail/m/{folder}/1").status in (403, 404)
    finally:
        srv.stop()
