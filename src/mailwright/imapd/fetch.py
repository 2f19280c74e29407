"""FETCH data items (RFC 9051 6.4.5 / 7.5.2, RFC 3516 BINARY, RFC 7162 MODSEQ) from stored data.

Everything is answered from the MessageRecord, the parse-once MessageInfo and, only for
section contents, the raw stored bytes: ENVELOPE, BODY and BODYSTRUCTURE never reparse.

API (what the session calls)
----------------------------
Pure:

``fetch_items(rec, items, info, raw, *, utf8=False) -> bytes``
    The parenthesised data of one message, e.g. ``b'(UID 4 FLAGS (\\Seen) BODY[1] {3}\\r\\nabc)'``.
    ``info`` may be None when ``needs_info(items)`` is False, ``raw`` may be None when
    ``needs_raw(items)`` is False. Raises :class:`FetchError` (``code`` "UNKNOWN-CTE") when a
    BINARY item names a part whose transfer encoding cannot be decoded (RFC 3516 4.3).
``fetch_line(seq, rec, items, info, raw, *, utf8=False) -> bytes``
    The whole untagged response ``* <seq> FETCH (...)\\r\\n``.
``fetch_chunks(seq, rec, items, info, raw, *, utf8=False) -> list[bytes]``
    The same response as pieces to write in turn; big section contents stay separate
    pieces (no copy into one string): what a session should use to stream large FETCHes.
``needs_info(items) -> bool`` / ``needs_raw(items) -> bool``
    What has to be loaded from the store for these items.
``internaldate(timestamp) -> bytes``
    RFC 9051 date-time, quoted, in UTC.

Async adapter for the session (same signature as the stand-in in ``imapd/content.py``):

``await render_fetch_line(store, seq, rec, items, *, utf8) -> bytes``
    Loads the meta/blob only when needed and raises ``content.FetchFailed`` on FetchError.
``await render_fetch_chunks(store, seq, rec, items, *, utf8) -> list[bytes]``
    The same as pieces (see fetch_chunks).

Not done here, on purpose: the implicit \\Seen of non-PEEK items, CHANGEDSINCE/VANISHED and the
UID item that UID FETCH adds; the session does those (RFC 9051 6.4.5, 6.4.9; RFC 7162).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

from mailwright.imapd import downgrade, objectid, preview
from mailwright.mime import imapfmt
from mailwright.mime.model import MessageInfo
from mailwright.proto.imap import ast
from mailwright.store.api import BlobStore, MessageRecord

_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
           b"Nov", b"Dec")

_INFO_ATTRS = frozenset({"ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822", "RFC822.HEADER",
                         "RFC822.TEXT", "PREVIEW"})
_RAW_ATTRS = frozenset({"RFC822", "RFC822.HEADER", "RFC822.TEXT", "PREVIEW"})


class FetchError(Exception):
    """A FETCH item that cannot be answered; the command gets NO with `code`."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.code = code


def needs_info(items: Sequence[ast.FetchItem]) -> bool:
    return any(
        not isinstance(i, ast.FetchAttr) or i.name in _INFO_ATTRS for i in items
    )


def needs_raw(items: Sequence[ast.FetchItem]) -> bool:
    return any(
        isinstance(i, ast.FetchBody | ast.FetchBinary | ast.FetchBinarySize)
        or (isinstance(i, ast.FetchAttr) and i.name in _RAW_ATTRS)
        for i in items
    )


def internaldate(timestamp: float) -> bytes:
    """RFC 9051 9 date-time (``"dd-Mon-yyyy hh:mm:ss +zzzz"``), in UTC as we store it."""
    t = time.gmtime(timestamp)
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def _flags(rec: MessageRecord) -> bytes:
    # system flags first (\Recent among them for IMAP4rev1 sessions), then keywords
    flags = sorted(rec.flags, key=lambda f: (not f.startswith("\\"), f.lower()))
    return b"(" + b" ".join(f.encode("utf-8") for f in flags) + b")"


def _section_label(sec: ast.Section) -> bytes:
    # RFC 9051 7.5.2: the section as requested; field names as the client sent them
    return b"BODY[" + str(sec).encode("utf-8") + b"]"


def _part_label(part: tuple[int, ...]) -> bytes:
    return ".".join(str(p) for p in part).encode("ascii")


def _partial(data: bytes, p: ast.Partial | None) -> tuple[bytes, bytes]:
    if p is None:
        return data, b""
    return imapfmt.partial(data, p.offset, p.count), b"<%d>" % p.offset


def _require(info: MessageInfo | None, raw: bytes | None) -> tuple[MessageInfo, bytes]:
    if info is None or raw is None:
        raise ValueError("fetch_items needs info and raw for these items")
    return info, raw


def _lit(data: bytes, binary: bool = False) -> list[bytes]:
    """A literal as two chunks, so that big contents are never copied into a new string."""
    if binary and b"\x00" in data:
        return [b"~{%d}\r\n" % len(data), data]
    return [b"{%d}\r\n" % len(data), data]


def _one(
    rec: MessageRecord,
    item: ast.FetchItem,
    info: MessageInfo | None,
    raw: bytes | None,
    utf8: bool,
) -> list[bytes]:
    if isinstance(item, ast.FetchAttr):
        n = item.name
        if n == "UID":
            return [b"UID %d" % rec.uid]
        if n == "FLAGS":
            return [b"FLAGS " + _flags(rec)]
        if n == "INTERNALDATE":
            return [b"INTERNALDATE " + internaldate(rec.timestamp)]
        if n == "RFC822.SIZE":
            return [b"RFC822.SIZE %d" % rec.size]
        if n == "MODSEQ":
            return [b"MODSEQ (%d)" % rec.modseq]  # RFC 7162 3.1.4
        if n == "EMAILID":
            return [b"EMAILID (" + objectid.email_id(rec.blob_id).encode() + b")"]
        if n == "THREADID":
            return [b"THREADID NIL"]  # RFC 8474 5.2: no thread ids are computed
        if info is None:
            raise ValueError(f"{n} needs the parsed message")
        if n == "ENVELOPE":
            env = info.envelope if utf8 else downgrade.envelope(info.envelope)
            return [b"ENVELOPE " + imapfmt.envelope(env)]
        if n == "BODYSTRUCTURE":
            return [b"BODYSTRUCTURE " + imapfmt.bodystructure(info, True)]
        if n == "BODY":
            return [b"BODY " + imapfmt.bodystructure(info, False)]
        if n == "PREVIEW":
            info, raw = _require(info, raw)
            # RFC 8970 3.2: UTF-8 text; a literal when it is not plain ASCII
            return [b"PREVIEW " + imapfmt.nstring(preview.preview_text(info, raw).encode())]
        # RFC 3501 6.4.5: RFC822 = BODY[], RFC822.HEADER = BODY.PEEK[HEADER],
        # RFC822.TEXT = BODY[TEXT]
        info, raw = _require(info, raw)
        text = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[n]
        data = imapfmt.section_bytes(info, raw, (), text)
        if text == "HEADER" and not utf8:
            data = downgrade.header_block(data)  # RFC 6855 7
        return [n.encode("ascii") + b" ", *_lit(data)]
    if isinstance(item, ast.FetchBody):
        info, raw = _require(info, raw)
        sec = item.section
        label = _section_label(sec)
        try:
            data = imapfmt.section_bytes(info, raw, sec.part, sec.text or "",
                                         [f.encode("utf-8") for f in sec.fields])
        except imapfmt.SectionError:
            # a part that does not exist: the empty string, as Dovecot answers
            return [label + (b"<%d>" % item.partial.offset if item.partial else b"") + b' ""']
        if not utf8 and sec.text and sec.text.startswith(("HEADER", "MIME")):
            # RFC 6855 7 / RFC 6857: a client that did not enable UTF8=ACCEPT gets the
            # header fields downgraded; the partial range applies to what it is sent
            data = downgrade.header_block(data)
        data, origin = _partial(data, item.partial)
        return [label + origin + b" ", *_lit(data)]
    if isinstance(item, ast.FetchBinary | ast.FetchBinarySize):
        info, raw = _require(info, raw)
        part = _part_label(item.part)
        try:
            if isinstance(item, ast.FetchBinarySize):
                return [b"BINARY.SIZE[" + part + b"] %d" % imapfmt.binary_size(info, raw,
                                                                               item.part)]
            decoded = imapfmt.binary_section(info, raw, item.part)
        except imapfmt.UnknownCTE as exc:
            # RFC 3516 4.3: only the part that cannot be decoded fails
            raise FetchError(f"Unknown Content-Transfer-Encoding {exc}", "UNKNOWN-CTE") from None
        except imapfmt.BrokenEncoding:
            raise FetchError("Invalid data in MIME part", "PARSE") from None
        except imapfmt.SectionError:
            # no such part: empty, size 0 (what Dovecot answers)
            if isinstance(item, ast.FetchBinarySize):
                return [b"BINARY.SIZE[" + part + b"] 0"]
            decoded = b""
        data, origin = _partial(decoded, item.partial)
        return [b"BINARY[" + part + b"]" + origin + b" ", *_lit(data, binary=True)]
    raise ValueError(f"unknown fetch item {item!r}")  # pragma: no cover


def fetch_chunks(
    seq: int,
    rec: MessageRecord,
    items: Sequence[ast.FetchItem],
    info: MessageInfo | None,
    raw: bytes | None,
    *,
    utf8: bool = False,
) -> list[bytes]:
    """The untagged FETCH response as pieces to write one after the other: section contents
    are separate pieces, never copied into one big string (RFC 9051 7.5.2 framing)."""
    out: list[bytes] = [b"* %d FETCH (" % seq]
    for i, item in enumerate(items):
        pieces = _one(rec, item, info, raw, utf8)
        if i:
            pieces[0] = b" " + pieces[0]
        out.extend(pieces)
    out.append(b")\r\n")
    return out


_RECORD_ATTRS = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "EMAILID",
                           "THREADID"})
#: what Dovecot answers for a message whose content is gone: an empty text/plain part
_EMPTY_BODY = b'("text" "plain" NIL NIL NIL "7bit" 0 0'
_NIL_ENVELOPE = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def _ghost(rec: MessageRecord, item: ast.FetchItem, utf8: bool) -> bytes:
    if isinstance(item, ast.FetchAttr):
        n = item.name
        if n in _RECORD_ATTRS:
            return b"".join(_one(rec, item, None, None, utf8))
        if n == "ENVELOPE":
            return b"ENVELOPE " + _NIL_ENVELOPE
        if n == "BODYSTRUCTURE":
            return b"BODYSTRUCTURE " + _EMPTY_BODY + b" NIL NIL NIL NIL)"
        if n == "BODY":
            return b"BODY " + _EMPTY_BODY + b")"
        return n.encode("ascii") + b" NIL"  # RFC822, RFC822.HEADER, RFC822.TEXT, PREVIEW
    if isinstance(item, ast.FetchBody):
        origin = b"<%d>" % item.partial.offset if item.partial else b""
        return _section_label(item.section) + origin + b" NIL"
    if isinstance(item, ast.FetchBinarySize):
        return b"BINARY.SIZE[" + _part_label(item.part) + b"] 0"
    if isinstance(item, ast.FetchBinary):
        origin = b"<%d>" % item.partial.offset if item.partial else b""
        return b"BINARY[" + _part_label(item.part) + b"]" + origin + b" NIL"
    raise ValueError(f"unknown fetch item {item!r}")  # pragma: no cover


def ghost_line(
    seq: int, rec: MessageRecord, items: Sequence[ast.FetchItem], *, utf8: bool = False
) -> bytes:
    """The FETCH response for a message another session expunged whose content can no longer
    be read (RFC 2180 4.1.1, RFC 9051 7.5.1: the message keeps its number until the
    EXPUNGE is sent, so it is answered from what is known): the record's items as they are,
    the content items empty as Dovecot gives them (NIL sections, an all-NIL envelope, an
    empty text/plain structure, sizes 0); the command ends ``OK [EXPUNGEISSUED]``."""
    return b"* %d FETCH (" % seq + b" ".join(_ghost(rec, i, utf8) for i in items) + b")\r\n"


def fetch_items(
    rec: MessageRecord,
    items: Sequence[ast.FetchItem],
    info: MessageInfo | None,
    raw: bytes | None,
    *,
    utf8: bool = False,
) -> bytes:
    """The parenthesised FETCH data for one message (see module docstring).

    Without `utf8` (UTF8=ACCEPT, RFC 6855 7 not enabled) ENVELOPE and header sections are
    downgraded to ASCII (imapd.downgrade, RFC 6857); with it they are sent as stored.
    """
    chunks = fetch_chunks(0, rec, items, info, raw, utf8=utf8)
    chunks[0] = b"("
    chunks[-1] = b")"
    return b"".join(chunks)


def fetch_line(
    seq: int,
    rec: MessageRecord,
    items: Sequence[ast.FetchItem],
    info: MessageInfo | None,
    raw: bytes | None,
    *,
    utf8: bool = False,
) -> bytes:
    return b"".join(fetch_chunks(seq, rec, items, info, raw, utf8=utf8))


async def load_message(
    store: BlobStore, rec: MessageRecord, want_info: bool, want_raw: bool
) -> tuple[MessageInfo | None, bytes | None]:
    """The parse-once data and/or the raw bytes of a message, parsing again only when the
    stored meta is missing or unreadable (e.g. a blob imported before the parser existed)."""
    info: MessageInfo | None = None
    raw: bytes | None = None
    if want_raw:
        raw = await store.read_blob(rec.blob_id)
    if want_info:
        kept = _INFOS.get(rec.blob_id)
        if kept is not None:
            _INFOS.move_to_end(rec.blob_id)
            return kept[0], raw
        meta = await store.get_meta(rec.blob_id)
        weight = len(meta) if meta else 0
        if meta:
            try:
                info = MessageInfo.from_meta(meta)
            except (ValueError, KeyError, TypeError):
                info = None
        if info is None:
            from mailwright.mime import parse_message

            if raw is None:
                raw = await store.read_blob(rec.blob_id)
            info = parse_message(raw)
            weight = len(raw)
        _keep_info(rec.blob_id, info, weight)
    return info, raw


def _keep_info(blob_id: str, info: MessageInfo, weight: int) -> None:
    """Keep *info* in the shared cache, weighed by what it was decoded from (its stored meta,
    or the message when it was parsed again); the least recently used go first."""
    global _infos_weight
    if weight > INFO_MAX_BYTES:
        return  # decoded again when asked: one message may not push out a hundred
    old = _INFOS.pop(blob_id, None)  # two sessions decoded it at once
    if old is not None:
        _infos_weight -= old[1]
    _INFOS[blob_id] = (info, weight)
    _infos_weight += weight
    while len(_INFOS) > _INFOS_MAX or _infos_weight > INFOS_MAX_BYTES:
        _, (_, gone) = _INFOS.popitem(last=False)
        _infos_weight -= gone


#: decoded parse-once data by blob id, shared by every session: a blob never changes, so a
#: message fetched again (a client's listing, another session's FETCH) is not decoded again;
#: a MessageInfo decodes its sections lazily, so an entry holds what was asked of it. Bounded
#: in entries and in the bytes they were decoded from: a decoded tree is several times its
#: source (a message of 10,000 MIME parts, 480 KB that any sender can deliver, decodes to
#: about 6 MB), so a count alone let one FETCH 1:* BODYSTRUCTURE keep gigabytes.
_INFOS: OrderedDict[str, tuple[MessageInfo, int]] = OrderedDict()
_INFOS_MAX = 2048
INFOS_MAX_BYTES = 8 * 1024 * 1024
INFO_MAX_BYTES = 1024 * 1024  # one entry at most
_infos_weight = 0


def clear_infos() -> None:
    """Forget every decoded message (tests that remove blobs behind the store's back)."""
    global _infos_weight
    _INFOS.clear()
    _infos_weight = 0


async def render_fetch_line(
    store: BlobStore,
    seq: int,
    rec: MessageRecord,
    items: Sequence[ast.FetchItem],
    *,
    utf8: bool,
) -> bytes:
    """Session adapter: one whole untagged FETCH response for `rec`."""
    info, raw = await load_message(store, rec, needs_info(items), needs_raw(items))
    try:
        return fetch_line(seq, rec, items, info, raw, utf8=utf8)
    except FetchError as exc:
        from mailwright.imapd.content import FetchFailed

        raise FetchFailed(str(exc), exc.code) from None


async def render_fetch_chunks(
    store: BlobStore,
    seq: int,
    rec: MessageRecord,
    items: Sequence[ast.FetchItem],
    *,
    utf8: bool,
) -> list[bytes]:
    """Session adapter like render_fetch_line, but as pieces to write in turn."""
    info, raw = await load_message(store, rec, needs_info(items), needs_raw(items))
    try:
        return fetch_chunks(seq, rec, items, info, raw, utf8=utf8)
    except FetchError as exc:
        from mailwright.imapd.content import FetchFailed

        raise FetchFailed(str(exc), exc.code) from None
