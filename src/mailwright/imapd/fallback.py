"""Bridge to the MIME engineer's FETCH/SEARCH/SORT/THREAD functions, with simple stand-ins.

``imapd/fetch.py``, ``imapd/search.py`` and ``imapd/sortthread.py`` are owned by the MIME
engineer.  Until they exist (or when they do not export what the session calls) the stand-ins
here answer from ``mailwright.mime.imapfmt`` and the stored metadata: every FETCH item, and
search keys evaluated without RFC 2047 decoding.  The adapters keep the session's interface
fixed: ``renderer(store, seq, record, items, utf8=...) -> bytes`` (one whole untagged FETCH
line) and ``evaluate(store, key, msgs, ...) -> list[(seq, record)]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

from mailwright.proto.imap import ast
from mailwright.store.api import MessageRecord, Store

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class FetchFailed(Exception):
    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.code = code


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"mailwright.imapd.{name}")
    except ImportError:
        return None


Renderer = Callable[..., Awaitable[bytes]]
Evaluator = Callable[..., Awaitable[list[tuple[int, MessageRecord]]]]


def fetch_renderer() -> Renderer:
    mod = _module("fetch")
    fn = getattr(mod, "render_fetch_line", None) if mod is not None else None
    return fn if fn is not None else render_fetch  # type: ignore[no-any-return]


def search_evaluator() -> Evaluator:
    mod = _module("search")
    fn = getattr(mod, "search_messages", None) if mod is not None else None
    return fn if fn is not None else search_messages  # type: ignore[no-any-return]


def fetch_needs(items: Sequence[ast.FetchItem]) -> tuple[bool, bool]:
    """(meta, raw) the FETCH items need, as the renderer will load them."""
    mod = _module("fetch")
    if mod is not None and hasattr(mod, "needs_info") and hasattr(mod, "needs_raw"):
        return bool(mod.needs_info(items)), bool(mod.needs_raw(items))
    simple = all(
        isinstance(i, ast.FetchAttr)
        and i.name in ("UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ")
        for i in items
    )
    return (not simple, not simple)


def search_needs_content(key: ast.SearchKey) -> bool:
    mod = _module("search")
    if mod is not None and hasattr(mod, "needs_content"):
        return bool(mod.needs_content(key))
    return True


def sortthread_available() -> bool:
    mod = _module("sortthread")
    return mod is not None and hasattr(mod, "sort_messages") and hasattr(mod, "thread_messages")


async def sort_messages(
    store: Store, criteria: Sequence[ast.SortCriterion], msgs: list[tuple[int, MessageRecord]]
) -> list[tuple[int, MessageRecord]]:
    mod = _module("sortthread")
    assert mod is not None
    return await mod.sort_messages(store, criteria, msgs)  # type: ignore[no-any-return]


async def thread_messages(
    store: Store, algorithm: str, msgs: list[tuple[int, MessageRecord]], *, uid: bool
) -> bytes:
    mod = _module("sortthread")
    assert mod is not None
    return await mod.thread_messages(store, algorithm, msgs, uid=uid)  # type: ignore[no-any-return]


# -- FETCH stand-in ---------------------------------------------------------------------------


def internaldate(dt: datetime) -> bytes:
    """RFC 9051 9 date-time: ``"dd-Mon-yyyy hh:mm:ss +zzzz"``."""
    off = dt.utcoffset() or timedelta(0)
    mins = int(off.total_seconds()) // 60
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    return (
        f'"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year:04d} '
        f'{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {sign}{mins // 60:02d}{mins % 60:02d}"'
    ).encode()


def _section_label(sec: ast.Section) -> bytes:
    out = ".".join(str(p) for p in sec.part)
    if sec.text is not None:
        out = f"{out}.{sec.text}" if out else sec.text
        if sec.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            out += " (" + " ".join(f.upper() for f in sec.fields) + ")"
    return out.encode()


async def render_fetch(
    store: Store, seq: int, rec: MessageRecord, items: Sequence[ast.FetchItem], *, utf8: bool
) -> bytes:
    from mailwright.mime import imapfmt
    from mailwright.mime.model import MessageInfo
    from mailwright.proto.imap import response as R

    info: MessageInfo | None = None
    raw: bytes | None = None

    async def get_info() -> MessageInfo:
        nonlocal info
        if info is None:
            meta = await store.get_meta(rec.blob_id)
            if not meta:
                from mailwright.mime import parse_message

                info = parse_message(await get_raw())
            else:
                info = MessageInfo.from_json(meta)
        return info

    async def get_raw() -> bytes:
        nonlocal raw
        if raw is None:
            raw = await store.read_blob(rec.blob_id)
        return raw

    out: list[bytes] = []
    for item in items:
        if isinstance(item, ast.FetchAttr):
            n = item.name
            if n == "UID":
                out.append(b"UID %d" % rec.uid)
            elif n == "FLAGS":
                out.append(b"FLAGS " + R.flag_list(sorted(rec.flags)))
            elif n == "INTERNALDATE":
                out.append(b"INTERNALDATE " + internaldate(rec.internaldate))
            elif n == "RFC822.SIZE":
                out.append(b"RFC822.SIZE %d" % rec.size)
            elif n == "MODSEQ":
                out.append(b"MODSEQ (%d)" % rec.modseq)
            elif n == "ENVELOPE":
                out.append(b"ENVELOPE " + imapfmt.envelope((await get_info()).envelope))
            elif n == "BODYSTRUCTURE":
                out.append(b"BODYSTRUCTURE " + imapfmt.bodystructure(await get_info(), True))
            elif n == "BODY":
                out.append(b"BODY " + imapfmt.bodystructure(await get_info(), False))
            else:
                text = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[n]
                data = imapfmt.section_bytes(await get_info(), await get_raw(), (), text)
                out.append(n.encode() + b" " + R.literal(data))
        elif isinstance(item, ast.FetchBody):
            sec = item.section
            try:
                data = imapfmt.section_bytes(
                    await get_info(), await get_raw(), sec.part, sec.text or "",
                    [f.encode("utf-8") for f in sec.fields],
                )
            except imapfmt.SectionError:
                data = b""
            label = b"BODY[" + _section_label(sec) + b"]"
            if item.partial is not None:
                data = data[item.partial.offset : item.partial.offset + item.partial.count]
                label += b"<%d>" % item.partial.offset
            out.append(label + b" " + R.literal(data))
        elif isinstance(item, ast.FetchBinary | ast.FetchBinarySize):
            try:
                decoded = imapfmt.binary_section(await get_info(), await get_raw(), item.part)
            except imapfmt.UnknownCTE:
                raise FetchFailed("Unknown transfer encoding", "UNKNOWN-CTE") from None
            except (imapfmt.SectionError, imapfmt.BrokenEncoding):
                decoded = b""
            part = ".".join(str(p) for p in item.part).encode()
            if isinstance(item, ast.FetchBinarySize):
                out.append(b"BINARY.SIZE[" + part + b"] %d" % len(decoded))
                continue
            label = b"BINARY[" + part + b"]"
            if item.partial is not None:
                decoded = decoded[item.partial.offset : item.partial.offset + item.partial.count]
                label += b"<%d>" % item.partial.offset
            out.append(label + b" " + R.literal(decoded, binary=b"\x00" in decoded))
    return b"* %d FETCH (" % seq + b" ".join(out) + b")\r\n"


# -- SEARCH stand-in --------------------------------------------------------------------------


class _Ctx:
    def __init__(self, store: Store, rec: MessageRecord) -> None:
        self.store = store
        self.rec = rec
        self.raw: bytes | None = None

    async def get_raw(self) -> bytes:
        if self.raw is None:
            self.raw = await self.store.read_blob(self.rec.blob_id)
        return self.raw


def _header_values(raw: bytes, name: str) -> list[bytes]:
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[: end + 2]
    out: list[bytes] = []
    cur: bytearray | None = None
    want = name.lower().encode()
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if cur is not None:
                cur += line
            continue
        if cur is not None:
            out.append(bytes(cur))
            cur = None
        k, sep, v = line.partition(b":")
        if sep and k.strip().lower() == want:
            cur = bytearray(v.strip())
    if cur is not None:
        out.append(bytes(cur))
    return out


def _sent_date(raw: bytes) -> date | None:
    from email.utils import parsedate_to_datetime

    vals = _header_values(raw, "Date")
    if not vals:
        return None
    try:
        return parsedate_to_datetime(vals[0].decode("latin-1")).date()
    except (TypeError, ValueError, IndexError):
        return None


async def _eval(
    key: ast.SearchKey, seq: int, c: _Ctx, env: dict[str, Any]
) -> bool:
    rec = c.rec
    if isinstance(key, ast.SearchAll):
        return True
    if isinstance(key, ast.SearchFlag):
        if key.flag == "\\Recent":
            has = False
        else:
            has = key.flag.lower() in {f.lower() for f in rec.flags}
        return has == key.present
    if isinstance(key, ast.SearchSequence):
        return key.set.contains(seq, env["largest_seq"])
    if isinstance(key, ast.SearchUid):
        if key.set.saved:
            return rec.uid in env["saved"]
        return key.set.contains(rec.uid, env["largest_uid"])
    if isinstance(key, ast.SearchSaved):
        return rec.uid in env["saved"]
    if isinstance(key, ast.SearchSize):
        return rec.size > key.size if key.op == "larger" else rec.size < key.size
    if isinstance(key, ast.SearchModSeq):
        return rec.modseq >= key.modseq
    if isinstance(key, ast.SearchWithin):
        age = (datetime.now(UTC) - rec.internaldate).total_seconds()
        return age >= key.seconds if key.op == "older" else age <= key.seconds
    if isinstance(key, ast.SearchDate):
        if key.field == "internal":
            d: date | None = rec.internaldate.date()
        else:
            d = _sent_date(await c.get_raw())
        if d is None:
            return False
        if key.op == "before":
            return d < key.date
        if key.op == "on":
            return d == key.date
        return d >= key.date
    if isinstance(key, ast.SearchHeader):
        values = _header_values(await c.get_raw(), key.name)
        needle = key.value.encode("utf-8").lower()
        return any(needle in v.lower() for v in values)
    if isinstance(key, ast.SearchText):
        raw = await c.get_raw()
        needle = key.value.encode("utf-8").lower()
        if key.where == "body":
            end = raw.find(b"\r\n\r\n")
            raw = raw[end + 4 :] if end >= 0 else b""
        return needle in raw.lower()
    if isinstance(key, ast.SearchAnd):
        for k in key.keys:
            if not await _eval(k, seq, c, env):
                return False
        return True
    if isinstance(key, ast.SearchOr):
        return await _eval(key.left, seq, c, env) or await _eval(key.right, seq, c, env)
    if isinstance(key, ast.SearchNot):
        return not await _eval(key.key, seq, c, env)
    return False  # pragma: no cover


async def search_messages(
    store: Store,
    key: ast.SearchKey,
    msgs: list[tuple[int, MessageRecord]],
    *,
    saved: set[int],
    largest_seq: int,
    largest_uid: int,
    rev2: bool,
) -> list[tuple[int, MessageRecord]]:
    env: dict[str, Any] = {"saved": saved, "largest_seq": largest_seq, "largest_uid": largest_uid}
    out = []
    for seq, rec in msgs:
        if await _eval(key, seq, _Ctx(store, rec), env):
            out.append((seq, rec))
    return out
