"""One queue id everywhere: the SMTP reply, the Received header, the logs and `mailwright queue`.

A real `mailwright serve` over the network: alice submits mail for two remote domains whose MX
is dead (127.0.0.2, nobody listens), so the message stays queued; the id from `250 2.0.0 Ok:
queued as ID` is then the one the operator commands take.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from pathlib import Path

import pytest

from tests.support.dnsserver import DNSServer
from tests.support.server import PASSWORD, MailwrightServer, free_port_base, wait_for

pytestmark = pytest.mark.slow


def test_one_queue_id_from_reply_to_queue_commands(tmp_path: Path) -> None:
    with DNSServer() as dns:
        for domain in ("dead.test", "gone.test"):
            dns.add(domain, "MX", f"10 mx.{domain}.")
            dns.add(f"mx.{domain}", "A", "127.0.0.2")
        a = MailwrightServer(tmp_path / "a", "sender.test",
                             port_base=free_port_base(extra_hosts=("127.0.0.2",), below=31700))
        a.use_dns(dns.config_value)
        a.set_outbound(port=a.port("smtp"), retry_schedule=("1h",))
        a.add_user("alice@sender.test")
        a.start()
        try:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP_SSL("127.0.0.1", a.port("submissions"), timeout=30,
                                  context=ctx) as client:
                client.login("alice@sender.test", PASSWORD)
                client.mail("alice@sender.test")
                client.rcpt("x@dead.test")
                client.rcpt("y@gone.test")
                code, reply = client.data(b"From: alice@sender.test\r\nTo: x@dead.test\r\n"
                                          b"Subject: one id\r\n\r\nhello\r\n")
            assert code == 250
            m = re.fullmatch(r"2\.0\.0 Ok: queued as ([0-9A-F]{12})", reply.decode())
            assert m, reply
            qid = m.group(1)
            listing = wait_for("two attempted entries", lambda: [
                ln for ln in a.cli("queue", "list").splitlines()
                if ln.startswith(f"{qid} ") and "attempts=0" not in ln] or None)
            assert listing is not None
            lines = a.cli("queue", "list").splitlines()
            assert {ln.split()[1] for ln in lines if ln.startswith(f"{qid} ")} == {
                "domain=dead.test", "domain=gone.test"}
            shown = a.cli("queue", "show", qid.lower())
            assert shown.count(f"id: {qid}") == 2
            received = re.search(r"Received: from .*?;", shown, re.S)
            assert received and f" id {qid}" in received.group(0)
            logs = "".join(a.stderr)
            assert f"id={qid}" in logs  # "message accepted" and "queued"
            assert qid in a.cli("queue", "delete", qid)
            assert qid not in a.cli("queue", "list")
            a.cli("queue", "show", qid, expect=1)
        finally:
            a.stop()
