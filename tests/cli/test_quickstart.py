"""`mailwright quickstart EMAIL` on an empty directory, then `serve` on the result and an IMAP
login with the password it printed."""

from __future__ import annotations

import imaplib
import re
import ssl
import subprocess
import sys
from pathlib import Path

from tests.support.server import MailwrightServer, free_port_base


def test_quickstart_then_serve_and_log_in_with_the_printed_password(tmp_path: Path) -> None:
    base = free_port_base()
    d = tmp_path / "fresh"
    r = subprocess.run(
        [sys.executable, "-m", "mailwright", "quickstart", "alice@example.org", "--dir", str(d),
         "--port-base", str(base), "--bind", "127.0.0.1"],
        capture_output=True, text=True, timeout=180,
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    m = re.search(r"^  password: (\S+)$", out, re.M)
    assert m, out
    password = m.group(1)
    assert len(password) >= 20
    # DNS records with both DKIM keys, the client settings and the next steps
    assert "example.org. 3600 IN MX 10 mail.example.org." in out
    assert re.search(r'_domainkey\.example\.org\. 3600 IN TXT "v=DKIM1; k=rsa; p=', out)
    assert re.search(r'_domainkey\.example\.org\. 3600 IN TXT "v=DKIM1; k=ed25519; p=', out)
    assert "_dmarc.example.org. 3600 IN TXT" in out
    assert f"IMAP  mail.example.org, port {base + 993} with TLS" in out
    assert f"SMTP  mail.example.org, port {base + 465} with TLS" in out
    assert "Next steps" in out and "serve" in out
    assert password not in (d / "mailwright.toml").read_text()
    # a second run refuses to overwrite
    again = subprocess.run(
        [sys.executable, "-m", "mailwright", "quickstart", "alice@example.org", "--dir", str(d)],
        capture_output=True, text=True, timeout=180)
    assert again.returncode == 1 and "--force" in again.stderr

    server = MailwrightServer(d, init=False, port_base=base)
    assert "postmaster@example.org -> alice@example.org" in server.cli("alias", "list")
    with server:
        ctx = ssl.create_default_context(cafile=str(d / "tls" / "cert.pem"))
        with imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=ctx) as imap:
            typ, _ = imap.login("alice@example.org", password)
            assert typ == "OK"
            typ, data = imap.select("INBOX")
            assert typ == "OK" and data == [b"0"]
