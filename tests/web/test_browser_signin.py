"""Sign-in and sign-out in a real browser (chromium through Playwright)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.browser import USER, sign_in


def test_sign_in_and_out(page: Page) -> None:
    page.goto("/webmail/")
    # not signed in: sent to the sign-in form, which comes back here afterwards
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, USER, path=page.url)
    assert page.url.endswith("/webmail/")
    expect(page.get_by_role("banner")).to_contain_text(USER)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/webmail/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_wrong_password_is_refused(page: Page) -> None:
    page.goto("/signin")
    page.get_by_label("Email").fill(USER)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
