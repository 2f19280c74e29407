"""SORT (RFC 5256 3, RFC 5957 DISPLAYFROM/DISPLAYTO) and THREAD (RFC 5256 REFERENCES and
ORDEREDSUBJECT), from MessageRecord + the parse-once MessageInfo (never the raw message).

Strings compare after RFC 2047 decoding in upper case (i;ascii-casemap, RFC 5256 3), with
non-ASCII text decomposed first (so "É" sorts with "E", as Dovecot's casemap does); FROM/TO/CC
use the first address's mailbox, DISPLAYFROM/DISPLAYTO its display name or else the address
(RFC 5957 2). The sent date is the first Date: header in UTC, or the internal date when it is
missing or unreadable (RFC 5256 2.2); SUBJECT uses the first Subject: header. Ties are broken
by sequence number (RFC 5256 3). THREAD follows RFC 5256 4 with Dovecot's readings where the
RFC is loose (msg-ids need "@"; a message whose last reference is itself or below it gets no
parent; subjects group case-insensitively). SORT and THREAD agree with Dovecot 2.3.19 on the
corpus and on synthetic reference webs (tests/imapd/test_sortthread_dovecot.py).

API
---
Pure:

``base_subject(subject: bytes | None) -> tuple[str, bool]``
    RFC 5256 2.1 base subject and whether the subject was a reply/forward (it had a leader
    or [fwd: ...] wrapper).
``sort_records(criteria, msgs, infos) -> list[(seq, rec)]``
    ``msgs``: [(seq, MessageRecord)]; ``infos``: {uid: MessageInfo} (may be empty when the
    criteria are only ARRIVAL/SIZE, see ``needs_info``).
``thread(algorithm, msgs, infos, *, uid) -> bytes``
    The THREAD response data without the leading ``THREAD`` (e.g. ``b"(1 2)(3)"``); numbers
    are UIDs when ``uid`` else sequence numbers.
``needs_info(criteria) -> bool``

Async adapters (signatures the session calls via ``imapd/content.py``):

``await sort_messages(store, criteria, msgs) -> list[(seq, rec)]``
``await thread_messages(store, algorithm, msgs, *, uid) -> bytes``
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailwright.imapd.search import sent_timestamp
from mailwright.mime.decode import decode_header
from mailwright.mime.model import Address, Envelope, MessageInfo
from mailwright.proto.imap import ast
from mailwright.store.api import BlobStore, MessageRecord

Msg = tuple[int, MessageRecord]

def sort_casemap(s: str) -> str:
    """The comparison form of a sort key: decomposed and upper-cased. For ASCII this is
    i;ascii-casemap (RFC 4790 9.2, what RFC 5256 names); beyond ASCII it follows Dovecot's
    decomposed titlecase, so that "É" sorts with "E" as clients see from Dovecot."""
    if s.isascii():
        return s.upper()
    return unicodedata.normalize("NFKD", s).upper()


# --- RFC 5256 2.1 base subject ---------------------------------------------------------------

_WSP = " \t"
_BLOB = re.compile(r"\[[^\[\]]*\][ \t]*")
_REFWD = re.compile(r"(?:re|fwd?)[ \t]*(?:\[[^\[\]]*\][ \t]*)?:", re.IGNORECASE)


def _strip_leader(s: str) -> tuple[str, bool]:
    """Step 3: remove a subj-leader's *subj-blob subj-refwd, once."""
    pos = 0
    while True:
        m = _BLOB.match(s, pos)
        if m is None:
            break
        pos = m.end()
    m = _REFWD.match(s, pos)
    if m is not None:
        return s[m.end() :], True
    return s, False


def base_subject(subject: bytes | None, strict: bool = False) -> tuple[str, bool]:
    """The base subject of RFC 5256 2.1, and whether the subject is a reply or forward."""
    if subject is None:
        return "", False
    # (1) decode, tabs and continuations to space, runs of spaces to one
    s = decode_header(subject, strict=strict)
    s = re.sub(r"[ \t\r\n]+", " ", s)
    is_reply = False
    while True:
        # (2) trailing subj-trailer: "(fwd)" or white space
        while True:
            t = s.rstrip(_WSP)
            if t.lower().endswith("(fwd)"):
                t = t[:-5]
                is_reply = True
            if t == s:
                break
            s = t
        # (3)-(5) leaders and blobs
        while True:
            changed = False
            if s[:1] not in (" ", "\t"):
                s2, did = _strip_leader(s)
                if did:
                    is_reply = True
            else:
                s2, did = s[1:], True
            if did:
                s = s2
                changed = True
            m = _BLOB.match(s)
            if m is not None and s[m.end() :].strip(_WSP):
                s = s[m.end() :]
                changed = True
            if not changed:
                break
        # (6) [fwd: ... ]
        if s.lower().startswith("[fwd:") and s.endswith("]"):
            s = s[5:-1]
            is_reply = True
            continue
        break
    return s, is_reply


# --- SORT ------------------------------------------------------------------------------------


def _first_address(addrs: tuple[Address, ...] | None) -> Address | None:
    # RFC 5256 3: the first address, whatever it is (a group's start carries its name in
    # mailbox, as Dovecot sorts it)
    return addrs[0] if addrs else None


def _addr_mailbox(addrs: tuple[Address, ...] | None) -> str:
    a = _first_address(addrs)
    if a is None or a.mailbox is None:
        return ""
    return sort_casemap(decode_header(a.mailbox, strict=True))


def _display(addrs: tuple[Address, ...] | None) -> str:
    # RFC 5957 2: the decoded display name if any, else the addr-spec (with Dovecot's
    # MISSING_* placeholders where the address lacks a part, so both servers agree)
    a = _first_address(addrs)
    if a is None:
        return ""
    if a.name:
        name = decode_header(a.name, strict=True).strip()
        if name:
            return sort_casemap(name)
    spec = (a.mailbox or b"") + (b"@" + a.host if a.host else b"")
    return sort_casemap(decode_header(spec, strict=True))


def sent_date(rec: MessageRecord, env: Envelope | None) -> float:
    ts = sent_timestamp(env.date_first or env.date) if env is not None else None
    return rec.timestamp if ts is None else ts


def needs_info(criteria: Sequence[ast.SortCriterion]) -> bool:
    return any(c.key not in ("ARRIVAL", "SIZE") for c in criteria)


def _key(name: str, rec: MessageRecord, env: Envelope | None) -> Any:
    if name == "ARRIVAL":
        return rec.timestamp
    if name == "SIZE":
        return rec.size
    if name == "DATE":
        return sent_date(rec, env)
    if env is None:
        return ""
    if name == "SUBJECT":
        return sort_casemap(base_subject(env.subject_first or env.subject, strict=True)[0])
    if name == "FROM":
        return _addr_mailbox(env.from_)
    if name == "TO":
        return _addr_mailbox(env.to)
    if name == "CC":
        return _addr_mailbox(env.cc)
    if name == "DISPLAYFROM":
        return _display(env.from_)
    if name == "DISPLAYTO":
        return _display(env.to)
    raise ValueError(f"unknown sort key {name}")


def sort_records(
    criteria: Sequence[ast.SortCriterion],
    msgs: Sequence[Msg],
    infos: Mapping[int, MessageInfo],
) -> list[Msg]:
    """SORT (RFC 5256 3): msgs ordered by the criteria, ties by sequence number."""
    rows = []
    for seq, rec in msgs:
        info = infos.get(rec.uid)
        env = info.envelope if info is not None else None
        rows.append(([_key(c.key, rec, env) for c in criteria], seq, rec))

    def cmp(a: tuple[list[Any], int, MessageRecord], b: tuple[list[Any], int, MessageRecord]
            ) -> int:
        for i, c in enumerate(criteria):
            x, y = a[0][i], b[0][i]
            if x != y:
                r = -1 if x < y else 1
                return -r if c.reverse else r
        return a[1] - b[1]

    rows.sort(key=functools.cmp_to_key(cmp))
    return [(seq, rec) for _, seq, rec in rows]


# --- THREAD ----------------------------------------------------------------------------------

_MSGID = re.compile(rb"<([^<>]*)>")


def _msgids(value: bytes | None) -> list[bytes]:
    """The msg-ids of a Message-ID/References/In-Reply-To value (RFC 5322 3.6.4): only
    ``<left@right>`` forms count, white space inside removed."""
    if not value:
        return []
    out = []
    for m in _MSGID.finditer(value):
        v = re.sub(rb"[ \t\r\n]", b"", m.group(1))
        left, at, right = v.partition(b"@")
        if left and at and right:
            out.append(v)
    return out


@dataclass(eq=False)
class _Node:
    msg: Msg | None = None
    date: float = 0.0
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)
    subject: str = ""
    reply: bool = False

    @property
    def seq(self) -> int:
        return self.msg[0] if self.msg is not None else 0

    def is_ancestor_of(self, other: _Node) -> bool:
        p: _Node | None = other
        while p is not None:
            if p is self:
                return True
            p = p.parent
        return False

    def add_child(self, child: _Node) -> None:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def sort_key(self) -> tuple[float, int]:
        if self.msg is not None:
            return (self.date, self.seq)
        first = self.children[0] if self.children else None
        return first.sort_key() if first is not None else (0.0, 0)


def _format(node: _Node, uid: bool) -> bytes:
    parts: list[bytes] = []
    if node.msg is not None:
        parts.append(b"%d" % (node.msg[1].uid if uid else node.msg[0]))
    kids = node.children
    if len(kids) == 1 and node.msg is not None:
        parts.append(_format(kids[0], uid))
    elif kids:
        parts.append(b"".join(b"(" + _format(k, uid) + b")" for k in kids))
    return b" ".join(parts)


def _sort_siblings(nodes: list[_Node]) -> None:
    for n in nodes:
        _sort_siblings(n.children)
    nodes.sort(key=lambda n: n.sort_key())


def _thread_references(msgs: Sequence[Msg], infos: Mapping[int, MessageInfo]) -> list[_Node]:
    table: dict[bytes, _Node] = {}
    unique = 0
    for seq, rec in msgs:
        info = infos.get(rec.uid)
        env = info.envelope if info is not None else Envelope()
        ids = _msgids(env.message_id)
        mid = ids[0] if ids else None
        node = table.get(mid) if mid is not None else None
        if node is None or node.msg is not None:
            if node is not None or mid is None:
                # RFC 5256 4 (1)(A): missing or duplicate Message-ID gets a unique one
                unique += 1
                mid = b"\x00unique-%d" % unique
            node = table.setdefault(mid, _Node())
        node.msg = (seq, rec)
        node.date = sent_date(rec, env)
        subject, node.reply = base_subject(env.subject_first or env.subject, strict=True)
        node.subject = sort_casemap(subject)  # RFC 5256 4 (5)(B): compared case-insensitively
        refs = _msgids(env.references)
        if not refs:
            irt = _msgids(env.in_reply_to)
            refs = irt[:1]
        # (B) link the References chain, keeping existing links, never making loops
        prev: _Node | None = None
        for ref in refs:
            cur = table.setdefault(ref, _Node())
            if (prev is not None and cur.parent is None and cur is not prev
                    and not cur.is_ancestor_of(prev)):
                prev.add_child(cur)
            prev = cur
        # (C) the message's parent is the last reference; when that is the message itself or
        # would make a loop, it gets no parent at all (as Dovecot does)
        if prev is not None and prev is not node and not node.is_ancestor_of(prev):
            prev.add_child(node)
        elif node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None
    roots = [n for n in table.values() if n.parent is None]

    # (4) prune dummies
    def prune(nodes: list[_Node], at_root: bool) -> list[_Node]:
        out: list[_Node] = []
        for n in nodes:
            n.children = prune(n.children, False)
            for c in n.children:
                c.parent = n
            if n.msg is None:
                if not n.children:
                    continue
                if at_root and len(n.children) > 1:
                    out.append(n)
                    continue
                for c in n.children:
                    c.parent = None if at_root else n.parent
                out.extend(n.children)
                continue
            out.append(n)
        return out

    roots = prune(roots, True)
    for r in roots:
        r.parent = None
    # (5) sort the root set (dummies by their first child)
    _sort_siblings(roots)

    # (6) group by base subject
    def subj_of(n: _Node) -> tuple[str, bool]:
        if n.msg is not None:
            return n.subject, n.reply
        first = n.children[0]
        return first.subject, first.reply

    by_subject: dict[str, _Node] = {}
    for r in roots:
        s, reply = subj_of(r)
        if not s:
            continue
        old = by_subject.get(s)
        # a dummy wins over a message; a non-reply over a reply (a dummy is never replaced)
        if old is None or (r.msg is None and old.msg is not None) or (
            old.msg is not None and subj_of(old)[1] and not reply
        ):
            by_subject[s] = r
    result = list(roots)
    for r in roots:
        if r not in result:
            continue
        s, reply = subj_of(r)
        target = by_subject.get(s) if s else None
        if target is None or target is r:
            continue
        t_reply = subj_of(target)[1]
        if target.msg is None and r.msg is None:
            for c in list(r.children):
                target.add_child(c)
            result.remove(r)
        elif target.msg is None:
            target.add_child(r)
            result.remove(r)
        elif r.msg is None:
            r.add_child(target)
            result.remove(target)
            by_subject[s] = r
        elif reply and not t_reply:
            target.add_child(r)
            result.remove(r)
        elif t_reply and not reply:
            r.add_child(target)
            result.remove(target)
            by_subject[s] = r
        else:
            # both or neither replies: siblings under a new dummy, where the first one was
            dummy = _Node()
            result[result.index(target)] = dummy
            dummy.add_child(target)
            dummy.add_child(r)
            result.remove(r)
            by_subject[s] = dummy
    # (7) sort siblings everywhere by date
    _sort_siblings(result)
    return result


def _thread_orderedsubject(msgs: Sequence[Msg], infos: Mapping[int, MessageInfo]) -> list[_Node]:
    nodes = []
    for seq, rec in msgs:
        info = infos.get(rec.uid)
        env = info.envelope if info is not None else None
        n = _Node(msg=(seq, rec), date=sent_date(rec, env))
        subject = (env.subject_first or env.subject) if env else None
        n.subject = sort_casemap(base_subject(subject, strict=True)[0])
        nodes.append(n)
    nodes.sort(key=lambda n: (n.subject, n.date, n.seq))
    threads: list[_Node] = []
    last: _Node | None = None
    for n in nodes:
        if last is not None and last.subject == n.subject:
            last.children.append(n)
            n.parent = last
        else:
            threads.append(n)
            last = n
    threads.sort(key=lambda n: (n.date, n.seq))
    return threads


def thread(
    algorithm: str,
    msgs: Sequence[Msg],
    infos: Mapping[int, MessageInfo],
    *,
    uid: bool,
) -> bytes:
    """THREAD response data (RFC 5256 4): ``(1 2 (3)(4))(5)``..."""
    if algorithm.upper() == "ORDEREDSUBJECT":
        roots = _thread_orderedsubject(msgs, infos)
    elif algorithm.upper() == "REFERENCES":
        roots = _thread_references(msgs, infos)
    else:
        raise ValueError(f"unknown THREAD algorithm {algorithm}")
    return b"".join(b"(" + _format(r, uid) + b")" for r in roots)


# --- session adapters ------------------------------------------------------------------------


async def _infos(store: BlobStore, msgs: Sequence[Msg]) -> dict[int, MessageInfo]:
    from mailwright.imapd.fetch import load_message

    out: dict[int, MessageInfo] = {}
    for _, rec in msgs:
        info, _raw = await load_message(store, rec, True, False)
        if info is not None:
            out[rec.uid] = info
    return out


async def sort_messages(
    store: BlobStore, criteria: Sequence[ast.SortCriterion], msgs: list[Msg]
) -> list[Msg]:
    infos = await _infos(store, msgs) if needs_info(criteria) else {}
    return sort_records(criteria, msgs, infos)


async def thread_messages(
    store: BlobStore, algorithm: str, msgs: list[Msg], *, uid: bool
) -> bytes:
    return thread(algorithm, msgs, await _infos(store, msgs), uid=uid)
