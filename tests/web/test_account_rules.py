"""Forwarding and vacation set on the account page reach delivery: the script is stored and
active (as a ManageSieve upload would be), and mail arriving over SMTP gets the reply."""

from __future__ import annotations

import smtplib
import time

from tests.support.server import MailwrightServer, wait_for
from tests.support.webclient import WebClient


def test_vacation_from_the_account_page_answers_mail(web_server: MailwrightServer) -> None:
    user = "frank@example.test"
    web_server.add_user(user)
    c = WebClient(web_server)
    c.sign_in(user)
    c.get("/account/forwarding")
    r = c.post("/account/forwarding", {"vacation": "on", "subject": "Away",
                                       "message": "Back on Monday.", "days": "2",
                                       "forward_to": "", "keep_copy": "on"})
    assert r.status == 200 and "Saved." in r.body
    listing = web_server.cli("sieve", "list", user)
    assert "mailwright-rules ACTIVE" in listing
    assert ":days 2" in web_server.cli("sieve", "get", user, "mailwright-rules")
    # a bad forwarding address is refused, and the saved rules stay as they were
    r = c.post("/account/forwarding", {"forward_to": "not an address", "vacation": "on",
                                       "message": "x"})
    assert r.status == 400 and "not an email address" in r.body

    with smtplib.SMTP("127.0.0.1", web_server.port("smtp"), timeout=30) as s:
        s.sendmail("gina@remote.test", [user],
                   f"From: gina@remote.test\r\nTo: {user}\r\nSubject: hello\r\n"
                   f"Message-ID: <{time.time()}@remote.test>\r\n\r\nHi\r\n")
    # the reply was queued (for a domain that does not exist here, so it fails right after)
    wait_for("the vacation reply", lambda: any(
        "vacation reply from frank@example.test to gina@remote.test" in line
        for line in web_server.stderr))
    assert len(web_server.messages(user)) == 1  # kept as well


def test_filters_page_edits_the_sieve_scripts(web_server: MailwrightServer) -> None:
    user = "hana@example.test"
    web_server.add_user(user)
    c = WebClient(web_server)
    c.sign_in(user)
    c.get("/account/filters")
    bad = c.post("/account/filters", {"name": "mine", "content": 'require "fileinto";\nfileinto',
                                      "activate": "on"})
    assert bad.status == 400 and "Not saved: line 2" in bad.body
    assert "mine" not in web_server.cli("sieve", "list", user)
    good = 'require "fileinto";\nif header :contains "subject" "invoice" { fileinto "Archive"; }\n'
    r = c.post("/account/filters", {"name": "mine", "content": good, "activate": "on"})
    assert r.status == 200 and "Saved mine." in r.body
    assert "mine ACTIVE" in web_server.cli("sieve", "list", user)
    assert '"invoice" { fileinto "Archive"; }' in web_server.cli("sieve", "get", user, "mine")
    # the active script cannot be deleted; deactivated, it can
    assert c.post("/account/filters", {"name": "mine", "action": "delete"}).status == 400
    c.post("/account/filters", {"name": "mine", "action": "deactivate"})
    assert c.post("/account/filters", {"name": "mine", "action": "delete"}).status == 200
    assert "mine" not in web_server.cli("sieve", "list", user)
