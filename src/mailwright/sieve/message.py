"""The message as Sieve tests see it: header fields in order (editable), addresses, body parts.

Built from the raw RFC 5322 bytes of one delivery, with the standard library's `email` package
for MIME walking (the body test), so the language core stays free of the store and of our own
parse-once metadata. Header values are unfolded and RFC 2047-decoded for comparison (RFC 5228
2.7.2); `editheader` (RFC 5293) changes the field list, and `render` writes the edited message.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import html as html_module
import re
from dataclasses import dataclass, field
from email.message import Message

MAX_BODY_SCAN = 4 * 1024 * 1024  # bytes of decoded body the body test looks at


@dataclass(slots=True)
class HeaderField:
    name: str
    raw: str  # the value as written, folding included, without the trailing CRLF


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str  # "" for the null reverse-path
    recipient: str  # the address this delivery is for
    original_recipient: str = ""
    auth: str = ""  # the authenticated submitter, if any


@dataclass(slots=True)
class SieveMessage:
    fields: list[HeaderField]
    body: bytes  # everything after the blank line that ends the header section
    size: int
    _parsed: Message | None = field(default=None)
    edited: bool = False

    @classmethod
    def from_bytes(cls, data: bytes) -> SieveMessage:
        end = _header_end(data)
        head = data[:end].decode("utf-8", "replace")
        body = data[end:]
        if body.startswith(b"\r\n"):
            body = body[2:]
        elif body.startswith(b"\n"):
            body = body[1:]
        fields: list[HeaderField] = []
        for line in head.replace("\r\n", "\n").split("\n"):
            if not line:
                continue
            if line[0] in " \t" and fields:
                fields[-1].raw += "\r\n" + line
                continue
            name, colon, value = line.partition(":")
            if not colon:
                continue  # not a header field; RFC 5322 has no place for it
            fields.append(HeaderField(name.rstrip(" \t"), value[1:] if value.startswith(" ") else value))
        return cls(fields, body, len(data))

    # -- headers

    def raw_values(self, name: str) -> list[str]:
        lname = name.lower()
        return [f.raw for f in self.fields if f.name.lower() == lname]

    def values(self, name: str) -> list[str]:
        """Unfolded, RFC 2047-decoded values of every field called `name`, in order."""
        return [decode_header_value(v) for v in self.raw_values(name)]

    def render(self) -> bytes:
        head = "".join(f"{f.name}: {f.raw}\r\n" for f in self.fields)
        return head.encode("utf-8") + b"\r\n" + self.body

    # -- body

    def parsed(self) -> Message:
        if self._parsed is None:
            self._parsed = email.message_from_bytes(
                self.render()[: MAX_BODY_SCAN + 65536], policy=email.policy.compat32
            )
        return self._parsed


def _header_end(data: bytes) -> int:
    if data.startswith(b"\r\n") or data.startswith(b"\n"):
        return 0
    a = data.find(b"\r\n\r\n")
    b = data.find(b"\n\n")
    cands = [x + 2 for x in (a,) if x >= 0] + [x + 1 for x in (b,) if x >= 0]
    return min(cands) if cands else len(data)


def unfold(value: str) -> str:
    return value.replace("\r\n", "").replace("\n", "").strip(" \t")


def decode_header_value(value: str) -> str:
    value = unfold(value)
    if "=?" not in value:
        return value
    try:
        parts = email.header.decode_header(value)
    except (ValueError, LookupError, AssertionError):
        return value
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii", "replace"))
        except LookupError:
            out.append(chunk.decode("utf-8", "replace"))
    return "".join(out)


def addresses(value: str) -> list[str]:
    """The mailbox addresses of an address header value (group names dropped)."""
    decoded = unfold(value)
    result: list[str] = []
    for _name, addr in email.utils.getaddresses([decoded]):
        if addr:
            result.append(addr)
    return result


def split_address(addr: str) -> tuple[str, str]:
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr, ""
    return local, domain


def body_texts(msg: SieveMessage, transform: str, content: tuple[str, ...]) -> list[str]:
    """RFC 5173 5: the body as the test sees it for :raw, :text or :content types."""
    if transform == "raw":
        return [msg.body[:MAX_BODY_SCAN].decode("utf-8", "replace")]
    parsed = msg.parsed()
    texts: list[str] = []
    budget = MAX_BODY_SCAN
    for part in parsed.walk():
        ctype = part.get_content_type().lower()
        if transform == "text":
            wanted = ctype.startswith("text/")
        else:
            wanted = _content_matches(ctype, content, part.is_multipart())
        if not wanted:
            continue
        if ctype == "message/rfc822":
            # RFC 5173 5.2: an encapsulated message is matched whole, headers and body
            inner = part.get_payload(0) if part.is_multipart() else None
            if isinstance(inner, Message):
                texts.append(inner.as_bytes()[:budget].decode("utf-8", "replace"))
            continue
        if part.is_multipart():
            # RFC 5173 5.2: a multipart type matches its prologue and epilogue
            texts.append((part.preamble or "") + (part.epilogue or ""))
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        payload = payload[:budget]
        budget -= len(payload)
        charset = part.get_content_charset() or ("us-ascii" if ctype.startswith("text/") else "utf-8")
        try:
            text = payload.decode(charset, "replace")
        except LookupError:
            text = payload.decode("utf-8", "replace")
        if transform == "text" and ctype == "text/html":
            text = html_to_text(text)  # RFC 5173 5.2: :text is the text a reader sees
        texts.append(text)
        if budget <= 0:
            break
    return texts


def html_to_text(markup: str) -> str:
    """Markup removed, entities resolved: what :text compares for text/html."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", markup)
    text = re.sub(r"(?s)<!--.*?-->", " ", text)
    text = re.sub(r"(?s)<[^>]*>", " ", text)
    return re.sub(r"[ \t]+", " ", html_module.unescape(text)).strip()


def _content_matches(ctype: str, content: tuple[str, ...], multipart: bool) -> bool:
    major = ctype.partition("/")[0]
    for want in content:
        w = want.lower()
        if w == "":
            return True
        if "/" in w:
            if w == ctype:
                return True
        elif w == major:
            return True
    return False
