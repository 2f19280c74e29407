"""A real browser for the web interface's tests: Debian's chromium driven by Playwright.

Playwright's own browser download cannot be reached here (nor in CI), so it launches the
binary scripts/test.sh installs (`chromium`). A missing binary fails the test, it does not skip.

Fixtures (import them into a test module's or folder's conftest.py):

* `browser`: one headless chromium per test module.
* `web_server`: a running `mailwright serve` (tests/support/server.py) with the accounts
  `USER` (a plain user) and `ADMIN` (with the admin role), both with `server.PASSWORD`.
* `page`: a new browser context (its own cookies) and page whose relative URLs go to the
  server's `https` listener; the server's self-signed certificate is accepted.

`sign_in(page, address)` signs in through the form, finding fields by their accessible names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, MailwrightServer

CHROMIUM = os.environ.get("MAILWRIGHT_CHROMIUM", "/usr/bin/chromium")
USER = "alice@example.test"
ADMIN = "root@example.test"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the `test` extra installs it
    sync_playwright = None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None, "playwright is missing: pip install -e '.[test]'"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as p:
        # --no-sandbox: tests run as root in CI, where chromium's sandbox refuses to start.
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("web"))
    srv.add_user(USER)
    srv.add_user(ADMIN)
    srv.cli("user", "set", ADMIN, "--admin", "yes")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def base_url(srv: MailwrightServer) -> str:
    return f"https://127.0.0.1:{srv.port('https')}"


@pytest.fixture
def page(browser: Browser, web_server: MailwrightServer) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, base_url=base_url(web_server),
                                  viewport={"width": 1100, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, address: str = USER, password: str = PASSWORD,
            path: str = "/signin") -> None:
    """Sign in through the form (fields found by their accessible names)."""
    page.goto(path)
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
