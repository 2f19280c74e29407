"""One stored message as the reading view shows it: headers, text, HTML and attachments.

Built from the parse-once `MessageInfo` and the raw bytes (no second MIME parser). Parts are
named by their IMAP section numbers (RFC 9051 6.4.5, `mime.imapfmt.find_part`), so a download
URL names the same part an IMAP client would fetch. The first text/plain and text/html parts
not marked as attachments are the bodies; every other leaf (and every attached message) is an
attachment, inline images included (HTML refers to those by Content-ID, RFC 2392).
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser

from mailwright.mime.decode import bytes_to_text, decode_header, header_fields, part_text
from mailwright.mime.imapfmt import (
    BrokenEncoding,
    SectionError,
    UnknownCTE,
    decode_part,
    find_part,
)
from mailwright.mime.model import (
    KIND_MESSAGE,
    KIND_MULTIPART,
    Address,
    MessageInfo,
    Part,
)

# What one message may put on a page: bodies larger than this are cut (with a note).
MAX_TEXT_CHARS = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    address: str  # "" for a group marker or an unreadable address

    def __str__(self) -> str:
        if not self.name:
            return self.address
        return email.utils.formataddr((self.name, self.address))


@dataclass(frozen=True, slots=True)
class Attachment:
    section: str  # IMAP part number, "1.2"
    filename: str
    content_type: str  # "image/png"
    size: int  # encoded octets (what the page shows as an estimate)
    content_id: str | None
    inline: bool


@dataclass(frozen=True, slots=True)
class MessageView:
    subject: str
    from_: tuple[Person, ...]
    to: tuple[Person, ...]
    cc: tuple[Person, ...]
    bcc: tuple[Person, ...]
    reply_to: tuple[Person, ...]
    date: datetime | None
    message_id: str  # with angle brackets, "" when absent
    in_reply_to: str
    references: tuple[str, ...]
    text: str | None  # the text/plain body, decoded
    html_section: str | None  # the text/html body's part number
    attachments: tuple[Attachment, ...] = field(default=())
    truncated: bool = False

    @property
    def cids(self) -> dict[str, str]:
        """Content-ID (without brackets) -> part number, for the HTML's `cid:` images."""
        return {a.content_id: a.section for a in self.attachments if a.content_id}


def people(addrs: tuple[Address, ...] | None) -> tuple[Person, ...]:
    out: list[Person] = []
    for a in addrs or ():
        if a.host is None:  # group start/end markers (RFC 9051 7.5.2)
            continue
        name = decode_header(a.name) if a.name else ""
        mailbox = bytes_to_text(a.mailbox or b"")
        host = bytes_to_text(a.host)
        out.append(Person(name, f"{mailbox}@{host}" if mailbox else ""))
    return tuple(out)


def _param(params: tuple[tuple[bytes, bytes], ...] | None, name: bytes) -> str | None:
    """A parameter's value with RFC 2231 continuations and charsets undone, and the RFC 2047
    words that many mailers put there anyway decoded."""
    if not params:
        return None
    plain: list[tuple[str, str]] = [("", "")]
    for raw_key, raw_value in params:
        plain.append((raw_key.decode("latin-1").lower(), bytes_to_text(raw_value)))
    want = name.decode("latin-1")
    for pkey, pvalue in email.utils.decode_params(plain)[1:]:
        if pkey == want:
            value = pvalue
            text = email.utils.collapse_rfc2231_value(value)
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1]
            if isinstance(value, tuple):  # (charset, language, text) already decoded
                return text
            return decode_header(text.encode("utf-8")) if "=?" in text else text
    return None


def content_type(part: Part) -> str:
    if part.kind == KIND_MESSAGE:
        return "message/rfc822"
    mtype = (part.mtype or b"text").decode("latin-1", "replace").lower() or "application"
    subtype = (part.subtype or b"plain").decode("latin-1", "replace").lower() or "octet-stream"
    return f"{mtype}/{subtype}"


def filename(part: Part, section: str) -> str:
    name = _param(part.disposition_params, b"filename") or _param(part.params, b"name")
    if name:
        # a name, never a path (C:\x\y.txt and ../y.txt both become y.txt)
        name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().strip(".") or ""
    if not name:
        ext = {"message/rfc822": ".eml", "text/plain": ".txt", "text/html": ".html"}.get(
            content_type(part), ".bin")
        name = f"part-{section}{ext}"
    return "".join(c for c in name if c >= " " and c != "\x7f")[:200]


def _is_attachment(part: Part) -> bool:
    return (part.disposition or b"").lower() == b"attachment"


def _leaves(info: MessageInfo) -> list[tuple[str, Part]]:
    """(part number, part) of each leaf, an attached message counting as one leaf."""
    out: list[tuple[str, Part]] = []

    def walk(part: Part, prefix: str) -> None:
        for i, child in enumerate(part.children, 1):
            number = f"{prefix}{i}"
            if child.kind == KIND_MULTIPART:
                walk(child, number + ".")
            else:
                out.append((number, child))

    root = info.root
    if root.kind == KIND_MULTIPART:
        walk(root, "")
    else:
        out.append(("1", root))
    return out


def message_view(info: MessageInfo, raw: bytes) -> MessageView:
    env = info.envelope
    fields = header_fields(raw, info.root.header_start, info.root.body_start)
    refs = next((v for k, v in reversed(fields) if k == b"references"), b"")
    text: str | None = None
    html_section: str | None = None
    attachments: list[Attachment] = []
    truncated = False
    for section, part in _leaves(info):
        ctype = content_type(part)
        if text is None and ctype == "text/plain" and not _is_attachment(part):
            text = part_text(part, raw)
            if len(text) > MAX_TEXT_CHARS:
                text, truncated = text[:MAX_TEXT_CHARS], True
            continue
        if html_section is None and ctype == "text/html" and not _is_attachment(part):
            html_section = section
            continue
        cid = part.content_id.decode("latin-1").strip().strip("<>") if part.content_id else None
        attachments.append(Attachment(
            section=section, filename=filename(part, section), content_type=ctype,
            size=part.end - part.body_start, content_id=cid or None,
            inline=bool(cid) and not _is_attachment(part),
        ))
    if text is None and html_section is not None:
        # an HTML-only message still has a plain-text view (and a quotable reply)
        text = html_to_text(part_as_text(info, raw, html_section))
    date = None
    if env.date:
        try:
            date = email.utils.parsedate_to_datetime(env.date.decode("latin-1"))
        except (TypeError, ValueError, IndexError):
            date = None
    return MessageView(
        subject=decode_header(env.subject) if env.subject else "",
        from_=people(env.from_),
        to=people(env.to),
        cc=people(env.cc),
        bcc=people(env.bcc),
        reply_to=people(env.reply_to),
        date=date,
        message_id=(env.message_id or b"").decode("latin-1").strip(),
        in_reply_to=(env.in_reply_to or b"").decode("latin-1").strip(),
        references=tuple(r.decode("latin-1") for r in refs.split() if r.startswith(b"<")),
        text=text,
        html_section=html_section,
        attachments=tuple(attachments),
        truncated=truncated,
    )


class NoSuchPart(LookupError):
    pass


def _section_path(section: str) -> list[int]:
    try:
        path = [int(n) for n in section.split(".")]
    except ValueError:
        raise NoSuchPart(section) from None
    if not path or len(path) > 20 or any(n < 1 for n in path):
        raise NoSuchPart(section)
    return path


def part_bytes(info: MessageInfo, raw: bytes, section: str) -> tuple[bytes, Part]:
    """A part's content with its transfer encoding undone (an attached message as stored)."""
    try:
        part = find_part(info, _section_path(section)).part
    except SectionError:
        raise NoSuchPart(section) from None
    if part.kind == KIND_MULTIPART:
        raise NoSuchPart(section)
    if part.kind == KIND_MESSAGE:
        return raw[part.body_start : part.end], part
    body = raw[part.body_start : part.end]
    try:
        return decode_part(part, body), part
    except (UnknownCTE, BrokenEncoding):
        return body, part


def part_as_text(info: MessageInfo, raw: bytes, section: str) -> str:
    """A text part decoded to text (the HTML body, before it is sanitised)."""
    try:
        part = find_part(info, _section_path(section)).part
    except SectionError:
        raise NoSuchPart(section) from None
    text = part_text(part, raw)
    return text[:MAX_TEXT_CHARS]


def header_text(raw: bytes, info: MessageInfo, name: str) -> str | None:
    """The last field `name` of the top header, decoded (RFC 2047)."""
    want = name.lower().encode("ascii")
    value = next((v for k, v in reversed(header_fields(raw, info.root.header_start,
                                                         info.root.body_start)) if k == want),
                 None)
    return None if value is None else decode_header(value)


_BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                     "blockquote", "pre", "table", "hr", "ul", "ol", "dd", "dt"})
_INVISIBLE = frozenset({"script", "style", "head", "title", "template", "svg", "math"})


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: its words, a line break per block, nothing hidden."""
    parser = _TextOf()
    parser.feed(html[:MAX_TEXT_CHARS])
    parser.close()
    lines = ("".join(parser.out)).split("\n")
    text = "\n".join(" ".join(line.split()) for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
