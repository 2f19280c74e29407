"""The HTML sanitiser against the XSS corpus, and what it must keep."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from mailwright.web.webmail.sanitize import (
    clean_style,
    frame_csp,
    frame_document,
    sanitize_html,
)
from tests.webmail.xss_corpus import PAYLOADS, REMOTE

_FORBIDDEN_TAGS = {"script", "style", "svg", "math", "iframe", "object", "embed", "form",
                   "meta", "link", "base", "input", "button", "textarea", "video", "audio",
                   "source", "picture", "frame", "applet", "marquee", "title", "noscript"}
_URL_ATTRS = {"href", "src", "srcset", "action", "formaction", "background", "poster", "data",
              "xlink:href", "lowsrc", "dynsrc"}


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _check_safe(html: str) -> None:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag not in _FORBIDDEN_TAGS, (tag, html)
        for name, value in attrs:
            assert not name.startswith("on"), (name, html)
            value = (value or "").strip().lower()
            if name in _URL_ATTRS:
                assert value.startswith(("https:", "http:", "mailto:", "/webmail/")), html
                assert REMOTE not in value or name == "href", html
            if name == "style":
                for bad in ("url(", "expression", "\\", "/*", "binding", "import"):
                    assert bad not in value, html
    assert "<script" not in html.lower()


@pytest.mark.parametrize(("name", "payload"), PAYLOADS, ids=[n for n, _ in PAYLOADS])
def test_sanitize_xss_corpus(name: str, payload: str) -> None:
    clean = sanitize_html(payload)
    _check_safe(clean.html)
    # remote loads stay blocked until asked, and are counted
    assert f"src=\"https://{REMOTE}" not in clean.html


@pytest.mark.parametrize(("name", "payload"), PAYLOADS, ids=[n for n, _ in PAYLOADS])
def test_sanitize_xss_corpus_with_remote_images_allowed(name: str, payload: str) -> None:
    _check_safe_remote(sanitize_html(payload, allow_remote=True).html)


def _check_safe_remote(html: str) -> None:
    parser = _Collect()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in _FORBIDDEN_TAGS
        for name, value in attrs:
            assert not name.startswith("on")
            if name in _URL_ATTRS:
                assert (value or "").lower().startswith(("https:", "http:", "mailto:"))
                assert name in ("href", "src")


def test_sanitize_remote_image_blocked_and_counted() -> None:
    clean = sanitize_html('<p>Hi</p><img src="https://a.example/x.png" alt="logo">'
                          '<img src="http://b.example/y.png">')
    assert clean.blocked == 2
    assert "a.example" not in clean.html and "b.example" not in clean.html
    assert 'alt="logo"' in clean.html


def test_sanitize_remote_image_allowed_when_asked() -> None:
    clean = sanitize_html('<img src="https://a.example/x.png">', allow_remote=True)
    assert clean.blocked == 0
    assert 'src="https://a.example/x.png"' in clean.html


def test_sanitize_cid_image_rewritten_to_our_url() -> None:
    urls = {"logo@example.test": "/webmail/m/1/2/part/1.2"}
    clean = sanitize_html('<img src="cid:logo@example.test"><img src="cid:missing@x">',
                          cid_url=urls.get)
    assert 'src="/webmail/m/1/2/part/1.2"' in clean.html
    assert "missing" not in clean.html


def test_sanitize_cid_not_a_link() -> None:
    assert "href" not in sanitize_html('<a href="cid:x@y">x</a>', cid_url=lambda c: "/x").html


def test_sanitize_relative_links_dropped() -> None:
    # a relative URL would point at our own pages (a GET to /webmail/... from the mail)
    html = sanitize_html('<a href="/webmail/logout">x</a><img src="/account/">').html
    assert "/webmail/logout" not in html and "/account" not in html


def test_sanitize_keeps_ordinary_mail() -> None:
    src = ('<table border="0" cellpadding="4"><tr><td style="color: #333; font-weight: bold">'
           'Total</td><td align="right">10 &euro;</td></tr></table>'
           '<p>See <a href="https://example.org/x?a=1&amp;b=2">the page</a> or '
           '<a href="mailto:bob@example.org">write</a>.</p><blockquote>quoted</blockquote>')
    html = sanitize_html(src).html
    assert "color:#333" in html and "font-weight:bold" in html
    assert 'href="https://example.org/x?a=1&amp;b=2"' in html
    assert 'target="_blank"' in html and 'rel="noopener noreferrer"' in html
    assert "<blockquote>quoted</blockquote>" in html and "10 €" in html


def test_clean_style_keeps_presentational_only() -> None:
    assert clean_style("color: red; position: fixed; top: 0") == "color:red"
    assert clean_style("background: url(x)") is None
    assert clean_style("font-family: \"a;background:url(x)\"") == 'font-family:"a'
    assert clean_style("display: -webkit-box") is None


def test_frame_csp_forbids_script_and_remote() -> None:
    csp = frame_csp(allow_remote=False)
    assert "script-src 'none'" in csp and "default-src 'none'" in csp
    assert "img-src 'self';" in csp and "sandbox" in csp and "allow-scripts" not in csp
    assert "https:" in frame_csp(allow_remote=True)


def test_frame_document_wraps() -> None:
    doc = frame_document(sanitize_html("<p>x</p>"))
    assert doc.startswith("<!doctype html>") and "<p>x</p>" in doc
    assert 'content="no-referrer"' in doc
