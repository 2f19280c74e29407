"""Screenshots of the web interface's main pages for docs/web.md.

Run from the repository: `PYTHONPATH=src python3 scripts/web_screenshots.py [NAME ...]`.
Starts a throwaway server (tests/support/server.py, with a test DNS server so that a message
can bounce), signs in with Debian's chromium through Playwright and writes PNG files to
docs/web/: all of them, or only the NAMEs given (e.g. `admin-trace admin-spam`).
"""

from __future__ import annotations

import smtplib
import ssl
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.support.browser import ADMIN, CHROMIUM, USER, base_url, sign_in  # noqa: E402
from tests.support.dnsserver import DNSServer  # noqa: E402
from tests.support.server import PASSWORD, MailwrightServer, wait_for  # noqa: E402

OUT = REPO / "docs" / "web"
ONLY: set[str] = set()


def save(page: object, name: str, *, full_page: bool = False) -> None:
    if not ONLY or name in ONLY:
        page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)  # type: ignore[attr-defined]


def main() -> None:
    ONLY.update(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, DNSServer() as dns:
        dns.add("nullmx.test", "MX", "0 .")
        srv = MailwrightServer(Path(tmp))
        srv.use_dns(dns.config_value)
        for user in (USER, ADMIN, "bob@example.test"):
            srv.add_user(user)
        srv.cli("user", "set", ADMIN, "--admin", "yes")
        srv.cli("user", "set", "bob@example.test", "--quota", "104857600",
                "--send-as", "sales@example.test")
        srv.cli("alias", "add", "sales@example.test", USER, "bob@example.test")
        srv.cli("dkim", "generate", "example.test", "--algorithm", "ed25519")
        srv.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM,
                                            args=["--no-sandbox", "--disable-dev-shm-usage"])
                shots(browser, srv)
                browser.close()
        finally:
            srv.stop()


def shots(browser: object, srv: MailwrightServer) -> None:
    def page_for(width: int, height: int) -> object:
        ctx = browser.new_context(ignore_https_errors=True,  # type: ignore[attr-defined]
                                  base_url=base_url(srv),
                                  viewport={"width": width, "height": height})
        return ctx.new_page()

    page = page_for(1100, 700)
    page.goto("/signin")
    save(page, "signin")
    sign_in(page, USER)
    account_examples(page, srv)
    for path, name in (("/account/", "account"), ("/account/app-passwords", "app-passwords"),
                       ("/account/forwarding", "forwarding"), ("/account/clients", "clients"),
                       ("/account/filters", "filters"), ("/account/junk", "junk")):
        page.goto(path)
        save(page, name, full_page=True)
    page.goto("/account/two-factor")
    page.get_by_role("button", name="Set up two-step sign-in").click()
    save(page, "two-factor", full_page=True)

    admin = page_for(1100, 700)
    sign_in(admin, ADMIN)
    for path, name in (("/admin/accounts", "admin-accounts"),
                       ("/admin/accounts/bob@example.test", "admin-account"),
                       ("/admin/aliases", "admin-aliases"), ("/admin/dkim", "admin-dkim"),
                       ("/admin/dns?domain=example.test", "admin-dns"),
                       ("/admin/queue", "admin-queue")):
        admin.goto(path)
        save(admin, name, full_page=True)

    submit(srv)
    admin.goto("/admin/trace")
    admin.get_by_label("Message-ID or queue id").fill("<launch-plan@example.test>")
    admin.get_by_role("button", name="Trace").click()
    admin.get_by_text("Report sent").wait_for()
    save(admin, "admin-trace", full_page=True)
    admin.goto("/admin/spam")
    admin.get_by_label("Junk threshold", exact=True).fill("4.5")
    admin.get_by_label("DNS block lists").fill("zen.spamhaus.org")
    admin.get_by_role("button", name="Save", exact=True).click()
    save(admin, "admin-spam", full_page=True)

    phone = page_for(390, 844)
    sign_in(phone, USER)
    phone.goto("/account/")
    save(phone, "phone-account", full_page=True)


def submit(srv: MailwrightServer) -> None:
    """The administrator sends a message to a user and to a domain that takes no mail."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    msg = EmailMessage()
    msg["From"] = ADMIN
    msg["To"] = f"{USER}, dana@nullmx.test"
    msg["Subject"] = "Launch plan"
    msg["Message-ID"] = "<launch-plan@example.test>"
    msg.set_content("The plan is attached in spirit.\n")
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), context=ctx) as client:
        client.login(ADMIN, PASSWORD)
        client.send_message(msg)
    wait_for("the bounce", lambda: "dsn" in srv.cli("trace", "launch-plan@example.test",
                                                   expect=0))


def account_examples(page: Any, srv: MailwrightServer) -> None:
    """Two rules made in the editor, and mail for the junk training page."""
    for subject, sender in (("Invoice 2026-118", "billing@shop.test"),
                            ("You have WON a prize", "lucky@prize.test"),
                            ("Minutes of Monday's meeting", "carol@partner.test")):
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as s:
            s.sendmail(sender, [USER], f"From: {sender}\r\nTo: {USER}\r\nSubject: {subject}\r\n"
                                       f"Date: {formatdate()}\r\nMessage-ID: <{time.time()}@example.test>"
                                       "\r\n\r\nHello.\r\n")
    page.goto("/account/filters")
    for conditions, actions in (
            ([("subject", "contains", "invoice")], [("move", "Archive"), ("read", "")]),
            ([("header", "contains", "announce.example.test"), ("size", "over", "2M")],
             [("flag", ""), ("stop", "")])):
        for i, (field, op, value) in enumerate(conditions, 1):
            page.get_by_label(f"Condition {i}: field").select_option(field)
            page.get_by_label(f"Condition {i}: comparison").select_option(op)
            page.get_by_label(f"Condition {i}: value").fill(value)
            if field == "header":
                page.get_by_label(f"Condition {i}: header name").fill("List-Id")
        for i, (kind, folder) in enumerate(actions, 1):
            page.get_by_label(f"Action {i}", exact=True).select_option(kind)
            if folder:
                page.get_by_label(f"Action {i}: folder").select_option(folder)
        page.get_by_role("button", name="Save rule").click()
        page.get_by_role("status").wait_for()
    page.goto("/account/junk")
    page.get_by_role("button", name="Junk: You have WON a prize").click()
    page.get_by_role("status").wait_for()


if __name__ == "__main__":
    main()
