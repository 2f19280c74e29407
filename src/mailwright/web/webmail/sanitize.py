"""HTML mail made harmless for display: nh3 (the Ammonia sanitiser) with a strict allow-list.

House rules:
- HTML from mail is never trusted: only the tags and attributes listed here survive; script,
  style, SVG, MathML, frames, forms and objects are removed with their content; event handlers
  never pass; URLs keep only http, https and mailto (plus `cid:`, rewritten to our attachment
  URLs); relative URLs are dropped (they would point at our own pages).
- Remote images are removed until the user asks for them (a remote image is a read receipt
  and a tracker); `blocked` counts them so the page can offer to load them.
- Inline CSS keeps only presentational properties whose values load nothing: no `url(`, no
  `expression(`, no escapes or comments that could hide either.
- The result is shown in a sandboxed frame (no scripts) served with `FRAME_CSP`, which forbids
  scripts and remote loads again, so a sanitiser bug is not enough to run code or leak a read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import nh3

# Tags kept (their text is kept in any case, unless listed in _DROP_WITH_CONTENT).
_TAGS = frozenset(nh3.ALLOWED_TAGS | {"font", "center", "tfoot", "big", "address"})
# Removed with everything inside them: code, styles, foreign content, embedded documents.
_DROP_WITH_CONTENT = frozenset({
    "script", "style", "svg", "math", "iframe", "frame", "frameset", "object", "embed",
    "applet", "template", "noscript", "noembed", "noframes", "title", "xmp", "plaintext",
    "select", "textarea", "button", "form", "audio", "video", "canvas", "head",
})
_COMMON = {"style", "align", "dir", "lang", "title", "width", "height", "valign", "bgcolor"}
_ATTRIBUTES: dict[str, set[str]] = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("*", set()).update(_COMMON)
_ATTRIBUTES.setdefault("font", set()).update({"color", "face", "size"})
_ATTRIBUTES.setdefault("table", set()).update({"border", "cellpadding", "cellspacing"})
_ATTRIBUTES.setdefault("td", set()).update({"nowrap"})
_ATTRIBUTES.setdefault("img", set()).update({"alt", "src", "width", "height"})
_ATTRIBUTES.setdefault("a", set()).update({"href"})
_ATTRIBUTES.pop("area", None)
_SCHEMES = frozenset({"http", "https", "mailto", "cid"})

# CSS properties that change only how text and boxes look.
_STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "text-align", "text-decoration", "text-indent",
    "text-transform", "line-height", "letter-spacing", "word-spacing", "white-space",
    "vertical-align", "margin", "margin-top", "margin-bottom", "margin-left", "margin-right",
    "padding", "padding-top", "padding-bottom", "padding-left", "padding-right", "border",
    "border-top", "border-bottom", "border-left", "border-right", "border-color",
    "border-style", "border-width", "border-collapse", "border-spacing", "border-radius",
    "width", "height", "max-width", "min-width", "max-height", "min-height", "display",
    "list-style-type", "table-layout", "direction", "word-break", "overflow-wrap",
})
# Anything that can load, run or hide: url( / image-set( / expression( / escapes / comments /
# at-rules / old IE and Mozilla binding properties' values.
_STYLE_DANGER = re.compile(r"url\s*\(|image-set|expression|\\|/\*|@|javascript:|behavior|"
                           r"-moz-binding|[<>]", re.IGNORECASE)
_SPACE = re.compile(r"[\s\x00]+")


def clean_style(value: str) -> str | None:
    """The declarations of a style attribute that are on the allow-list and load nothing."""
    kept: list[str] = []
    for decl in value.split(";"):
        name, colon, val = decl.partition(":")
        name = _SPACE.sub("", name).lower()
        val = val.strip()
        if not colon or name not in _STYLE_PROPERTIES or not val or _STYLE_DANGER.search(val):
            continue
        if name == "display" and val.lower() not in ("block", "inline", "inline-block", "none",
                                                     "table", "table-cell", "table-row"):
            continue
        kept.append(f"{name}:{val}")
    return ";".join(kept) or None


@dataclass(frozen=True, slots=True)
class CleanHtml:
    html: str
    blocked: int  # remote images removed (0 when they were allowed)


def sanitize_html(
    html: str,
    *,
    cid_url: Callable[[str], str | None] = lambda cid: None,
    allow_remote: bool = False,
) -> CleanHtml:
    """`html` from a message with only safe markup left.

    `cid_url(content_id)` gives the URL of the part with that Content-ID (RFC 2392), or None
    when the message has no such part; `allow_remote` keeps http(s) images (the user asked).
    """
    blocked = 0
    ours: set[str] = set()  # the cid: URLs we rewrote: the only relative URLs let through

    def relative(url: str) -> str | None:
        return url if url in ours else None

    def attribute(tag: str, attr: str, value: str) -> str | None:
        nonlocal blocked
        if attr == "style":
            return clean_style(value)
        if attr in ("src", "href"):
            low = value.strip().lower()
            if low.startswith("cid:"):
                if tag != "img" or attr != "src":
                    return None
                url = cid_url(_unquote_cid(value.strip()[4:]))
                if url is not None:
                    ours.add(url)
                return url
            if tag == "img" and low.startswith(("http:", "https:", "//")) and not allow_remote:
                blocked += 1
                return None
            if tag == "img" and attr == "src" and not low.startswith(("http:", "https:")):
                return None
        return value

    cleaned = nh3.clean(
        html,
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes=_ATTRIBUTES,
        url_schemes=set(_SCHEMES),
        url_relative=relative,
        attribute_filter=attribute,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
    return CleanHtml(cleaned, blocked)


def _unquote_cid(value: str) -> str:
    """RFC 2392 2: a cid URL is the Content-ID's addr-spec, %-encoded."""
    from urllib.parse import unquote

    return unquote(value).strip("<>")


# The frame's own policy: nothing runs, nothing loads from elsewhere (images only from us, or
# from anywhere once the user asked), no forms, no navigation of the parent (sandbox).
FRAME_SANDBOX = "allow-same-origin allow-popups allow-popups-to-escape-sandbox"


def frame_csp(allow_remote: bool) -> str:
    img = "'self' https: http:" if allow_remote else "'self'"
    return (
        f"default-src 'none'; img-src {img}; style-src 'unsafe-inline'; script-src 'none'; "
        "font-src 'none'; connect-src 'none'; media-src 'none'; object-src 'none'; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
        f"sandbox {FRAME_SANDBOX}"
    )


FRAME_STYLE = (
    "body{font-family:system-ui,sans-serif;font-size:15px;line-height:1.45;margin:8px;"
    "color:#1d1d1f;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
    "pre{white-space:pre-wrap}table{max-width:100%}"
)


def frame_document(clean: CleanHtml) -> str:
    """The document the sandboxed frame loads: the cleaned mail in a minimal page."""
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "<meta name=\"viewport\" content=\"width=device-width\">"
        f"<style>{FRAME_STYLE}</style></head><body>{clean.html}</body></html>"
    )
