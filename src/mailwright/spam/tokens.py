"""Turning a raw message into classifier tokens, in bounded time and memory.

House rules:
- Pure and synchronous (callers run it in a worker thread); never raises for any input.
- Every loop has a bound: at most `max_bytes` of the message are looked at, MIME nesting stops
  at `MAX_DEPTH`, a message yields at most `MAX_PARTS` parts and `MAX_TOKENS` distinct tokens,
  and every regular expression is linear (no nested quantifiers) on bounded text.
- Headers that describe the path a message took to *this* server (Received, Return-Path,
  Delivered-To, our own Authentication-Results and X-Spam-*) are never tokenised: they say
  where the mail was collected, not what it is, and a model that learnt them would judge the
  route instead of the message.

The tokens follow SpamBayes' experience: lower-cased words of 3 to 12 characters, a length
bucket for longer ones, words of selected headers prefixed with the header name, URLs split into their
host's registered suffixes and path words, and markers for the MIME structure (content types,
transfer encodings, charsets, attachment extensions, HTML-only mail).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import quopri
import re
from dataclasses import dataclass, field

from .shape import alignment_shape, body_shape, header_shape, html_shape, route_shape

__all__ = ["MAX_TOKENS", "Document", "parse_document", "token_key", "tokenize"]

MAX_DEPTH = 8
MAX_PARTS = 64
MAX_TOKENS = 3000
MAX_HEADER_BYTES = 64 * 1024
MAX_TEXT_CHARS = 200_000  # decoded text looked at per message
MAX_URLS = 100
# HTML tag names that say something of their own; the rest (p, td, br, body, ...) only say
# "this is HTML", which the MIME structure tokens already say once: counted a dozen times
# over, that one fact outweighed everything else in a shop's newsletter (on the validation
# slice, 70 of the 120 generated newsletters were misfiled with every tag a token, 18 without)
TELLING_TAGS = frozenset(["img", "form", "script", "iframe", "font", "object", "embed", "map",
                          "area"])  # fmt: skip

# The only headers whose words are tokenised, with the header name as prefix: none of them
# describes the route (Received, Return-Path, Delivered-To, Authentication-Results, X-Spam-*).
# (Content-Type's words are not among them: the MIME structure tokens say the same once.)
WORD_HEADERS = ("subject", "from", "reply-to", "to", "cc", "x-mailer", "user-agent",
                "organization", "list-id", "precedence", "x-priority", "importance", "sender")  # fmt: skip

_WORD = re.compile(r"[^\W_][\w'$!%.-]{0,40}", re.UNICODE)
_URL = re.compile(r"(https?|ftp)://([^\s<>\"'/?#]{1,255})([^\s<>\"']{0,200})", re.IGNORECASE)
_TAG = re.compile(r"<\s*(/?)([a-zA-Z][a-zA-Z0-9]{0,15})([^<>]{0,2000})>")
_HREF = re.compile(r"(?:href|src)\s*=\s*[\"']?([^\"'\s>]{1,500})", re.IGNORECASE)
_PARAM = re.compile(r';\s*([a-zA-Z0-9*_-]{1,40})\s*=\s*("([^"]{0,500})"|[^;\s]{1,500})')
_ADDR = re.compile(r"[\w.+-]{1,64}@([\w-]{1,63}(?:\.[\w-]{1,63}){0,10})", re.UNICODE)
_EXT = re.compile(r"\.([A-Za-z0-9]{1,8})\s*$")
_IP_HOST = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?$")


@dataclass(slots=True)
class Part:
    content_type: str
    params: dict[str, str]
    encoding: str
    disposition: str
    text: str  # decoded text of a text/* leaf, "" otherwise


@dataclass(slots=True)
class Document:
    """What the tokenizer and the header tests see of a message."""

    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower name, unfolded value)
    parts: list[Part] = field(default_factory=list)
    truncated: bool = False
    malformed: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.headers if n == name)


def token_key(token: str) -> int:
    """The signed 64-bit key a token is counted under in the store."""
    digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Header block and body, at the first empty line (CRLF or LF)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep, 0, MAX_HEADER_BYTES + 4)
        if i >= 0:
            return raw[:i], raw[i + len(sep) :]
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw.lstrip(b"\r\n")
    return raw[:MAX_HEADER_BYTES], raw[MAX_HEADER_BYTES:]


def parse_headers(block: bytes) -> list[tuple[str, str]]:
    text = block[:MAX_HEADER_BYTES].decode("utf-8", "replace")
    out: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line[0] in " \t" and out:
            name, value = out[-1]
            out[-1] = (name, value + " " + line.strip())
            continue
        if line.startswith("From ") and not out:
            continue  # an mbox separator line, not a header
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name.strip() or len(name) > 76:
            continue
        out.append((name.strip().lower(), value.strip()))
        if len(out) >= 500:
            break
    return out


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words, leniently (a bad one is left as it is)."""
    if "=?" not in value:
        return value
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(value[:4000])))
    except Exception:  # noqa: BLE001 - any malformed header is kept as raw text
        return value


def _params(value: str) -> tuple[str, dict[str, str]]:
    main, _, _ = value.partition(";")
    params = {m.group(1).lower(): (m.group(3) if m.group(3) is not None else m.group(2))
              for m in _PARAM.finditer(value[:4000])}  # fmt: skip
    return main.strip().lower(), params


def _decode_body(body: bytes, encoding: str, charset: str, doc: Document) -> str:
    if encoding == "base64":
        try:
            body = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", body) + b"===")
        except (binascii.Error, ValueError):
            doc.malformed.append("base64")
            body = b""
    elif encoding == "quoted-printable":
        body = quopri.decodestring(body)
    try:
        return body.decode(charset or "utf-8", "replace")
    except (LookupError, UnicodeError, ValueError):
        # unknown names, and codecs that are no text encodings or refuse "replace" (idna,
        # punycode, "undefined"): a sender picks the charset, so none of these may raise
        doc.malformed.append("charset")
        return body.decode("latin-1", "replace")


def parse_document(raw: bytes, max_bytes: int = 512 * 1024) -> Document:
    """Headers and the MIME leaves of a message, within the module's bounds."""
    doc = Document()
    if len(raw) > max_bytes:
        raw = raw[:max_bytes]
        doc.truncated = True
    head, body = split_head(raw)
    doc.headers = parse_headers(head)
    ctype = "text/plain"
    params: dict[str, str] = {}
    encoding = ""
    for name, value in doc.headers:
        if name == "content-type":
            ctype, params = _params(value)
        elif name == "content-transfer-encoding":
            encoding = value.strip().lower()
    budget = [MAX_TEXT_CHARS]
    _walk(doc, ctype, params, encoding, "", body, 0, budget)
    return doc


def _walk(doc: Document, ctype: str, params: dict[str, str], encoding: str,
          disposition: str, body: bytes, depth: int, budget: list[int]) -> None:  # fmt: skip
    if len(doc.parts) >= MAX_PARTS:
        doc.malformed.append("too many parts")
        return
    if ctype.startswith("multipart/"):
        boundary = params.get("boundary", "")
        if depth >= MAX_DEPTH:
            doc.malformed.append("nesting too deep")
            doc.parts.append(Part(ctype, params, encoding, disposition, ""))
            return
        if not boundary:
            doc.malformed.append("multipart without boundary")
            doc.parts.append(Part("text/plain", {}, "", "", _take(body.decode("latin-1"), budget)))
            return
        doc.parts.append(Part(ctype, params, encoding, disposition, ""))
        delimiter = b"--" + boundary.encode("latin-1", "replace")
        chunks = body.split(delimiter, MAX_PARTS + 1)
        for chunk in chunks[1:]:
            if chunk.startswith(b"--") or len(doc.parts) >= MAX_PARTS:
                break
            head, sub = split_head(chunk.lstrip(b" \t").removeprefix(b"\r\n").removeprefix(b"\n"))
            if not head and not sub:
                continue
            sub_headers = parse_headers(head)
            sub_type, sub_enc, sub_disp = "text/plain", "", ""
            sub_params: dict[str, str] = {}
            if ctype == "multipart/digest":
                sub_type = "message/rfc822"
            for name, value in sub_headers:
                if name == "content-type":
                    sub_type, sub_params = _params(value)
                elif name == "content-transfer-encoding":
                    sub_enc = value.strip().lower()
                elif name == "content-disposition":
                    sub_disp = value
            _walk(doc, sub_type, sub_params, sub_enc, sub_disp, sub, depth + 1, budget)
        return
    if ctype == "message/rfc822" and depth < MAX_DEPTH:
        doc.parts.append(Part(ctype, params, encoding, disposition, ""))
        head, sub = split_head(body)
        inner = parse_headers(head)
        inner_type, inner_enc = "text/plain", ""
        inner_params: dict[str, str] = {}
        for name, value in inner:
            if name == "content-type":
                inner_type, inner_params = _params(value)
            elif name == "content-transfer-encoding":
                inner_enc = value.strip().lower()
        _walk(doc, inner_type, inner_params, inner_enc, "", sub, depth + 1, budget)
        return
    text = ""
    if ctype.startswith("text/") and budget[0] > 0 and "attachment" not in disposition.lower():
        # a decoded text never exceeds its encoded size, so bound the input first
        text = _take(_decode_body(body[: budget[0] * 2], encoding, params.get("charset", ""), doc),
                     budget)  # fmt: skip
    doc.parts.append(Part(ctype, params, encoding, disposition, text))


def _take(text: str, budget: list[int]) -> str:
    text = text[: budget[0]]
    budget[0] -= len(text)
    return text


def html_to_text(source: str, tokens: set[str], hosts: set[str] | None = None) -> str:
    """Visible text of an HTML part; tag and link markers go to `tokens`."""
    original = source
    source = _cut_between(source, "<!--", "-->")
    source = _cut_between(source, "<style", "</style")
    source = _cut_between(source, "<script", "</script")
    for m in _HREF.finditer(source):
        if len(tokens) >= MAX_TOKENS:
            break
        _url_tokens(m.group(1), tokens, hosts)
    for m in _TAG.finditer(source):
        if len(tokens) >= MAX_TOKENS:
            break
        name = m.group(2).lower()
        if not m.group(1):
            if name in TELLING_TAGS:
                tokens.add(f"tag:{name}")
            attrs = m.group(3).lower()
            if "display:none" in attrs.replace(" ", "") or "visibility:hidden" in attrs:
                tokens.add("html:hidden-text")
            if "font-size:0" in attrs.replace(" ", "") or 'size="1"' in attrs:
                tokens.add("html:tiny-font")
    text = html.unescape(_TAG.sub(" ", source))
    html_shape(original, text, tokens)
    return text


def _cut_between(source: str, start: str, end: str) -> str:
    """`source` without the spans from `start` to `end` (case-insensitive), in linear time."""
    lower = source.lower()
    if start not in lower:
        return source
    out: list[str] = []
    pos = 0
    while True:
        i = lower.find(start, pos)
        if i < 0:
            out.append(source[pos:])
            break
        out.append(source[pos:i])
        j = lower.find(end, i + len(start))
        if j < 0:
            break  # unterminated: the rest is hidden from a reader too
        pos = j + len(end)
    return " ".join(out)


def _url_tokens(url: str, tokens: set[str], hosts: set[str] | None = None) -> None:
    m = _URL.match(url.strip())
    if m is None:
        if url.lower().startswith("mailto:"):
            tokens.add("url:mailto")
            domain = url.rpartition("@")[2].split("?", 1)[0].lower()
            if domain:
                tokens.add(f"mailto:{domain[:60]}")
        return
    scheme, host, rest = m.group(1).lower(), m.group(2).lower(), m.group(3)
    tokens.add(f"proto:{scheme}")
    host = host.rpartition("@")[2]  # user:pass@host hides the real host
    if "@" in m.group(2):
        tokens.add("url:has-userinfo")
    if _IP_HOST.match(host):
        tokens.add("url:ip-address")
        return
    host = host.split(":", 1)[0].strip(".")
    if hosts is not None and len(hosts) < MAX_URLS:
        hosts.add(host)
    labels = host.split(".")[-6:]
    for i in range(max(0, len(labels) - 4), len(labels) - 1):
        tokens.add("url:" + ".".join(labels[i:]))
    for word in re.split(r"[/?&=#._-]+", rest[:200]):
        if 2 < len(word) < 20:
            tokens.add("urlpath:" + word.lower())


def _words(text: str, prefix: str, tokens: set[str]) -> None:
    # ASCII text is lower-cased once, before the scan (the classes of `_WORD` are the same in
    # either case there); elsewhere each word is, after it, since lower-casing can change a
    # word's length and letters ("İ" becomes "i" and a combining dot).
    # A word seen again adds nothing: each distinct one is looked at once, in the order of
    # the text (so the tokens kept under MAX_TOKENS are the same).
    ascii_text = text.isascii()
    for word in dict.fromkeys(_WORD.findall(text.lower() if ascii_text else text)):
        if len(tokens) >= MAX_TOKENS:
            return
        word = (word if ascii_text else word.lower()).rstrip(".-'!")
        n = len(word)
        if n < 3:
            continue
        if n > 12:
            # SpamBayes: long "words" are mostly encodings; keep their shape, not their text
            tokens.add(f"{prefix}skip:{word[0]} {n // 10 * 10}")
            continue
        tokens.add(prefix + word if prefix else word)


def tokenize_document(doc: Document) -> set[str]:
    # Which headers are present is not tokenised: measured on the corpus, it teaches the model
    # "mailing list means ham" (list software adds the same dozen fields to everything it
    # carries, spam included) and costs more spam than it catches.
    tokens: set[str] = set()
    for name, value in doc.headers:
        if name in WORD_HEADERS:
            value = _decode_words(value)
            _words(value[:1000], f"{name}:", tokens)
            if name in ("from", "reply-to", "sender", "to", "cc"):
                for m in _ADDR.finditer(value[:2000]):
                    tokens.add(f"{name}:addr-domain:{m.group(1).lower()[:60]}")
        elif name == "message-id":
            tokens.add("message-id:" + value.rpartition("@")[2].strip("> ").lower()[:60])
    if doc.count("subject") == 0:
        tokens.add("subject:none")
    header_shape(doc.headers, tokens)
    route_shape(doc.headers, tokens)
    kinds = set()
    visible: list[str] = []
    hosts: set[str] = set()
    for part in doc.parts:
        if len(tokens) >= MAX_TOKENS:
            break
        kinds.add(part.content_type)
        tokens.add(f"content-type:{part.content_type[:40]}")
        if part.encoding:
            tokens.add(f"cte:{part.encoding[:20]}")
        charset = part.params.get("charset")
        if charset:
            tokens.add(f"charset:{charset.lower()[:20]}")
        filename = part.params.get("name") or _params(part.disposition)[1].get("filename")
        if filename:
            ext = _EXT.search(filename)
            tokens.add(f"filename-ext:{ext.group(1).lower() if ext else 'none'}")
        if not part.text:
            continue
        text = part.text
        if part.content_type == "text/html":
            text = html_to_text(text, tokens, hosts)
        # (a link holds "://": without one, no scan of the text for links)
        for count, m in enumerate(_URL.finditer(text) if "://" in text else (), 1):
            _url_tokens(m.group(0), tokens, hosts)
            if count >= MAX_URLS:
                break
        _words(text, "", tokens)
        visible.append(text)
    body_shape("\n".join(visible), tokens)
    alignment_shape(doc.headers, hosts, tokens)
    if "text/html" in kinds and "text/plain" not in kinds:
        tokens.add("mime:html-only")
    for problem in doc.malformed:
        tokens.add(f"mime:malformed:{problem}")
    if doc.truncated:
        tokens.add("mime:truncated")
    return tokens


def tokenize(raw: bytes, max_bytes: int = 512 * 1024) -> set[str]:
    """The distinct tokens of a raw message (at most `MAX_TOKENS`)."""
    return tokenize_document(parse_document(raw, max_bytes))
