"""The listing: folders with unread counts, pages of messages, threads, search, bulk actions.

Search and threads are IMAP's own: a query typed in the search box becomes an IMAP SEARCH key
(`proto.imap.ast`) evaluated by `imapd.search.search_messages`, and threads are RFC 5256
THREAD=REFERENCES from `imapd.sortthread`, so the webmail finds and groups exactly what an
IMAP client would.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from mailwright.imapd.search import search_messages
from mailwright.imapd.sortthread import thread_messages
from mailwright.mime.decode import decode_header
from mailwright.mime.model import KIND_MULTIPART, MessageInfo, Part
from mailwright.proto.imap import ast
from mailwright.store.api import (
    ALL_RIGHTS,
    OTHER_USERS_PREFIX,
    BlobStore,
    FlagOp,
    Mailbox,
    MessageRecord,
)
from mailwright.web.roles import MessagePages, WebmailStore

from .message import Person, people

PAGE_SIZE = 50
# Threading reads every message's metadata: above this many messages a folder is listed flat
# (about 0.5 s for 2,000 messages, docs/web.md), and the reading view shows no conversation.
MAX_THREADED = 5000
MAX_THREADED_READING = 1000
_ORDER = {"\\Drafts": 1, "\\Sent": 2, "\\Archive": 3, "\\Junk": 4, "\\Trash": 5}


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    name: str
    special_use: str | None
    messages: int
    unseen: int
    #: the user's rights (RFC 4314): all on their own folders; another account's folder is
    #: named "Other Users/<owner>/<name>", as IMAP shows it
    rights: str = ALL_RIGHTS

    @property
    def label(self) -> str:
        return "Inbox" if self.name == "INBOX" else self.name


async def folders(store: WebmailStore, account_id: int) -> list[Folder]:
    """Every mailbox with its counts: INBOX, the special-use ones, then the rest by name;
    other accounts' mailboxes shared with the user for reading (RFC 4314 r) among the rest."""
    out: list[Folder] = []
    for box in await store.list_mailboxes(account_id):
        status = await store.mailbox_status(box.id)
        out.append(Folder(box.id, box.name, box.special_use, status.messages, status.unseen))
    for shared in await store.shared_mailboxes(account_id):
        if "r" not in shared.rights:
            continue
        status = await store.mailbox_status_as(account_id, shared.mailbox.id)
        name = OTHER_USERS_PREFIX + shared.owner + "/" + shared.mailbox.name
        out.append(Folder(shared.mailbox.id, name, None, status.messages, status.unseen,
                          shared.rights))
    out.sort(key=lambda f: (f.name != "INBOX", _ORDER.get(f.special_use or "", 9),
                            f.name.casefold()))
    return out


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the message list (a thread's newest message when threaded)."""

    uid: int
    flags: frozenset[str]
    received: datetime
    size: int
    from_: tuple[Person, ...]
    to: tuple[Person, ...]
    subject: str
    attachment: bool
    thread_size: int = 1
    thread_unseen: int = 0

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags

    @property
    def flagged(self) -> bool:
        return "\\Flagged" in self.flags


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    number: int  # 1-based
    pages: int
    total: int  # messages (or threads) in the whole list


def _has_attachment(part: Part) -> bool:
    if (part.disposition or b"").lower() == b"attachment":
        return True
    return part.kind == KIND_MULTIPART and any(_has_attachment(c) for c in part.children)


async def _info(store: BlobStore, rec: MessageRecord) -> MessageInfo | None:
    meta = await store.get_meta(rec.blob_id)
    if not meta:
        return None
    try:
        return MessageInfo.from_meta(meta)
    except (ValueError, KeyError, TypeError):
        return None


async def _row(store: BlobStore, rec: MessageRecord, group: Sequence[MessageRecord] = ()) -> Row:
    info = await _info(store, rec)
    env = info.envelope if info is not None else None
    return Row(
        uid=rec.uid, flags=rec.flags, received=rec.internaldate, size=rec.size,
        from_=people(env.from_ if env else None), to=people(env.to if env else None),
        subject=decode_header(env.subject) if env and env.subject else "",
        attachment=info is not None and _has_attachment(info.root),
        thread_size=max(1, len(group)),
        thread_unseen=sum(1 for r in group if "\\Seen" not in r.flags),
    )


def _parse_threads(data: bytes) -> list[list[int]]:
    """RFC 5256 THREAD response data, `(1 2 (3)(4))(5)`, as the UIDs of each top thread."""
    out: list[list[int]] = []
    depth = 0
    for token in re.findall(rb"\(|\)|\d+", data):
        if token == b"(":
            if depth == 0:
                out.append([])
            depth += 1
        elif token == b")":
            depth -= 1
        elif out:
            out[-1].append(int(token))
    return out


async def list_page(
    store: MessagePages,
    mailbox: Mailbox,
    *,
    page: int = 1,
    query: str = "",
    threaded: bool = False,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of the mailbox, newest first; filtered by `query` (see `parse_query`)."""
    records = await store.list_messages(mailbox.id)
    if query.strip():
        key = parse_query(query)
        msgs = list(enumerate(records, 1))
        hits = await search_messages(
            store, key, msgs, saved=set(), largest_seq=len(records),
            largest_uid=records[-1].uid if records else 0, rev2=True,
        )
        records = [rec for _, rec in hits]
    by_uid = {r.uid: r for r in records}
    groups: list[list[MessageRecord]]
    if threaded and 1 < len(records) <= MAX_THREADED:
        data = await thread_messages(store, "REFERENCES", list(enumerate(records, 1)), uid=True)
        groups = [[by_uid[u] for u in uids if u in by_uid] for uids in _parse_threads(data)]
        groups = [g for g in groups if g]
        groups.sort(key=lambda g: max(r.uid for r in g), reverse=True)
    else:
        groups = [[r] for r in reversed(records)]
    total = len(groups)
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    chosen = groups[(page - 1) * size : page * size]
    rows = [await _row(store, max(g, key=lambda r: r.uid), g if threaded else ()) for g in chosen]
    return Page(rows, page, pages, total)


async def thread_of(store: MessagePages, mailbox: Mailbox, uid: int) -> list[int]:
    """The UIDs of the thread `uid` belongs to in its mailbox, oldest first."""
    records = await store.list_messages(mailbox.id)
    if len(records) > MAX_THREADED_READING:
        return [uid]
    data = await thread_messages(store, "REFERENCES", list(enumerate(records, 1)), uid=True)
    for uids in _parse_threads(data):
        if uid in uids:
            return sorted(uids)
    return [uid]


# --- search queries --------------------------------------------------------------------------


class QueryError(ValueError):
    pass


_HEADER_KEYS = {"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "subject": "Subject"}
_FLAG_WORDS = {
    "unread": ("\\Seen", False), "read": ("\\Seen", True), "seen": ("\\Seen", True),
    "unseen": ("\\Seen", False), "flagged": ("\\Flagged", True), "starred": ("\\Flagged", True),
    "unflagged": ("\\Flagged", False), "answered": ("\\Answered", True),
    "replied": ("\\Answered", True), "draft": ("\\Draft", True),
}
MAX_QUERY_TERMS = 16


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{value!r}: dates are written YYYY-MM-DD") from None


def parse_query(text: str) -> ast.SearchKey:
    """A search box's text as an IMAP SEARCH key (RFC 9051 6.4.4).

    Words (or "quoted phrases") must all appear in the header or body (TEXT); `from:`, `to:`,
    `cc:`, `bcc:`, `subject:` look in that field, `body:` in the body only; `is:unread`,
    `is:flagged`, `is:answered`... test flags; `before:`/`since:` take YYYY-MM-DD dates; a
    leading `-` negates a term; `OR` between two terms matches either.
    """
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.replace('"', " ").split()
    if len(words) > MAX_QUERY_TERMS:
        raise QueryError(f"at most {MAX_QUERY_TERMS} search terms")
    keys: list[ast.SearchKey] = []
    pending_or = False
    for word in words:
        if word == "OR" and keys:
            pending_or = True
            continue
        negate = word.startswith("-") and len(word) > 1
        if negate:
            word = word[1:]
        key = _term(word)
        if negate:
            key = ast.SearchNot(key)
        if pending_or:
            key = ast.SearchOr(keys.pop(), key)
            pending_or = False
        keys.append(key)
    if not keys:
        return ast.SearchAll()
    return keys[0] if len(keys) == 1 else ast.SearchAnd(tuple(keys))


def _term(word: str) -> ast.SearchKey:
    name, colon, value = word.partition(":")
    name = name.lower()
    if colon and value:
        if name in _HEADER_KEYS:
            return ast.SearchHeader(_HEADER_KEYS[name], value)
        if name == "body":
            return ast.SearchText("body", value)
        if name == "is":
            flag = _FLAG_WORDS.get(value.lower())
            if flag is None:
                raise QueryError(f"is:{value}: one of {', '.join(sorted(_FLAG_WORDS))}")
            return ast.SearchFlag(*flag)
        if name in ("before", "since", "after", "on"):
            op = {"after": "since"}.get(name, name)
            return ast.SearchDate("internal", op, _date(value))  # type: ignore[arg-type]
    return ast.SearchText("text", word)


# --- bulk actions ----------------------------------------------------------------------------


ACTIONS = ("read", "unread", "flag", "unflag", "move", "delete", "junk", "archive")


async def apply_action(
    store: WebmailStore,
    account_id: int,
    mailbox: Mailbox,
    uids: Sequence[int],
    action: str,
    target: str | None = None,
) -> int:
    """Do `action` to the messages `uids` of `mailbox`; how many it touched.

    `delete` moves to Trash, and expunges when the messages are already there (as most
    clients do); `junk` and `archive` move to those special-use mailboxes; `move` to `target`
    (a folder of the user's or one shared with them). The store checks the user's rights
    (`AccessDenied`) as it does for IMAP.
    """
    uids = sorted(set(uids))
    if not uids:
        return 0
    flag_ops = {"read": (FlagOp.ADD, "\\Seen"), "unread": (FlagOp.REMOVE, "\\Seen"),
                "flag": (FlagOp.ADD, "\\Flagged"), "unflag": (FlagOp.REMOVE, "\\Flagged")}
    if action in flag_ops:
        op, flag = flag_ops[action]
        result = await store.store_flags_as(account_id, mailbox.id, uids, op, (flag,))
        return len(result.updated) + len(result.unchanged)
    boxes = await store.list_mailboxes(account_id)
    special = {b.special_use: b for b in boxes if b.special_use}
    if action == "delete":
        trash = special.get("\\Trash")
        if trash is None or trash.id == mailbox.id:
            return len(await store.expunge_as(account_id, mailbox.id, uids))
        dest = trash
    elif action in ("junk", "archive"):
        found = special.get("\\" + action.title())
        if found is None:
            raise LookupError(f"no {action} mailbox")
        dest = found
    elif action == "move":
        found = next((b for b in boxes if b.name == target), None)
        if found is None and target and target.startswith(OTHER_USERS_PREFIX):
            found = next((s.mailbox for s in await store.shared_mailboxes(account_id)
                          if OTHER_USERS_PREFIX + s.owner + "/" + s.mailbox.name == target), None)
        if found is None:
            raise LookupError(f"no mailbox {target!r}")
        dest = found
    else:
        raise ValueError(f"unknown action {action!r}")
    if dest.id == mailbox.id:
        return 0
    return len(await store.move_as(account_id, mailbox.id, uids, dest.id))
