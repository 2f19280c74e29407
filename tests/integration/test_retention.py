"""Retention: the running server expunges old mail from Trash and Junk, like any expunge."""

from __future__ import annotations

import imaplib
import os
import ssl
import time
from pathlib import Path

from tests.support.server import PASSWORD, MailwrightServer


def test_retention_running_server_expunges_old_trash(tmp_path: Path) -> None:
    srv = MailwrightServer(tmp_path / "r")
    srv.add_user("alice@example.test")
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp", ".Trash/cur", ".Trash/new", ".Trash/tmp"):
        (md / sub).mkdir(parents=True)
    old = time.time() - 40 * 86400
    for name, body in (("old", b"Subject: old\r\n\r\nforty days\r\n"),
                       ("new", b"Subject: new\r\n\r\ntoday\r\n")):
        f = md / ".Trash" / "cur" / f"{name}:2,S"
        f.write_bytes(body)
        if name == "old":
            os.utime(f, (old, old))
    inbox_old = md / "cur" / "inbox-old:2,S"
    inbox_old.write_bytes(b"Subject: kept\r\n\r\nINBOX keeps everything\r\n")
    os.utime(inbox_old, (old, old))
    srv.cli("import", "maildir", str(md), "--user", "alice@example.test")
    srv.edit_config("[outbound]", '[retention]\ninterval = "1s"\n\n[outbound]')
    srv.start()
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=ctx)
        m.login("alice@example.test", PASSWORD)
        m.select("Trash")
        deadline = time.monotonic() + 30
        subjects: list[bytes] = []
        while time.monotonic() < deadline:
            m.noop()
            _typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
            if subjects == [b"Subject: new"]:
                break
            time.sleep(0.5)
        assert subjects == [b"Subject: new"]
        m.select("INBOX")
        _typ, data = m.search(None, "ALL")
        assert data[0].split() == [b"1"]  # INBOX has no retention rule
        m.logout()
    finally:
        srv.stop()
