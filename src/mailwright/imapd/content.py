"""The session's doors to the message-content commands: FETCH, SEARCH, SORT and THREAD.

The work is done by pure functions over records, parse-once metadata and raw bytes in
``imapd/fetch.py``, ``imapd/search.py`` and ``imapd/sortthread.py``; the dispatcher calls them
through the names here, so that the session's interface stays one small surface:
``render(store, seq, record, items, utf8=...) -> bytes`` (one whole untagged FETCH line) and
``evaluate(store, key, msgs, ...) -> list[(seq, record)]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from mailwright.imapd import fetch, search, sortthread
from mailwright.mime.searchfields import CACHED_FIELDS
from mailwright.proto.imap import ast
from mailwright.store.api import BlobStore, MessageRecord

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class FetchFailed(Exception):
    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.code = code


Renderer = Callable[..., Awaitable[bytes]]
Evaluator = Callable[..., Awaitable[list[tuple[int, MessageRecord]]]]


def fetch_renderer() -> Renderer:
    return fetch.render_fetch_line


def ghost_line(seq: int, rec: MessageRecord, items: Sequence[ast.FetchItem], *,
               utf8: bool) -> bytes:
    """The FETCH line of a message whose content another session's EXPUNGE removed."""
    return fetch.ghost_line(seq, rec, items, utf8=utf8)


def search_evaluator() -> Evaluator:
    return search.search_messages


def fetch_needs(items: Sequence[ast.FetchItem]) -> tuple[bool, bool]:
    """(meta, raw) the FETCH items need, as the renderer will load them."""
    return bool(fetch.needs_info(items)), bool(fetch.needs_raw(items))


def search_needs_content(key: ast.SearchKey) -> bool:
    return bool(search.needs_content(key))


def search_needs_raw(key: ast.SearchKey) -> bool:
    """Whether the messages' bytes are needed, not only their meta with its field cache."""
    return bool(search.needs_raw(key, CACHED_FIELDS))


def search_candidates(
    key: ast.SearchKey, msgs: list[tuple[int, MessageRecord]], *, saved: set[int],
    largest_seq: int, largest_uid: int, rev2: bool,
) -> list[tuple[int, MessageRecord]]:
    """*msgs* less those that the content-free keys of an AND rule out (no content read)."""
    ctx = search.SearchContext(largest_seq, largest_uid, frozenset(saved), None, rev2)
    return list(search.candidates(key, msgs, ctx))


def sortthread_available() -> bool:
    return True


async def sort_messages(
    store: BlobStore, criteria: Sequence[ast.SortCriterion], msgs: list[tuple[int, MessageRecord]]
) -> list[tuple[int, MessageRecord]]:
    return await sortthread.sort_messages(store, criteria, msgs)


async def thread_messages(
    store: BlobStore, algorithm: str, msgs: list[tuple[int, MessageRecord]], *, uid: bool
) -> bytes:
    return await sortthread.thread_messages(store, algorithm, msgs, uid=uid)


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
