"""The rule editor, junk training and the mail-app set-up in a real browser, against a real
server: rules made in the form are filed by Sieve at SMTP delivery; a script changed by hand
is shown read-only and never saved over; "Junk" moves a message and the classifier learns it."""

from __future__ import annotations

import imaplib
import plistlib
import re
import smtplib
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

from playwright.sync_api import ConsoleMessage, Page, expect

from tests.support.browser import sign_in
from tests.support.server import PASSWORD, MailwrightServer, wait_for
from tests.support.webclient import WebClient


def send(srv: MailwrightServer, to: str, subject: str, sender: str = "gina@remote.test",
         body: str = "Hello there.") -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
        s.sendmail(sender, [to], f"From: Gina <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
                                 f"Message-ID: <{time.time()}.{subject.replace(' ', '')}@remote.test>"
                                 f"\r\n\r\n{body}\r\n")


def messages(srv: MailwrightServer, user: str, mailbox: str = "INBOX") -> list[EmailMessage]:
    """`srv.messages` from a thread of its own (Playwright's sync API runs a loop here)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(srv.messages, user, mailbox).result()


def flags_in(srv: MailwrightServer, user: str, mailbox: str) -> list[str]:
    """The FLAGS of every message of `mailbox`, over IMAP."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=ctx, timeout=30) as c:
        c.login(user, PASSWORD)
        c.select(mailbox, readonly=True)
        typ, data = c.fetch("1:*", "(FLAGS)")
        c.logout()
    return [d.decode() for d in data if isinstance(d, bytes)] if typ == "OK" else []


def add_rule(page: Page, conditions: list[tuple[str, str, str]], actions: list[tuple[str, str]],
             *, any_of: bool = False) -> None:
    """Fill the New rule form: conditions (field, comparison, value), actions (kind, folder or
    text), and save it."""
    page.get_by_label("Apply the actions when").select_option("any" if any_of else "all")
    for i, (field, op, value) in enumerate(conditions, 1):
        page.get_by_label(f"Condition {i}: field").select_option(field)
        page.get_by_label(f"Condition {i}: comparison").select_option(op)
        page.get_by_label(f"Condition {i}: value").fill(value)
    for i, (kind, argument) in enumerate(actions, 1):
        page.get_by_label(f"Action {i}", exact=True).select_option(kind)
        if kind in ("move", "copy"):
            page.get_by_label(f"Action {i}: folder").select_option(argument)
        elif argument:
            page.get_by_label(f"Action {i}: address or text").fill(argument)
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_contain_text("Rules saved")


def test_rules_made_in_the_editor_file_mail_at_delivery(page: Page,
                                                          web_server: MailwrightServer) -> None:
    user = "ines@example.test"
    web_server.add_user(user)
    sign_in(page, user)
    page.goto("/account/filters")
    expect(page.get_by_text("No rules yet.")).to_be_visible()
    add_rule(page, [("subject", "contains", "invoice")], [("move", "Archive"), ("read", "")])
    add_rule(page, [("from", "is", "boss@remote.test"), ("size", "over", "1M")],
             [("flag", ""), ("stop", "")], any_of=True)
    add_rule(page, [("subject", "matches", "*[spam]*")], [("discard", "")])
    # a forward to the account itself is refused, and nothing is saved
    page.get_by_label("Condition 1: value").fill("loop")
    page.get_by_label("Action 1", exact=True).select_option("redirect")
    page.get_by_label("Action 1: address or text").fill(user)
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be forwarded to the same account")
    rules = page.locator("ol.rules > li")
    expect(rules).to_have_count(3)
    expect(rules.nth(0)).to_contain_text("If Subject contains “invoice”: Move to folder “Archive”")
    expect(rules.nth(1)).to_contain_text("From is “boss@remote.test” or Size greater than “1M”")

    # the vacation reply joins the rules in one script; the rules stay
    page.goto("/account/forwarding")
    page.get_by_label("Answer mail with a vacation reply").check()
    page.get_by_label("Message").fill("Back on Monday.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    script = web_server.cli("sieve", "get", user, "mailwright-rules")
    assert 'fileinto "Archive";' in script and "vacation" in script
    assert script.index('fileinto "Archive"') < script.index("vacation ")
    assert "mailwright-rules ACTIVE" in web_server.cli("sieve", "list", user)

    # round trip: the script read back shows each rule in the form
    page.goto("/account/filters")
    page.get_by_role("link", name="Edit rule 1").click()
    expect(page.get_by_role("heading", name="Edit rule 1")).to_be_visible()
    expect(page.get_by_label("Condition 1: field")).to_have_value("subject")
    expect(page.get_by_label("Condition 1: value")).to_have_value("invoice")
    expect(page.get_by_label("Action 1", exact=True)).to_have_value("move")
    expect(page.get_by_label("Action 1: folder")).to_have_value("Archive")
    expect(page.get_by_label("Action 2", exact=True)).to_have_value("read")
    page.get_by_label("Condition 1: value").fill("Invoice")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_contain_text("Rules saved")
    expect(page.locator("ol.rules > li").nth(0)).to_contain_text("contains “Invoice”")

    # mail over SMTP, filed by the rules at delivery
    send(web_server, user, "Invoice 42 for November")
    send(web_server, user, "Status report", sender="boss@remote.test")
    send(web_server, user, "Buy now [spam] offer")
    send(web_server, user, "Lunch?")
    wait_for("the invoice in Archive", lambda: len(messages(web_server, user, "Archive")) == 1)
    wait_for("two in the Inbox", lambda: len(messages(web_server, user, "INBOX")) == 2)
    assert messages(web_server, user, "Archive")[0]["Subject"] == "Invoice 42 for November"
    assert "\\Seen" in flags_in(web_server, user, "Archive")[0]
    inbox = {m["Subject"]: m for m in messages(web_server, user)}
    assert set(inbox) == {"Status report", "Lunch?"}  # the [spam] one was discarded
    flags = flags_in(web_server, user, "INBOX")
    assert sum("\\Flagged" in f for f in flags) == 1

    # moving a rule up, deleting one
    page.get_by_role("button", name="Move rule 3 up").click()
    expect(page.locator("ol.rules > li").nth(1)).to_contain_text("[spam]")
    page.get_by_role("button", name="Delete rule 2").click()
    expect(page.locator("ol.rules > li")).to_have_count(2)
    assert "[spam]" not in web_server.cli("sieve", "get", user, "mailwright-rules")


def test_a_script_changed_by_hand_is_shown_read_only(page: Page,
                                                      web_server: MailwrightServer) -> None:
    user = "jana@example.test"
    web_server.add_user(user)
    sign_in(page, user)
    page.goto("/account/filters")
    add_rule(page, [("subject", "contains", "report")], [("move", "Archive")])
    # edited as text in the raw editor: still valid Sieve, but no longer the editor's
    page.get_by_role("link", name="mailwright-rules").click()
    expect(page.get_by_role("note").filter(has_text="rule editor's script")).to_be_visible()
    text = page.get_by_label("Script", exact=True).input_value()
    hand = text.replace('fileinto "Archive";', 'fileinto "Archive";\r\n    stop;')
    page.get_by_label("Script", exact=True).fill(hand)
    page.get_by_role("button", name="Save script").click()
    expect(page.get_by_role("status")).to_contain_text("Saved mailwright-rules.")
    stored = web_server.cli("sieve", "get", user, "mailwright-rules")
    assert "stop;" in stored

    expect(page.get_by_role("note").filter(has_text="was changed by hand")).to_be_visible()
    expect(page.get_by_label("The script mailwright-rules, read-only")).to_contain_text("stop;")
    expect(page.get_by_role("button", name="Save rule")).to_have_count(0)
    page.goto("/account/forwarding")
    expect(page.get_by_role("note")).to_contain_text("changed by hand")
    expect(page.get_by_role("button", name="Save")).to_be_disabled()

    # below the browser: a forged form post changes nothing either
    c = WebClient(web_server)
    c.sign_in(user)
    c.get("/account/filters")
    r = c.post("/account/filters", {"action": "rule_save", "field1": "subject", "op1": "is",
                                    "value1": "x", "action1": "discard"})
    assert r.status == 400 and "changed by hand" in r.body
    c.get("/account/forwarding")
    r = c.post("/account/forwarding", {"vacation": "on", "message": "away", "days": "3"})
    assert r.status == 400
    assert web_server.cli("sieve", "get", user, "mailwright-rules") == stored

    # kept under another name, the editor starts afresh
    page.goto("/account/filters")
    page.get_by_role("button", name="Keep it under another name and start new rules").click()
    expect(page.get_by_role("status")).to_contain_text("Your script is kept as")
    expect(page.get_by_text("No rules yet.")).to_be_visible()
    listing = web_server.cli("sieve", "list", user)
    assert "mailwright-rules (by hand," in listing and "ACTIVE" in listing


def test_junk_training_moves_and_teaches_the_classifier(page: Page,
                                                        web_server: MailwrightServer) -> None:
    user = "kim@example.test"
    web_server.add_user(user)
    send(web_server, user, "Cheap watches today")
    send(web_server, user, "Minutes of the meeting")
    wait_for("two in the Inbox", lambda: len(messages(web_server, user)) == 2)
    sign_in(page, user)
    page.goto("/account/")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Junk training").click()
    learned = page.locator("#learned-own")
    expect(learned).to_have_text("0 ham, 0 spam")
    inbox = page.get_by_role("table", name="Inbox")
    row = inbox.get_by_role("row").filter(has_text="Cheap watches today")
    expect(row).to_contain_text("Not spam, score")  # the verdict written at delivery
    row.get_by_role("button", name="Junk: Cheap watches today").click()
    expect(page.get_by_role("status")).to_contain_text("Moved to Junk and learned.")
    expect(learned).to_have_text("0 ham, 1 spam")
    assert [m["Subject"] for m in messages(web_server, user, "Junk")] == ["Cheap watches today"]
    assert [m["Subject"] for m in messages(web_server, user)] == ["Minutes of the meeting"]
    assert "$Junk" in flags_in(web_server, user, "Junk")[0]
    expect(page.get_by_role("table", name="Junk").get_by_role("row")
           .filter(has_text="Cheap watches today")).to_be_visible()

    # a change of mind: back to the Inbox, the lesson taken back and taught as ham
    page.get_by_role("button", name="Not junk: Cheap watches today").click()
    expect(page.get_by_role("status")).to_contain_text("Moved to the Inbox and learned.")
    expect(learned).to_have_text("1 ham, 0 spam")
    assert len(messages(web_server, user)) == 2 and not messages(web_server, user, "Junk")


def test_mobileconfig_profile_has_what_an_apple_device_needs(web_server: MailwrightServer) -> None:
    user = "lena@example.test"
    web_server.add_user(user)
    c = WebClient(web_server)
    c.sign_in(user)
    r = c.request("GET", "/account/clients/mailwright.mobileconfig")
    assert r.status == 200
    assert r.header("Content-Type") == "application/x-apple-aspen-config"
    assert "attachment" in (r.header("Content-Disposition") or "")
    assert PASSWORD not in r.body
    profile = plistlib.loads(r.body.encode())
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    (mail,) = profile["PayloadContent"]
    host = web_server.hostname
    assert mail["PayloadType"] == "com.apple.mail.managed" and mail["PayloadVersion"] == 1
    assert mail["EmailAccountType"] == "EmailTypeIMAP" and mail["EmailAddress"] == user
    assert mail["IncomingMailServerHostName"] == host == mail["OutgoingMailServerHostName"]
    assert mail["IncomingMailServerPortNumber"] == web_server.port("imaps")
    assert mail["OutgoingMailServerPortNumber"] == web_server.port("submissions")
    assert mail["IncomingMailServerUseSSL"] is True and mail["OutgoingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == user == mail["OutgoingMailServerUsername"]
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    for key in ("IncomingPassword", "OutgoingPassword"):
        assert key not in mail
    ids = [profile["PayloadIdentifier"], mail["PayloadIdentifier"]]
    uuids = [profile["PayloadUUID"], mail["PayloadUUID"]]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"[A-Za-z0-9.@_-]+", i) for i in ids)
    assert len(set(uuids)) == 2 and all(str(uuid.UUID(u)).upper() == u for u in uuids)
    # another account's profile has its own identifiers (a device may hold both)
    other = WebClient(web_server)
    web_server.add_user("lena2@example.test")
    other.sign_in("lena2@example.test")
    second = plistlib.loads(other.request("GET", "/account/clients/mailwright.mobileconfig")
                            .body.encode())
    assert second["PayloadContent"][0]["PayloadUUID"] not in uuids
    assert second["PayloadIdentifier"] not in ids
    # signed out, there is no profile
    assert WebClient(web_server).request("GET", "/account/clients/mailwright.mobileconfig") \
        .status in (302, 303, 401)


def test_mail_apps_page_shows_the_qr_code_under_the_csp(page: Page,
                                                         web_server: MailwrightServer) -> None:
    violations: list[str] = []

    def console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text:
            violations.append(msg.text)

    page.on("console", console)
    sign_in(page, "alice@example.test")
    page.goto("/account/clients")
    qr = page.locator("figure.qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] > 80
    expect(page.locator("figure.qr")).to_contain_text(
        "/account/clients/mailwright.mobileconfig")
    assert not violations, violations
