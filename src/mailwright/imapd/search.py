"""SEARCH key evaluation (RFC 9051 6.4.4, RFC 3501 6.4.4, RFC 7162 MODSEQ, RFC 5032 WITHIN,
RFC 5182 "$") over MessageRecord + MessageInfo + raw bytes.

Text keys compare Unicode case-insensitively (casefold) on decoded text: RFC 2047 words in
headers, transfer encodings and charsets in bodies; address fields also match in their written
form (``name <mailbox@domain>``); TEXT covers the top header, the MIME headers of the parts and
the bodies. Dates disregard time and timezone: the internal date is taken in UTC (as stored),
the first Date: header in its own zone, and a message without a readable one counts as sent
on 1-Jan-1970. Those choices are Dovecot's: tests/imapd/test_sortthread_dovecot.py compares
the results with a running Dovecot 2.3.19.

API (what the session calls)
----------------------------
Pure:

``SearchContext(largest_seq, largest_uid, saved=frozenset(), now=None, rev2=True)``
    What a key needs besides the message: ``*`` resolution, the RFC 5182 saved UIDs, "now"
    for OLDER/YOUNGER.
``needs_content(key) -> bool`` / ``needs_raw(key) -> bool``
    Whether any key needs the message (else no blob/meta is read at all), and whether it
    needs the raw bytes rather than only the parse-once meta (SENT* dates need only meta).
``MessageText(info, raw)``
    Lazily decoded header fields and body text of one message (one per message per search).
``compile_key(key, ctx) -> Predicate`` / ``matches(key, seq, rec, ctx, text) -> bool``
    The key made once into closures, called per message; ``matches`` tests one message.
    ``text`` may be None when ``needs_content(key)`` is False.
``search(key, msgs, ctx, load) -> list[(seq, rec)]`` / ``search_uids(...) -> set[int]``
    ``msgs`` is [(seq, MessageRecord)] in sequence order; ``load(rec) -> MessageText``.

Async adapter (called by the session through ``imapd/content.py``):

``await search_messages(store, key, msgs, *, saved, largest_seq, largest_uid, rev2)``
    -> [(seq, rec)] of the matching messages.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_tz

from mailwright.imapd import objectid
from mailwright.mime.decode import decode_header, header_fields, part_text, text_parts
from mailwright.mime.model import MessageInfo
from mailwright.mime.searchfields import CACHED_FIELDS, field_text
from mailwright.proto.imap import ast
from mailwright.store.api import BlobStore, MessageRecord, NotFound


@dataclass(frozen=True, slots=True)
class SearchContext:
    largest_seq: int
    largest_uid: int
    saved: frozenset[int] = frozenset()
    now: datetime | None = None
    rev2: bool = True


def parse_sent_date(value: bytes | None) -> date | None:
    """The calendar date of an RFC 5322 Date: value, in the zone it was written in."""
    if not value:
        return None
    try:
        parts = parsedate_tz(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parts is None:
        return None
    try:
        return date(parts[0], parts[1], parts[2])
    except (ValueError, TypeError):
        return None


def sent_timestamp(value: bytes | None) -> float | None:
    """Date: as seconds since the epoch (UTC), or None when it cannot be read."""
    if not value:
        return None
    try:
        parts = parsedate_tz(value.decode("latin-1"))
        if parts is None:
            return None
        dt = datetime(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], tzinfo=UTC)
        return dt.timestamp() - (parts[9] or 0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


_EPOCH = date(1970, 1, 1)
@dataclass
class MessageText:
    """Decoded text of one message, computed on first use."""

    info: MessageInfo
    raw: bytes
    #: False when only the meta was read (header keys answered from its field cache)
    has_raw: bool = True
    _fields: list[tuple[bytes, bytes]] | None = field(default=None, repr=False)
    _decoded: dict[bytes, list[str]] = field(default_factory=dict, repr=False)
    _body: str | None = field(default=None, repr=False)
    _header: str | None = field(default=None, repr=False)
    _mime: str | None = field(default=None, repr=False)

    @property
    def fields(self) -> list[tuple[bytes, bytes]]:
        if self._fields is None:
            self._fields = header_fields(self.raw, 0, self.info.header_end)
        return self._fields

    def header_values(self, name: bytes) -> list[str]:
        """Decoded, case-folded values of every field called `name` (lower-case).

        Address fields are also given in their written form (``name <mailbox@domain>``),
        so that e.g. FROM "@" finds an address whose domain is missing, as in Dovecot."""
        got = self._decoded.get(name)
        if got is None:
            cached = self.info.search_fields
            if cached is not None and name in CACHED_FIELDS:
                # decoded at delivery by the same rule (mime/searchfields.py)
                got = cached.get(name, [])
            else:
                if not self.has_raw:
                    raise ValueError("this header field needs the message")
                got = [field_text(k, v) for k, v in self.fields if k == name]
            self._decoded[name] = got
        return got

    @property
    def mime_header_text(self) -> str:
        """The decoded headers of every part below the top level (TEXT searches them)."""
        if self._mime is None:
            chunks: list[str] = []
            stack = list(self.info.root.children)
            while stack:
                p = stack.pop()
                stack.extend(p.children)
                # every line, also those without a colon (a header cut short can hold
                # anything); folded lines joined
                block = self.raw[p.header_start : p.body_start].replace(b"\r\n", b"\n")
                block = block.replace(b"\n ", b" ").replace(b"\n\t", b"\t")
                chunks.extend(decode_header(line) for line in block.split(b"\n") if line)
            self._mime = "\n".join(chunks).casefold()
        return self._mime

    @property
    def header_text(self) -> str:
        if self._header is None:
            self._header = "\n".join(
                k.decode("latin-1") + ": " + decode_header(v) for k, v in self.fields
            ).casefold()
        return self._header

    @property
    def body_text(self) -> str:
        if self._body is None:
            self._body = "\n".join(
                part_text(p, self.raw) for p in text_parts(self.info)
            ).casefold()
        return self._body


def needs_content(key: ast.SearchKey) -> bool:
    if isinstance(key, ast.SearchHeader | ast.SearchText):
        return True
    if isinstance(key, ast.SearchDate):
        return key.field == "sent"
    if isinstance(key, ast.SearchAnd):
        return any(needs_content(k) for k in key.keys)
    if isinstance(key, ast.SearchOr):
        return needs_content(key.left) or needs_content(key.right)
    if isinstance(key, ast.SearchNot):
        return needs_content(key.key)
    return False


def needs_raw(key: ast.SearchKey, cached: frozenset[bytes] = frozenset()) -> bool:
    """Whether any key needs the raw message (header or body text), not only the meta;
    header fields named in *cached* are read from the meta's field cache."""
    if isinstance(key, ast.SearchHeader):
        return key.name.lower().encode("utf-8") not in cached
    if isinstance(key, ast.SearchText):
        return True
    if isinstance(key, ast.SearchAnd):
        return any(needs_raw(k, cached) for k in key.keys)
    if isinstance(key, ast.SearchOr):
        return needs_raw(key.left, cached) or needs_raw(key.right, cached)
    if isinstance(key, ast.SearchNot):
        return needs_raw(key.key, cached)
    return False


def candidates(
    key: ast.SearchKey, msgs: Sequence[tuple[int, MessageRecord]], ctx: SearchContext
) -> Sequence[tuple[int, MessageRecord]]:
    """*msgs* less those that a content-free part of an AND already rules out (``UID 90000:*
    FROM x`` reads 1,000 messages of a 100,000-message mailbox, not all of them); the whole
    key is still evaluated on what is left."""
    if not isinstance(key, ast.SearchAnd) or not needs_content(key):
        return msgs
    cheap = [k for k in key.keys if not needs_content(k)]
    if not cheap:
        return msgs
    pred = compile_key(ast.SearchAnd(tuple(cheap)), ctx)
    return [(seq, rec) for seq, rec in msgs if pred(seq, rec, None)]


def _date_cmp(d: date, op: str, want: date) -> bool:
    if op == "before":
        return d < want
    if op == "on":
        return d == want
    return d >= want  # since


_LOWERED: dict[frozenset[str], frozenset[str]] = {}


def _lowered(flags: frozenset[str]) -> frozenset[str]:
    """*flags* in lower case (flags compare case-insensitively, RFC 9051 2.3.2); flag sets are
    few and shared between records, so each is lowered once."""
    got = _LOWERED.get(flags)
    if got is None:
        if len(_LOWERED) > 4096:
            _LOWERED.clear()
        got = _LOWERED[flags] = frozenset(f.lower() for f in flags)
    return got


#: a compiled key: whether one message matches (seq, record, its text or None)
Predicate = Callable[[int, MessageRecord, "MessageText | None"], bool]


def matches(
    key: ast.SearchKey,
    seq: int,
    rec: MessageRecord,
    ctx: SearchContext,
    text: MessageText | None,
) -> bool:
    """Whether one message satisfies `key` (RFC 9051 6.4.4); to test many messages, compile
    the key once (`compile_key`)."""
    return compile_key(key, ctx)(seq, rec, text)


def _need_text(text: MessageText | None, what: str) -> MessageText:
    if text is None:
        raise ValueError(f"{what} need the message")
    return text


def compile_key(key: ast.SearchKey, ctx: SearchContext) -> Predicate:
    """*key* as one closure per node, made once per SEARCH: the per-message work is the test
    itself, with no walk of the key's types (what a SEARCH over 100,000 messages paid per key
    per message); needles are case-folded and header names encoded once."""
    if isinstance(key, ast.SearchAll):
        return lambda seq, rec, text: True
    if isinstance(key, ast.SearchAnd):
        parts = tuple(compile_key(k, ctx) for k in key.keys)
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            a, b = parts
            return lambda seq, rec, text: a(seq, rec, text) and b(seq, rec, text)
        return lambda seq, rec, text: all(p(seq, rec, text) for p in parts)
    if isinstance(key, ast.SearchOr):
        left, right = compile_key(key.left, ctx), compile_key(key.right, ctx)
        return lambda seq, rec, text: left(seq, rec, text) or right(seq, rec, text)
    if isinstance(key, ast.SearchNot):
        inner = compile_key(key.key, ctx)
        return lambda seq, rec, text: not inner(seq, rec, text)
    if isinstance(key, ast.SearchHeader):
        name = key.name.lower().encode("utf-8")
        needle = key.value.casefold()

        def header(seq: int, rec: MessageRecord, text: MessageText | None) -> bool:
            return any(needle in v for v in _need_text(text, "header keys").header_values(name))

        return header
    if isinstance(key, ast.SearchFlag):
        # \Recent is among the flags of a message recent to an IMAP4rev1 session
        # (RFC 3501 2.3.2); RFC 9051 dropped it, so IMAP4rev2 sessions never find it.
        # Flag sets are few and shared between records: each is looked at once.
        flag, lower, present = key.flag, key.flag.lower(), key.present
        seen: dict[frozenset[str], bool] = {}

        def has_flag(seq: int, rec: MessageRecord, text: MessageText | None) -> bool:
            got = seen.get(rec.flags)
            if got is None:
                flags = rec.flags
                got = seen[flags] = (flag in flags or lower in _lowered(flags)) == present
            return got

        return has_flag
    if isinstance(key, ast.SearchSequence | ast.SearchUid):
        saved = ctx.saved
        if key.set.saved:
            return lambda seq, rec, text: rec.uid in saved
        contains = key.set.contains
        if isinstance(key, ast.SearchSequence):
            largest_seq = ctx.largest_seq
            return lambda seq, rec, text: contains(seq, largest_seq)
        largest_uid = ctx.largest_uid
        return lambda seq, rec, text: contains(rec.uid, largest_uid)
    if isinstance(key, ast.SearchObjectId):
        # RFC 8474 6; THREADID matches nothing when thread ids are not computed (5.2)
        if key.kind != "EMAILID":
            return lambda seq, rec, text: False
        oid = key.objectid
        return lambda seq, rec, text: objectid.email_id(rec.blob_id) == oid
    if isinstance(key, ast.SearchSaved):
        saved = ctx.saved
        return lambda seq, rec, text: rec.uid in saved
    if isinstance(key, ast.SearchSize):
        size = key.size
        if key.op == "larger":
            return lambda seq, rec, text: rec.size > size
        return lambda seq, rec, text: rec.size < size
    if isinstance(key, ast.SearchModSeq):
        modseq = key.modseq
        return lambda seq, rec, text: rec.modseq >= modseq
    if isinstance(key, ast.SearchWithin):
        now = (ctx.now or datetime.now(UTC)).timestamp()
        seconds = key.seconds
        if key.op == "older":
            return lambda seq, rec, text: now - rec.timestamp >= seconds
        return lambda seq, rec, text: now - rec.timestamp <= seconds
    if isinstance(key, ast.SearchDate):
        op, want = key.op, key.date
        if key.field == "sent":
            def sent(seq: int, rec: MessageRecord, text: MessageText | None) -> bool:
                env = _need_text(text, "SENT* keys").info.envelope
                # the first Date: field; none or unreadable counts as the epoch (Dovecot)
                return _date_cmp(parse_sent_date(env.date_first or env.date) or _EPOCH, op,
                                 want)

            return sent
        return lambda seq, rec, text: _date_cmp(
            datetime.fromtimestamp(rec.timestamp, UTC).date(), op, want)
    if isinstance(key, ast.SearchText):
        needle = key.value.casefold()
        whole = key.where == "text"

        def text_key(seq: int, rec: MessageRecord, text: MessageText | None) -> bool:
            t = _need_text(text, "text keys")
            if needle in t.body_text:
                return True
            # RFC 9051 6.4.4: TEXT is the header and the body, and the body of a multipart
            # includes the MIME headers of its parts
            return whole and (needle in t.header_text or needle in t.mime_header_text)

        return text_key
    raise ValueError(f"unknown search key {key!r}")  # pragma: no cover


def search(
    key: ast.SearchKey,
    msgs: Sequence[tuple[int, MessageRecord]],
    ctx: SearchContext,
    load: Callable[[MessageRecord], MessageText] | None = None,
) -> list[tuple[int, MessageRecord]]:
    content = needs_content(key)
    if content and load is None:
        raise ValueError("this search needs message content: pass load")
    pred = compile_key(key, ctx)
    if not content or load is None:
        return [(seq, rec) for seq, rec in msgs if pred(seq, rec, None)]
    return [(seq, rec) for seq, rec in msgs if pred(seq, rec, load(rec))]


def search_uids(
    key: ast.SearchKey,
    msgs: Sequence[tuple[int, MessageRecord]],
    ctx: SearchContext,
    load: Callable[[MessageRecord], MessageText] | None = None,
) -> set[int]:
    return {rec.uid for _, rec in search(key, msgs, ctx, load)}


async def search_messages(
    store: BlobStore,
    key: ast.SearchKey,
    msgs: list[tuple[int, MessageRecord]],
    *,
    saved: set[int],
    largest_seq: int,
    largest_uid: int,
    rev2: bool,
) -> list[tuple[int, MessageRecord]]:
    """Session adapter: the matching (seq, record) pairs, reading content only if needed."""
    from mailwright.imapd.fetch import load_message

    ctx = SearchContext(largest_seq, largest_uid, frozenset(saved), datetime.now(UTC), rev2)
    if not needs_content(key):
        return search(key, msgs, ctx)
    # raw bytes only where the meta's field cache does not answer (messages stored before
    # it was kept, or keys on other fields and on text)
    raw_always = needs_raw(key)
    raw_if_cached = needs_raw(key, CACHED_FIELDS)
    pred = compile_key(key, ctx)
    out = []
    for seq, rec in candidates(key, msgs, ctx):
        text = _TEXTS.get(rec.blob_id)
        if text is None or (raw_if_cached and not text.has_raw):
            try:
                info, _ = await load_message(store, rec, True, False)
                assert info is not None
                raw: bytes | None = None
                if raw_if_cached if info.search_fields is not None else raw_always:
                    raw = await store.read_blob(rec.blob_id)
            except NotFound:
                # expunged by another session while this search ran (RFC 2180 4.1.3: an
                # expunged message may be left out of a SEARCH result)
                continue
            text = MessageText(info, raw or b"", raw is not None)
            _TEXTS.put(rec.blob_id, text)
        if pred(seq, rec, text):
            out.append((seq, rec))
    return out


class _TextCache:
    """Decoded message text by blob id: blobs never change, so what one SEARCH decoded (header
    fields, body text) serves every later SEARCH of any session over the same message, as
    Dovecot's cache keeps fields once searched. Entries hold the raw bytes (messages up to
    `max_item` bytes) or only the meta with its decoded field cache."""

    def __init__(self, max_items: int = 5000, max_item: int = 256 * 1024) -> None:
        self.max_items = max_items
        self.max_item = max_item
        self._items: OrderedDict[str, MessageText] = OrderedDict()

    def get(self, blob_id: str) -> MessageText | None:
        text = self._items.get(blob_id)
        if text is not None:
            self._items.move_to_end(blob_id)
        return text

    def put(self, blob_id: str, text: MessageText) -> None:
        if len(text.raw) > self.max_item or (not text.has_raw and text.info.search_fields is None):
            return
        self._items[blob_id] = text
        self._items.move_to_end(blob_id)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)


_TEXTS = _TextCache()
