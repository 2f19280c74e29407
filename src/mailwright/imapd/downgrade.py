"""UTF-8 header downgrade for sessions that did not ``ENABLE UTF8=ACCEPT`` (RFC 6855 7).

Such a client expects ASCII headers (RFC 5322 with RFC 2047 encoded words), so internationalized
header fields (RFC 6532) are shown to it in the downgraded form RFC 6857 describes:

* unstructured text (Subject, display names, unknown fields) becomes UTF-8 encoded words
  (RFC 2047, ``B`` encoding, split on character boundaries);
* an address whose domain alone is non-ASCII gets its A-label form (RFC 5890);
* an address whose local part is non-ASCII cannot be written in ASCII: it becomes an empty
  group whose name is the encoded original (RFC 6857 3.1.10), so the client still shows it;
* Content-Type and Content-Disposition keep their names; non-ASCII parameter values (file
  names) are written in RFC 2231 form (``filename*=utf-8''...``);
* a structured field that is none of those (Message-ID, Received, ...) is encapsulated as
  ``Downgraded-<name>`` with its body as encoded words (RFC 6857 3.2).

Only fields that hold valid UTF-8 beyond ASCII are touched; legacy 8-bit junk in other
charsets is left as it was (it is not UTF-8, and there is nothing better to say about it).
Message bodies are never changed: BODY[] and BODY[TEXT] stay byte for byte what RFC822.SIZE
counts.  Pure functions; used by :mod:`mailwright.imapd.fetch`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from urllib.parse import quote_from_bytes

from mailwright.mime.address import parse_address_list
from mailwright.mime.model import Address, Envelope

# RFC 2047 2: an encoded word is at most 75 characters; "=?UTF-8?B?" + "?=" take 12
_WORD_OCTETS = 45

_ADDRESS_FIELDS = frozenset({
    b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"resent-from", b"resent-sender",
    b"resent-to", b"resent-cc", b"resent-bcc",
})
# RFC 6857 3.2: structured fields that cannot carry encoded words are encapsulated
_ENCAPSULATED = frozenset({
    b"message-id", b"in-reply-to", b"references", b"resent-message-id", b"received",
    b"return-path", b"date", b"resent-date", b"content-id", b"content-transfer-encoding",
    b"mime-version",
})
# MIME fields keep their name (clients read them to show parts): their non-ASCII parameter
# values are written in RFC 2231 form instead (RFC 6857 3.1.x)
_MIME_PARAMETER_FIELDS = frozenset({b"content-type", b"content-disposition"})
_PARAMETER = re.compile(
    rb';(\s*)([!#$%&\'+.0-9A-Z^_`a-z{|}~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)'
)


def needs_downgrade(data: bytes) -> bool:
    """Non-ASCII that is valid UTF-8."""
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def encoded_words(text: bytes) -> bytes:
    """*text* (UTF-8) as RFC 2047 encoded words separated by folding white space."""
    words: list[bytes] = []
    start = 0
    n = len(text)
    while start < n:
        end = min(start + _WORD_OCTETS, n)
        # never split a UTF-8 sequence: back off continuation octets
        while end < n and end > start + 1 and (text[end] & 0xC0) == 0x80:
            end -= 1
        words.append(b"=?UTF-8?B?" + base64.b64encode(text[start:end]) + b"?=")
        start = end
    return b"\r\n ".join(words)


def _phrase(text: bytes | None) -> bytes | None:
    if text is None or not needs_downgrade(text):
        return text
    return encoded_words(text).replace(b"\r\n", b"")


def _a_label(domain: bytes) -> bytes | None:
    try:
        return domain.decode("utf-8").encode("idna")
    except (UnicodeError, ValueError):
        return None


def _addresses(addrs: tuple[Address, ...] | None) -> tuple[Address, ...] | None:
    if not addrs:
        return addrs
    out: list[Address] = []
    for a in addrs:
        if a.host is None:  # group start or end: only the name can need encoding
            out.append(replace(a, mailbox=_phrase(a.mailbox)))
            continue
        host = a.host
        local_ok = a.mailbox is None or a.mailbox.isascii()
        if not host.isascii() and local_ok:
            host = _a_label(host) or host
        if local_ok and host.isascii():
            out.append(Address(_phrase(a.name), a.route, a.mailbox, host))
            continue
        # RFC 6857 3.1.10: the address cannot be written in ASCII; an empty group named
        # after the whole original keeps it visible
        shown = (a.name + b" " if a.name else b"") + b"<" + (a.mailbox or b"") + b"@" + a.host + b">"
        out.append(Address(None, None, _phrase(shown), None))
        out.append(Address(None, None, None, None))
    return tuple(out)


def envelope(env: Envelope) -> Envelope:
    """The ENVELOPE as an ASCII-only client must see it."""
    subject = env.subject
    if subject is not None and needs_downgrade(subject):
        flat = b" ".join(subject.replace(b"\r", b"").replace(b"\n", b"").split())
        subject = encoded_words(flat).replace(b"\r\n", b"")
    return replace(
        env,
        date=_phrase(env.date),
        subject=subject,
        from_=_addresses(env.from_),
        sender=_addresses(env.sender),
        reply_to=_addresses(env.reply_to),
        to=_addresses(env.to),
        cc=_addresses(env.cc),
        bcc=_addresses(env.bcc),
        in_reply_to=_phrase(env.in_reply_to),
        message_id=_phrase(env.message_id),
    )


def _address_text(addrs: tuple[Address, ...]) -> bytes:
    """An address list in RFC 5322 3.4 syntax (groups as ``name: a, b;``)."""
    items: list[bytes] = []
    group: list[bytes] | None = None
    group_name = b""

    def close() -> None:
        members = b" " + b", ".join(group) if group else b""
        items.append(group_name + b":" + members + b";")

    for a in addrs:
        if a.host is None:
            if a.mailbox is not None:  # group start
                group, group_name = [], a.mailbox
            elif group is not None:  # group end
                close()
                group = None
            continue
        spec = (a.mailbox or b"") + b"@" + a.host
        text = (a.name + b" <" + spec + b">") if a.name else spec
        (group if group is not None else items).append(text)
    if group is not None:
        close()
    return b", ".join(items)


def _rfc2231(m: re.Match[bytes]) -> bytes:
    """One MIME parameter; a non-ASCII value as ``name*=utf-8''<percent-encoded>``."""
    value = m.group(3)
    if value.isascii():
        return m.group(0)
    if value[:1] == b'"':
        value = re.sub(rb"\\(.)", rb"\1", value[1:-1])
    name = m.group(2).rstrip(b"*")
    return b";" + m.group(1) + name + b"*=utf-8''" + quote_from_bytes(value, safe="").encode()


def _field(name: bytes, body: bytes) -> bytes:
    """One field (name as sent, body unfolded without the line end), downgraded."""
    key = name.strip().lower()
    if key in _ADDRESS_FIELDS:
        addrs = parse_address_list(body)
        if addrs is not None:
            down = _addresses(addrs)
            if down:
                return name + b": " + _address_text(down) + b"\r\n"
    flat = b" ".join(body.split())
    if key in _MIME_PARAMETER_FIELDS:
        rewritten = _PARAMETER.sub(_rfc2231, flat)
        if rewritten.isascii():
            return name + b": " + rewritten + b"\r\n"
    if key in _ENCAPSULATED or key in _MIME_PARAMETER_FIELDS:
        # RFC 6857 3.2: kept, under a name no program interprets
        return b"Downgraded-" + name.strip() + b": " + encoded_words(flat) + b"\r\n"
    return name + b": " + encoded_words(flat) + b"\r\n"


def header_block(header: bytes) -> bytes:
    """A header block (or the fields of HEADER.FIELDS) with every UTF-8 field downgraded."""
    if header.isascii():
        return header
    out = bytearray()
    lines = header.split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i] + (b"\n" if i < len(lines) - 1 else b"")
        i += 1
        if not line:
            continue
        # a field is its first line and the continuation lines that follow
        field = line
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field += lines[i] + (b"\n" if i < len(lines) - 1 else b"")
            i += 1
        colon = field.find(b":")
        if colon <= 0 or not needs_downgrade(field):
            out += field
            continue
        body = field[colon + 1 :].replace(b"\r\n", b"").replace(b"\n", b"").strip()
        out += _field(field[:colon], body)
    return bytes(out)
