"""Administration in a real browser: an administrator creates a user, who can then sign in."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.browser import ADMIN, USER, sign_in
from tests.support.server import MailwrightServer
from tests.web.test_browser_account import imap_login


def test_admin_creates_a_user(page: Page, web_server: MailwrightServer) -> None:
    sign_in(page, ADMIN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Accounts").click()
    page.get_by_label("Address").fill("erin@example.test")
    page.get_by_label("Password").fill("erin's long password")
    page.get_by_label("Quota (MiB, 0 for none)").fill("50")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Added the account erin@example.test")
    expect(page.get_by_role("link", name="erin@example.test")).to_be_visible()
    assert "erin@example.test quota=52428800" in web_server.cli("user", "list")
    assert imap_login(web_server, "erin@example.test", "erin's long password")

    # the new account disabled from its page: it can no longer log in
    page.get_by_role("link", name="erin@example.test").click()
    page.get_by_label("Disabled").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    assert not imap_login(web_server, "erin@example.test", "erin's long password")


def test_admin_queue_and_dns_pages_render(page: Page, web_server: MailwrightServer) -> None:
    sign_in(page, ADMIN)
    page.goto("/admin/queue")
    expect(page.get_by_role("heading", name="Outbound queue")).to_be_visible()
    page.goto("/admin/dkim")
    page.get_by_label("Domain").fill("example.test")
    page.get_by_label("Algorithm").select_option("ed25519")
    page.get_by_role("button", name="Make key").click()
    expect(page.get_by_role("status")).to_contain_text("Made the ed25519 key")
    expect(page.locator("pre").first).to_contain_text("v=DKIM1")


def test_non_admin_is_refused(page: Page) -> None:
    sign_in(page, USER)
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    response = page.goto("/admin/accounts")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
