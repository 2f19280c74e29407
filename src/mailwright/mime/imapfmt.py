"""IMAP renderings of a parsed message: pure functions from (MessageInfo, raw bytes) to bytes.

ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 7.5.2 / RFC 3501 7.4.2), BODY[section]<partial>
extraction (RFC 9051 6.4.5) and BINARY[section] / BINARY.SIZE decoding (RFC 3516). Nothing here
reparses the message: every answer comes from the offsets and fields kept at delivery.

`raw` is always the stored message in canonical CRLF form (see mime.normalize_crlf).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .model import (
    KIND_MESSAGE,
    KIND_MULTIPART,
    KIND_TEXT,
    Address,
    Envelope,
    MessageInfo,
    Part,
)

# --- strings --------------------------------------------------------------------------------

_QUOTE_UNSAFE = re.compile(rb"[\r\n\x00\x80-\xff]")


def nstring(value: bytes | None) -> bytes:
    """NIL, a quoted string, or a literal when the bytes cannot be quoted (RFC 9051 4.3)."""
    if value is None:
        return b"NIL"
    return astring_q(value)


def astring_q(value: bytes) -> bytes:
    """A quoted string, or a literal for 8-bit/CR/LF/long values. NUL, which no IMAP string
    may hold (RFC 9051 4.3, CHAR8), is sent as 0x80 as Dovecot does."""
    if len(value) > 1024 or _QUOTE_UNSAFE.search(value):
        if b"\x00" in value:
            value = value.replace(b"\x00", b"\x80")
        return b"{%d}\r\n%s" % (len(value), value)
    if b'"' in value or b"\\" in value:
        value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + value + b'"'


def literal(data: bytes, binary: bool = False) -> bytes:
    """A literal; literal8 (RFC 3516 4.2) when binary content has NUL bytes."""
    if binary and b"\x00" in data:
        return b"~{%d}\r\n%s" % (len(data), data)
    return b"{%d}\r\n%s" % (len(data), data)


def humanize(value: bytes | None) -> bytes | None:
    """A header text for display: line breaks dropped, white-space runs made one space, no
    leading or trailing white space, NUL shown as 0x80 (what Dovecot sends for Subject)."""
    if value is None:
        return None
    v = value.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"\x80")
    if b"\t" in v or b"  " in v or v[:1] == b" " or v[-1:] == b" ":
        v = b" ".join(v.replace(b"\t", b" ").split(b" "))
        v = b" ".join(x for x in v.split(b" ") if x)
    return v


# --- ENVELOPE -------------------------------------------------------------------------------


def _address(a: Address) -> bytes:
    return b"(" + b" ".join(nstring(x) for x in (a.name, a.route, a.mailbox, a.host)) + b")"


def _address_list(addrs: tuple[Address, ...] | None) -> bytes:
    if not addrs:
        return b"NIL"
    return b"(" + b"".join(_address(a) for a in addrs) + b")"


def envelope(env: Envelope) -> bytes:
    """ENVELOPE value (RFC 9051 7.5.2); Sender and Reply-To default to From."""
    sender = env.sender if env.sender is not None else env.from_
    reply_to = env.reply_to if env.reply_to is not None else env.from_
    items = (
        nstring(env.date),
        nstring(humanize(env.subject)),
        _address_list(env.from_),
        _address_list(sender),
        _address_list(reply_to),
        _address_list(env.to),
        _address_list(env.cc),
        _address_list(env.bcc),
        nstring(env.in_reply_to),
        nstring(env.message_id),
    )
    return b"(" + b" ".join(items) + b")"


# --- BODY / BODYSTRUCTURE -------------------------------------------------------------------

_EMPTY_TEXT = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'


def _params(params: Sequence[tuple[bytes, bytes]] | None) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(astring_q(k) + b" " + astring_q(v) for k, v in params) + b")"


def _disposition(p: Part) -> bytes:
    if p.disposition is None:
        return b"NIL"
    return b"(" + astring_q(p.disposition) + b" " + _params(p.disposition_params) + b")"


def _language(p: Part) -> bytes:
    if not p.language:
        return b"NIL"
    return b"(" + b" ".join(astring_q(x) for x in p.language) + b")"


def _is_text(p: Part) -> bool:
    return p.kind == KIND_TEXT


def _write(p: Part, out: list[bytes], extended: bool) -> None:
    if p.kind == KIND_MULTIPART:
        out.append(b"(")
        if p.children:
            for c in p.children:
                _write(c, out, extended)
        else:
            # RFC 2046 5.1.1 requires one body part; show an empty one rather than none
            out.append(_EMPTY_TEXT + (b" NIL NIL NIL NIL)" if extended else b")"))
        out.append(b" ")
        out.append(astring_q(p.subtype) if p.subtype is not None else b'"x-unknown"')
        if extended:
            out.append(b" " + _params(p.params))
            out.append(b" " + _disposition(p))
            out.append(b" " + _language(p))
            out.append(b" " + nstring(p.location))
        out.append(b")")
        return
    text = _is_text(p)
    out.append(b"(")
    if p.kind == KIND_MESSAGE and p.mtype is None:
        out.append(b'"message" "rfc822"')
    elif p.mtype is None:
        out.append(b'"text" "plain"')
    else:
        sub = p.subtype if p.subtype is not None else (b"plain" if text else b"unknown")
        out.append(astring_q(p.mtype) + b" " + astring_q(sub))
    params = p.params
    if text and (params is None or not any(k.lower() == b"charset" for k, _ in params)):
        params = (*(params or ()), (b"charset", b"us-ascii"))
    out.append(b" " + _params(params))
    out.append(b" " + nstring(p.content_id))
    out.append(b" " + nstring(p.description))
    out.append(b" " + astring_q(p.cte if p.cte else b"7bit"))
    out.append(b" %d" % p.body_size)
    if text:
        out.append(b" %d" % p.lines)
    elif p.kind == KIND_MESSAGE and p.children:
        child = p.children[0]
        out.append(b" " + envelope(child.envelope or Envelope()) + b" ")
        _write(child, out, extended)
        out.append(b" %d" % p.lines)
    if extended:
        out.append(b" " + nstring(p.md5))
        out.append(b" " + _disposition(p))
        out.append(b" " + _language(p))
        out.append(b" " + nstring(p.location))
    out.append(b")")


def bodystructure(info: MessageInfo, extended: bool = True) -> bytes:
    """BODYSTRUCTURE (extended=True) or BODY (extended=False) of the whole message."""
    out: list[bytes] = []
    _write(info.root, out, extended)
    return b"".join(out)


# --- sections -------------------------------------------------------------------------------


class SectionError(Exception):
    """The section names no part of this message; RFC 9051 6.4.5 lets us answer empty."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a part-number path points at: the part, and the message whose header/text a
    HEADER/TEXT section means (None when the part is not a message)."""

    part: Part
    message: Part | None


def find_part(info: MessageInfo, path: Sequence[int]) -> Target:
    """Resolve a section part number (RFC 9051 6.4.5) to a part.

    An empty path is the whole message. Part 1 of a non-multipart message is its body; the
    parts of a message/rfc822 part are those of the enclosed message. Raises SectionError.
    """
    root = info.root
    if not path:
        return Target(root, root)
    cur = root  # the entity whose part numbers `num` indexes
    part = root
    for depth, num in enumerate(path):
        if depth:
            if part.kind == KIND_MESSAGE and part.children:
                cur = part.children[0]
            elif part.kind == KIND_MULTIPART:
                cur = part
            else:
                raise SectionError("no such part")
        if num < 1:
            raise SectionError("part numbers start at 1")
        if cur.kind == KIND_MULTIPART:
            if not cur.children:
                if num != 1:
                    raise SectionError("no such part")
                # the empty body part BODYSTRUCTURE shows for a multipart without parts
                part = Part(header_start=cur.body_start, body_start=cur.body_start,
                            end=cur.body_start)
            elif num > len(cur.children):
                raise SectionError("no such part")
            else:
                part = cur.children[num - 1]
        elif num != 1:
            raise SectionError("no such part")
        else:
            part = cur
    msg = part.children[0] if part.kind == KIND_MESSAGE and part.children else None
    return Target(part, msg)


def _nul_fix(data: bytes) -> bytes:
    # Dovecot replaces NUL with 0x80 in BODY[] output; RFC 9051 4.3 forbids NUL in literals
    return data.replace(b"\x00", b"\x80") if b"\x00" in data else data


def header_fields(header: bytes, names: Sequence[bytes], negate: bool) -> bytes:
    """HEADER.FIELDS / HEADER.FIELDS.NOT of one header block (RFC 9051 6.4.5), in order,
    followed by the blank line."""
    wanted = {n.lower() for n in names}
    out = bytearray()
    keep = False
    pos = 0
    n = len(header)
    while pos < n:
        eol = header.find(b"\n", pos)
        nxt = n if eol < 0 else eol + 1
        line = header[pos:nxt]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out += line
        else:
            colon = line.find(b":")
            name = line[:colon].rstrip(b" \t").lower() if colon >= 0 else None
            keep = name is not None and ((name in wanted) != negate)
            if keep:
                out += line
        pos = nxt
    # The blank line (RFC 9051 6.4.5). A header block that ends the message without one gets a
    # single CRLF, as Dovecot does: it ends an unterminated last field when that field is kept
    # (so no blank line follows it: "a message which has no body and no blank line"), and is
    # the blank line otherwise.
    out += b"\r\n"
    return bytes(out)


def section_bytes(
    info: MessageInfo,
    raw: bytes,
    path: Sequence[int],
    text: str = "",
    fields: Sequence[bytes] = (),
) -> bytes:
    """The bytes of BODY[<path>.<text>] before any partial range.

    text is "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME" (upper case).
    Raises SectionError when the part does not exist or the section does not apply to it.
    """
    t = find_part(info, path)
    part = t.part
    if text == "":
        if not path:
            return _nul_fix(raw)
        return _nul_fix(raw[part.body_start : part.end])
    if text == "MIME":
        if not path:
            raise SectionError("MIME needs a part number")
        return _nul_fix(raw[part.header_start : part.body_start])
    msg = t.message
    if msg is None:
        if path:
            raise SectionError("not a message/rfc822 part")
        msg = info.root
    if text == "TEXT":
        return _nul_fix(raw[msg.body_start : msg.end])
    header = raw[msg.header_start : msg.body_start]
    if text == "HEADER":
        return _nul_fix(header)
    if text == "HEADER.FIELDS":
        return _nul_fix(header_fields(header, fields, False))
    if text == "HEADER.FIELDS.NOT":
        return _nul_fix(header_fields(header, fields, True))
    raise SectionError(f"unknown section text {text}")


def partial(data: bytes, origin: int | None, length: int | None) -> bytes:
    """<origin.length> of RFC 9051 6.4.5: out of range gives the empty string."""
    if origin is None:
        return data
    if length is None:
        return data[origin:]
    return data[origin : origin + length]


# --- BINARY (RFC 3516) ----------------------------------------------------------------------


class UnknownCTE(Exception):
    """The part's Content-Transfer-Encoding is not one we can decode: NO [UNKNOWN-CTE]."""


class BrokenEncoding(Exception):
    """The part's encoded content is damaged beyond decoding."""


_IDENTITY = {b"7bit", b"8bit", b"binary"}
KNOWN_CTE = frozenset({*_IDENTITY, b"base64", b"quoted-printable"})


def decode_qp(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 6.7), lenient: a bad =XX stays as it is; trailing
    white space is removed; soft line breaks joined; hard line breaks kept as CRLF."""
    out = bytearray()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if i == last:
            # no line break after it
            if line:
                dec = _qp_line(line.rstrip(b"\r"))
                out += dec[:-2] if dec.endswith(b"\r\n") else dec
            break
        if line.endswith(b"\r"):
            line = line[:-1]
        out += _qp_line(line)
    return bytes(out)


_HEX = b"0123456789ABCDEFabcdef"


def _qp_line(line: bytes) -> bytes:
    line = line.rstrip(b" \t")
    soft = line.endswith(b"=")
    if soft:
        line = line[:-1]
    if b"=" in line:
        out = bytearray()
        i = 0
        n = len(line)
        while i < n:
            c = line[i]
            if c == 0x3D:
                h = line[i + 1 : i + 3]
                if len(h) == 2 and h[0] in _HEX and h[1] in _HEX:
                    out.append(int(h, 16))
                    i += 3
                    continue
            out.append(c)
            i += 1
        line = bytes(out)
    return line if soft else line + b"\r\n"


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(c for c in range(256) if c not in _B64_ALPHABET)


def decode_base64(data: bytes) -> bytes:
    """Base64 (RFC 2045 6.8), lenient as RFC 2045 asks: characters outside the alphabet are
    ignored, decoding stops at the first padding, a dangling last character is dropped."""
    eq = data.find(b"=")
    if eq >= 0:
        data = data[:eq]
    clean = data.translate(None, _B64_JUNK)
    extra = len(clean) % 4
    if extra == 1:
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(clean)
    except binascii.Error as exc:  # cannot happen with the cleaned input; be safe
        raise BrokenEncoding(str(exc)) from exc


def effective_cte(part: Part) -> bytes:
    """The transfer encoding to undo, lower-case: the header's token (RFC 2045 6.1), its first
    token when junk follows it, 7bit when there is no header."""
    if part.cte is None:
        return b"7bit"
    if part.cte:
        return part.cte.lower()
    return (part.cte_hint or b"").lower()


def decode_part(part: Part, body: bytes) -> bytes:
    """Content of a part with its transfer encoding removed (RFC 3516 4.1)."""
    cte = effective_cte(part)
    if cte in _IDENTITY:
        return body
    if cte == b"base64":
        return decode_base64(body)
    if cte == b"quoted-printable":
        return decode_qp(body)
    raise UnknownCTE(cte.decode("latin-1"))


def _needs_decoding(part: Part) -> bool:
    return part.kind not in (KIND_MULTIPART, KIND_MESSAGE) and (
        effective_cte(part) not in _IDENTITY
    )


def _converts(part: Part, raw: bytes) -> bool:
    """Whether BINARY relabels this leaf: it needs decoding and has a complete header (one
    cut short, with no body at all, is served unchanged, as by Dovecot)."""
    if not _needs_decoding(part):
        return False
    if part.end > part.body_start:
        return True
    return raw.endswith(b"\n\r\n", part.header_start, part.body_start) or (
        part.body_start - part.header_start == 2)


def _rewrite_cte(header: bytes) -> bytes:
    """The header without its Content-Transfer-Encoding field and with
    `Content-Transfer-Encoding: binary` added last (where Dovecot puts it)."""
    out = bytearray()
    pos = 0
    n = len(header)
    skipping = False
    blank = b""
    while pos < n:
        eol = header.find(b"\n", pos)
        nxt = n if eol < 0 else eol + 1
        line = header[pos:nxt]
        if line in (b"\r\n", b"\n"):
            blank = line
            break
        if skipping and line[:1] in (b" ", b"\t"):
            pos = nxt
            continue
        skipping = False
        colon = line.find(b":")
        if colon > 0 and line[:colon].rstrip(b" \t").lower() == b"content-transfer-encoding":
            skipping = True
        else:
            out += line
        pos = nxt
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    out += b"Content-Transfer-Encoding: binary\r\n"
    out += blank
    return bytes(out)


def _binary_tree(part: Part, raw: bytes, start: int, end: int, out: bytearray) -> None:
    """Copy raw[start:end] (which covers `part`'s body) with every encoded leaf below decoded
    and its Content-Transfer-Encoding turned into `binary` (RFC 3516 4.2 on whole subtrees)."""
    pos = start
    kids = part.children
    for child in kids:
        out += raw[pos : child.header_start]
        if child.kind in (KIND_MULTIPART, KIND_MESSAGE):
            out += raw[child.header_start : child.body_start]
            _binary_tree(child, raw, child.body_start, child.end, out)
        elif _converts(child, raw) and effective_cte(child) in KNOWN_CTE:
            out += _rewrite_cte(raw[child.header_start : child.body_start])
            out += decode_part(child, raw[child.body_start : child.end])
        else:
            out += raw[child.header_start : child.end]
        pos = child.end
    out += raw[pos:end]


def binary_section(info: MessageInfo, raw: bytes, path: Sequence[int]) -> bytes:
    """BINARY[path] (RFC 3516 4.2): the part's content with transfer encodings removed.

    For a leaf part that is its decoded body; for the whole message, a multipart or a
    message/rfc822 part every encoded leaf inside is decoded and relabelled `binary` (a leaf
    in an unknown encoding is left as it is, with its own header). Raises UnknownCTE only
    for a leaf part that itself cannot be decoded.
    """
    t = find_part(info, path)
    part = t.part
    if not path:
        part = info.root
        if part.kind not in (KIND_MULTIPART, KIND_MESSAGE):
            if not _converts(part, raw):
                return raw
            return (_rewrite_cte(raw[: part.body_start])
                    + decode_part(part, raw[part.body_start : part.end]))
        out = bytearray(raw[: part.body_start])
        _binary_tree(part, raw, part.body_start, part.end, out)
        return bytes(out)
    body = raw[part.body_start : part.end]
    if part.kind in (KIND_MULTIPART, KIND_MESSAGE):
        out = bytearray()
        _binary_tree(part, raw, part.body_start, part.end, out)
        return bytes(out)
    return decode_part(part, body)


def binary_size(info: MessageInfo, raw: bytes, path: Sequence[int]) -> int:
    """BINARY.SIZE[path] (RFC 3516 4.3)."""
    t = find_part(info, path)
    part = t.part if path else info.root
    if part.kind not in (KIND_MULTIPART, KIND_MESSAGE) and not _needs_decoding(part):
        return len(raw) if not path else part.body_size
    return len(binary_section(info, raw, path))
