"""Text decoding for SEARCH, SORT and THREAD: RFC 2047 header words and body charsets.

Header and body bytes become Python strings so that searches compare Unicode text
case-insensitively (RFC 9051 6.4.4) whatever charset and transfer encoding the sender used.
Nothing here raises: undecodable input degrades to Latin-1 text or is left as written.
"""

from __future__ import annotations

import binascii
import codecs
import re

from .model import KIND_MESSAGE, KIND_MULTIPART, KIND_TEXT, MessageInfo, Part

# RFC 2047 2: =?charset?encoding?encoded-text?= (RFC 2231 5 allows charset*language)
_EWORD = re.compile(rb"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_FFFD_RUN = re.compile("\ufffd+")
_SPACE_BETWEEN = re.compile(rb"(\?=)[ \t\r\n]+(=\?)")


_ALIASES = {"iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6", "utf8": "utf-8",
            "x-unknown": "", "unknown-8bit": ""}


def _codec(charset: bytes, strict: bool = False) -> str | None:
    """The Python codec of a MIME charset name; `strict` knows only what iconv knows (no
    RFC 1556 "-i" aliases), for sort keys that must agree with Dovecot."""
    name = charset.split(b"*", 1)[0].decode("ascii", "replace").strip().lower()
    if not strict:
        name = _ALIASES.get(name, name)
    elif name.endswith(("-i", "-e")) and name.startswith("iso-8859-"):
        return None
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def bytes_to_text(data: bytes, charset: bytes | None = None, strict: bool = False) -> str:
    """Bytes in a declared charset (or UTF-8, RFC 6532) to text, never failing.

    Undeclared bytes that are not UTF-8 become Windows-1252 text (what they nearly always
    are, good for finding words), or U+FFFD when `strict` (what Dovecot sorts by)."""
    if charset:
        codec = _codec(charset)
        if codec is not None:
            try:
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if strict:
            # one U+FFFD per run of bad bytes, like Dovecot's UTF-8 repair
            return _FFFD_RUN.sub("\ufffd", data.decode("utf-8", "replace"))
        return data.decode("cp1252", "replace") if b"\x81" not in data else data.decode(
            "latin-1")


def _decode_word(m: re.Match[bytes], strict: bool = False) -> bytes | None:
    codec = _codec(m.group(1), strict)
    enc = m.group(2).upper()
    text = m.group(3)
    try:
        if enc == b"B":
            text = text + b"=" * (-len(text) % 4)
            raw = binascii.a2b_base64(text)
        else:
            raw = binascii.a2b_qp(text.replace(b"_", b" "), header=False)
        if codec is None:
            # an unknown charset: the decoded bytes as they are (UTF-8 if they are valid),
            # which is what Dovecot searches too
            return bytes_to_text(raw, strict=strict).encode("utf-8")
        return raw.decode(codec, "replace").encode("utf-8")
    except (binascii.Error, LookupError, ValueError):
        return None


def decode_header(value: bytes, strict: bool = False) -> str:
    """An unfolded header value with RFC 2047 encoded-words decoded (white space between two
    encoded-words dropped, RFC 2047 6.2); words in unknown charsets give their bytes as UTF-8
    (or Latin-1), broken words stay as written. `strict`: see bytes_to_text."""
    if b"\n" in value or b"\r" in value:
        value = value.replace(b"\r", b"").replace(b"\n", b"")
    if b"=?" not in value:
        return bytes_to_text(value, strict=strict)
    value = _SPACE_BETWEEN.sub(rb"\1\2", value)
    out: list[str] = []
    pos = 0
    for m in _EWORD.finditer(value):
        out.append(bytes_to_text(value[pos : m.start()], strict=strict))
        dec = _decode_word(m, strict)
        out.append(dec.decode("utf-8") if dec is not None else bytes_to_text(m.group(0)))
        pos = m.end()
    out.append(bytes_to_text(value[pos:], strict=strict))
    return "".join(out)


def header_fields(raw: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    """(lower-case name, unfolded raw value) of every field of the header in raw[start:end]."""
    out: list[tuple[bytes, bytes]] = []
    name: bytes | None = None
    value = bytearray()
    for line in raw[start:end].split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                value += line
            continue
        if name is not None:
            out.append((name, bytes(value)))
            name = None
        if not line:
            continue
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = line[:colon].rstrip(b" \t").lower()
        value = bytearray(line[colon + 1 :].lstrip(b" \t"))
    if name is not None:
        out.append((name, bytes(value)))
    return out


def _charset(part: Part) -> bytes | None:
    for k, v in part.params or ():
        if k.lower() == b"charset":
            return v
        if k.lower() == b"charset*":
            return v.split(b"'", 1)[0]
    return None


_BINARY_TYPES = frozenset({b"application", b"image", b"audio", b"video", b"model", b"font"})


def text_parts(info: MessageInfo) -> list[Part]:
    """The leaf parts worth searching as text, in order, including those of enclosed messages:
    text/* (or text/plain by default), message/* leaves such as delivery-status or partial,
    and parts whose type cannot be read; not application/image/audio/video data."""
    out: list[Part] = []

    def walk(p: Part) -> None:
        if p.kind in (KIND_MULTIPART, KIND_MESSAGE):
            for c in p.children:
                walk(c)
        elif p.kind == KIND_TEXT or (p.mtype or b"").lower() not in _BINARY_TYPES:
            out.append(p)

    walk(info.root)
    return out


def part_text(part: Part, raw: bytes) -> str:
    """A text part's content with transfer encoding and charset removed."""
    from .imapfmt import BrokenEncoding, UnknownCTE, decode_part

    body = raw[part.body_start : part.end]
    try:
        data = decode_part(part, body)
    except (UnknownCTE, BrokenEncoding):
        data = body
    return bytes_to_text(data, _charset(part))
