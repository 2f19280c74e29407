"""Account self-service in a real browser: password change, app passwords, two-step sign-in."""

from __future__ import annotations

import imaplib
import re
import ssl

from playwright.sync_api import Page, expect

from mailwright.accounts import totp
from tests.support.browser import sign_in
from tests.support.server import PASSWORD, MailwrightServer


def imap_login(srv: MailwrightServer, user: str, password: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=ctx, timeout=30) as c:
        try:
            c.login(user, password)
        except imaplib.IMAP4.error:
            return False
        c.logout()
        return True


def test_password_change(page: Page, web_server: MailwrightServer) -> None:
    user = "carol@example.test"
    web_server.add_user(user)
    sign_in(page, user)
    page.get_by_role("link", name="Account").click()
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Password", exact=True).click()
    page.get_by_label("Current password").fill("wrong password!")
    page.get_by_label("New password", exact=True).fill("a much better passphrase")
    page.get_by_label("New password again").fill("a much better passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("current password is wrong")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a much better passphrase")
    page.get_by_label("New password again").fill("a much better passphrase")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password has been changed")
    # the new password is the account's everywhere: IMAP takes it, and not the old one
    assert imap_login(web_server, user, "a much better passphrase")
    assert not imap_login(web_server, user, PASSWORD)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, user, "a much better passphrase")


def test_app_password_and_two_step_sign_in(page: Page, web_server: MailwrightServer) -> None:
    user = "dave@example.test"
    web_server.add_user(user)
    sign_in(page, user)
    page.goto("/account/app-passwords")
    page.get_by_label("Name").fill("Phone")
    page.get_by_role("button", name="Create app password").click()
    app_password = page.locator("#created-password").inner_text().strip()
    assert re.fullmatch(r"[a-z2-9]{4}(-[a-z2-9]{4}){4}", app_password)
    expect(page.get_by_role("cell", name="Phone", exact=True)).to_be_visible()
    assert imap_login(web_server, user, app_password)

    page.goto("/account/two-factor")
    page.get_by_role("button", name="Set up two-step sign-in").click()
    expect(page.get_by_role("img", name="QR code")).to_be_visible()
    secret = page.locator("#totp-key").inner_text().strip()
    page.get_by_label("Code from the app").fill(totp.hotp(secret, totp.counter_at()))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("status")).to_contain_text("Two-step sign-in is on")
    # mail apps: the app password still works, the main password alone no longer does
    assert imap_login(web_server, user, app_password)
    assert not imap_login(web_server, user, PASSWORD)

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign-in code")).to_be_visible()
    page.goto("/account/")  # the password alone opens no page
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/signin/code")
    page.get_by_label("Code", exact=True).fill(totp.hotp(secret, totp.counter_at() + 1))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
