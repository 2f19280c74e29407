"""REQUIRETLS through a real `mailwright serve`: submitted with the parameter over STARTTLS,
kept by the queue, and bounced with 5.7.30 when the destination cannot authenticate its MX."""

from __future__ import annotations

import smtplib
import ssl
import time
from pathlib import Path

from tests.support.dnsserver import DNSServer
from tests.support.server import PASSWORD, MailwrightServer


def test_requiretls_submitted_kept_and_bounced(tmp_path: Path, dns_server: DNSServer) -> None:
    dns_server.set("dest.test", "MX", "10 mx.dest.test.")
    dns_server.set("mx.dest.test", "A", "127.0.0.1")
    srv = MailwrightServer(tmp_path / "srv")
    srv.use_dns(dns_server.config_value)
    srv.set_outbound(port=9, retry_schedule=("1s",))
    alice = f"alice@{srv.domain}"
    srv.add_user(alice)
    with srv:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", srv.port("submission"), timeout=30) as s:
            s.ehlo("client.test")
            assert not s.has_extn("requiretls")  # RFC 8689: only on a TLS session
            s.starttls(context=ctx)
            s.ehlo("client.test")
            assert s.has_extn("requiretls")
            s.login(alice, PASSWORD)
            s.sendmail(alice, ["bob@dest.test"],
                       f"From: {alice}\r\nTo: bob@dest.test\r\nSubject: secret\r\n\r\nx\r\n",
                       mail_options=["REQUIRETLS"])
        for _ in range(300):  # bounded: the queue's first attempt decides
            bounces = srv.messages(alice)
            if bounces:
                break
            time.sleep(0.05)
    [dsn] = bounces
    text = dsn.as_string()
    assert "5.7.30" in text and "REQUIRETLS" in text
