"""The browser fixtures of tests/support/browser.py, for the web interface's tests."""

from tests.support.browser import browser, page, web_server

__all__ = ["browser", "page", "web_server"]
