"""Typed IMAP command AST (RFC 9051, RFC 3501 and the extensions Mailwright speaks).

The connection core (``mailwright.proto.imap.connection``) turns bytes into these values; session logic
(``mailwright.imapd``) and the pure FETCH/SEARCH/SORT/THREAD functions consume them.  Every
node is a frozen, slotted dataclass so values compare with ``==`` in tests and can be shared
between sessions without copying.

Conventions used throughout:

* ``*`` in a sequence set is represented by ``None`` (see :class:`SeqRange`); it means "the
  largest number in use" and is resolved against the mailbox at evaluation time.
* Strings the client sent (mailbox names, header names, search strings) are ``str``; message
  literals (APPEND) are ``bytes``.
* Atom-like keywords (flag names, fetch attribute names, header field names) keep the case the
  client used except where the RFC says they are case-insensitive *and* we need to compare
  them: fetch attribute names and section texts are upper-cased, header field names in
  HEADER.FIELDS are kept as sent (the response must echo them; RFC 9051 7.5.2 shows them
  upper-cased by some servers but as sent by Dovecot).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

# ---------------------------------------------------------------------------------------------
# Sequence sets  (RFC 9051 9 "sequence-set", RFC 5182 "$")
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeqRange:
    """One element of a sequence set: ``n``, ``n:m`` or ranges with ``*`` (``None``).

    ``start`` and ``end`` are as written; ``2:1`` and ``1:2`` are the same range
    (RFC 9051 9: "the range ... includes all numbers between those two numbers, regardless of
    order").  A single number has ``start == end``.
    """

    start: int | None
    end: int | None

    def bounds(self, largest: int) -> tuple[int, int]:
        """Low and high bound with ``*`` replaced by *largest*."""
        a = largest if self.start is None else self.start
        b = largest if self.end is None else self.end
        return (a, b) if a <= b else (b, a)


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A sequence set (message sequence numbers or UIDs, depending on the command).

    ``saved`` is True for ``$`` (RFC 5182 search result variable); then ``ranges`` is empty and
    the session substitutes the saved result.
    """

    ranges: tuple[SeqRange, ...]
    saved: bool = False

    def contains(self, n: int, largest: int) -> bool:
        """Whether *n* is in the set when ``*`` stands for *largest*.

        RFC 9051 6.4.8: with UIDs, ``*`` is the largest UID in use, so ``N:*`` always includes
        the last message even when N is larger than it.
        """
        for r in self.ranges:
            lo, hi = r.bounds(largest)
            if lo <= n <= hi:
                return True
        return False

    def iter_numbers(self, largest: int) -> Iterator[int]:
        """Yield the numbers of the set within ``1..largest``, ascending and without repeats."""
        spans = sorted(r.bounds(largest) for r in self.ranges)
        last = 0
        for lo, hi in spans:
            lo = max(lo, last + 1, 1)
            hi = min(hi, largest)
            yield from range(lo, hi + 1)
            last = max(last, hi)

    def __str__(self) -> str:
        if self.saved:
            return "$"
        parts = []
        for r in self.ranges:
            a = "*" if r.start is None else str(r.start)
            if r.start == r.end:
                parts.append(a)
            else:
                parts.append(a + ":" + ("*" if r.end is None else str(r.end)))
        return ",".join(parts)


# ---------------------------------------------------------------------------------------------
# FETCH  (RFC 9051 6.4.5, RFC 3516 BINARY, RFC 7162 CONDSTORE/QRESYNC)
# ---------------------------------------------------------------------------------------------

#: Section text specifiers (RFC 9051 6.4.5 "section-msgtext" / "section-text").
SectionText = Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]


@dataclass(frozen=True, slots=True)
class Section:
    """A BODY[...] section: ``part`` numbers then an optional text specifier.

    ``BODY[]`` is ``Section()``; ``BODY[1.2.MIME]`` is ``Section((1, 2), "MIME")``;
    ``BODY[HEADER.FIELDS (From To)]`` is ``Section((), "HEADER.FIELDS", ("From", "To"))``.
    MIME is only valid with a part number (the parser enforces it).
    """

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        out = ".".join(str(p) for p in self.part)
        if self.text is not None:
            out = f"{out}.{self.text}" if out else self.text
            if self.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
                out += " (" + " ".join(self.fields) + ")"
        return out


@dataclass(frozen=True, slots=True)
class Partial:
    """``<offset.count>`` of BODY[]/BINARY[] (RFC 9051 6.4.5)."""

    offset: int
    count: int


#: Fetch attributes without arguments.  RFC822* are IMAP4rev1 (RFC 3501) forms.
SimpleFetchName = Literal[
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "UID",
    "MODSEQ",
    "PREVIEW",  # RFC 8970
    "EMAILID",  # RFC 8474 5.3
    "THREADID",  # RFC 8474 5.3
    "SAVEDATE",  # RFC 8514 4.1
]


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """A fetch attribute without arguments, e.g. ``FLAGS`` or ``BODYSTRUCTURE``.

    ``BODY`` here is the non-extensible body structure (``BODY`` without brackets).
    """

    name: SimpleFetchName


@dataclass(frozen=True, slots=True)
class FetchBody:
    """``BODY[section]<partial>`` or ``BODY.PEEK[...]``.

    Non-peek forms set \\Seen (RFC 9051 6.4.5) on read-write mailboxes; the session handles
    that, the renderer only reports the data.
    """

    section: Section
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True)
class FetchBinary:
    """``BINARY[part]<partial>`` or ``BINARY.PEEK[...]`` (RFC 3516, RFC 9051 6.4.5)."""

    part: tuple[int, ...]
    partial: Partial | None = None
    peek: bool = False


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    """``BINARY.SIZE[part]`` (RFC 3516)."""

    part: tuple[int, ...]


FetchItem = FetchAttr | FetchBody | FetchBinary | FetchBinarySize

#: Macros of RFC 9051 6.4.5, expanded by the parser into their items.
FETCH_MACROS: dict[str, tuple[FetchItem, ...]] = {
    "ALL": (
        FetchAttr("FLAGS"),
        FetchAttr("INTERNALDATE"),
        FetchAttr("RFC822.SIZE"),
        FetchAttr("ENVELOPE"),
    ),
    "FAST": (FetchAttr("FLAGS"), FetchAttr("INTERNALDATE"), FetchAttr("RFC822.SIZE")),
    "FULL": (
        FetchAttr("FLAGS"),
        FetchAttr("INTERNALDATE"),
        FetchAttr("RFC822.SIZE"),
        FetchAttr("ENVELOPE"),
        FetchAttr("BODY"),
    ),
}


# ---------------------------------------------------------------------------------------------
# SEARCH keys  (RFC 9051 6.4.4, RFC 3501 6.4.4, RFC 7162 MODSEQ, RFC 5032 WITHIN,
# RFC 5182 "$")
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchAll:
    """``ALL``: every message."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A flag test: ``SEEN`` is ``SearchFlag("\\\\Seen", True)``, ``UNSEEN`` the same with
    False; ``KEYWORD foo`` / ``UNKEYWORD foo`` carry the keyword as sent.

    ``\\Recent`` is matched only for IMAP4rev1 clients (RFC 9051 removed it; it never
    matches there).  ``NEW`` parses to ``AND(RECENT, UNSEEN)`` and ``OLD`` to ``NOT RECENT``.
    Flag comparison is case-insensitive (RFC 9051 2.3.2).
    """

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchSequence:
    """A bare sequence set as search key: message sequence numbers."""

    set: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchUid:
    """``UID <sequence-set>``."""

    set: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchDate:
    """Date comparison, disregarding time and timezone (RFC 9051 6.4.4).

    ``field`` is ``internal`` for BEFORE/ON/SINCE (the INTERNALDATE), ``sent`` for
    SENTBEFORE/SENTON/SENTSINCE (the Date: header) and ``saved`` for SAVEDBEFORE/SAVEDON/
    SAVEDSINCE (RFC 8514 4.2: the save date; a message without one never matches).
    """

    field: Literal["internal", "sent", "saved"]
    op: Literal["before", "on", "since"]
    date: date


@dataclass(frozen=True, slots=True)
class SearchWithin:
    """``OLDER n`` / ``YOUNGER n`` (RFC 5032): INTERNALDATE against now, in seconds."""

    op: Literal["older", "younger"]
    seconds: int


@dataclass(frozen=True, slots=True)
class SearchSize:
    """``LARGER n`` / ``SMALLER n``: RFC822.SIZE strictly greater / less than ``n``."""

    op: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """Substring search in a header field.

    ``FROM x``, ``TO x``, ``CC x``, ``BCC x`` and ``SUBJECT x`` parse to this with the field
    name ``From``/``To``/``Cc``/``Bcc``/``Subject``; ``HEADER name x`` keeps the name as sent.
    An empty ``value`` matches every message that has the field (RFC 9051 6.4.4).
    Matching is case-insensitive substring on the decoded (RFC 2047) field value.
    """

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """``BODY x`` (``where="body"``: body only) or ``TEXT x`` (``where="text"``: header and
    body), case-insensitive substring on the decoded text."""

    where: Literal["body", "text"]
    value: str


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """``MODSEQ [entry-name entry-type] n`` (RFC 7162 3.1.5): mod-sequence >= ``modseq``.

    Mailwright keeps one modseq per message, so ``entry`` (e.g. ``/flags/\\draft``) and
    ``entry_type`` (``priv``/``shared``/``all``) are recorded but do not narrow the match.
    """

    modseq: int
    entry: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchSaved:
    """``$`` as a search key (RFC 5182): the messages of the saved search result."""


@dataclass(frozen=True, slots=True)
class SearchObjectId:
    """``EMAILID id`` / ``THREADID id`` (RFC 8474 6): the messages with that object id."""

    kind: Literal["EMAILID", "THREADID"]
    objectid: str


@dataclass(frozen=True, slots=True)
class SearchSaveDateSupported:
    """``SAVEDATESUPPORTED`` (RFC 8514 4.2): every message when the mailbox keeps save dates."""


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """All of ``keys`` (a parenthesised list, or the implicit AND of a key sequence)."""

    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class SearchOr:
    """``OR a b``."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchNot:
    """``NOT a``."""

    key: SearchKey


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchSequence
    | SearchUid
    | SearchDate
    | SearchWithin
    | SearchSize
    | SearchHeader
    | SearchText
    | SearchModSeq
    | SearchSaved
    | SearchObjectId
    | SearchSaveDateSupported
    | SearchAnd
    | SearchOr
    | SearchNot
)

#: ESEARCH return options (RFC 4731, RFC 9051 6.4.4, RFC 5182 SAVE).
SearchReturnOption = Literal[
    "MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL",
    "CONTEXT", "UPDATE",  # RFC 5267 4.1
]


@dataclass(frozen=True, slots=True)
class PartialRange:
    """``PARTIAL first:last`` (RFC 9394 3): 1-based positions in the result, counted from the
    end when negative (``-1:-100`` is the last hundred).  ``first`` and ``last`` have the same
    sign and ``abs(first) <= abs(last)`` (the parser orders them)."""

    first: int
    last: int

    def pick(self, items: list[int]) -> list[int]:
        """The part of *items* (in result order) that the range names."""
        n = len(items)
        if self.first > 0:
            return items[self.first - 1 : self.last]
        lo = max(n + self.last, 0)
        hi = n + self.first + 1
        return items[lo:hi] if hi > 0 else []

    def __str__(self) -> str:
        return f"{self.first}:{self.last}"


# ---------------------------------------------------------------------------------------------
# SORT and THREAD  (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO)
# ---------------------------------------------------------------------------------------------

SortKey = Literal[
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"
]


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """One sort key, optionally ``REVERSE``."""

    key: SortKey
    reverse: bool = False


ThreadAlgorithm = Literal["ORDEREDSUBJECT", "REFERENCES"]


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    tag: str


@dataclass(frozen=True, slots=True)
class Noop:
    tag: str


@dataclass(frozen=True, slots=True)
class Logout:
    tag: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    tag: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """``AUTHENTICATE mech [initial-response]``.

    ``initial`` is the decoded SASL-IR (RFC 4959): ``None`` if absent, ``b""`` for ``=``.
    """

    tag: str
    mechanism: str
    initial: bytes | None = None


@dataclass(frozen=True, slots=True)
class Login:
    tag: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Enable:
    tag: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QResyncParams:
    """``QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]])`` (RFC 7162 3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT (``readonly=False``) or EXAMINE (``readonly=True``)."""

    tag: str
    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QResyncParams | None = None


@dataclass(frozen=True, slots=True)
class Create:
    tag: str
    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    tag: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class ListCmd:
    """LIST (RFC 9051 6.3.9 with RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS) or LSUB.

    ``selection``: upper-cased selection options (SUBSCRIBED, REMOTE, RECURSIVEMATCH,
    SPECIAL-USE). ``returns``: upper-cased return options (SUBSCRIBED, CHILDREN,
    SPECIAL-USE, STATUS); ``status_items`` holds the STATUS return items.
    ``extended`` is True when the client used any LIST-EXTENDED syntax (then responses may
    carry extended data, RFC 5258 3).
    """

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status_items: tuple[StatusItem, ...] = ()
    lsub: bool = False
    extended: bool = False
    #: RFC 9590 LIST-METADATA: ``RETURN (METADATA (entries))``, lower-cased
    metadata: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Namespace:
    tag: str


#: STATUS items (RFC 9051 6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE); RECENT is rev1.
StatusItem = Literal[
    "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "HIGHESTMODSEQ",
    "MAILBOXID",  # RFC 8474 4.3
]


@dataclass(frozen=True, slots=True)
class Status:
    tag: str
    mailbox: str
    items: tuple[StatusItem, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of APPEND (several with MULTIAPPEND, RFC 3502)."""

    flags: tuple[str, ...]
    internaldate: datetime | None
    data: bytes
    binary: bool = False  # literal8 (RFC 3516 4.4)


@dataclass(frozen=True, slots=True)
class Append:
    tag: str
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Idle:
    tag: str


@dataclass(frozen=True, slots=True)
class Check:
    tag: str


@dataclass(frozen=True, slots=True)
class Close:
    tag: str


@dataclass(frozen=True, slots=True)
class Unselect:
    tag: str


@dataclass(frozen=True, slots=True)
class Expunge:
    """EXPUNGE, or UID EXPUNGE (RFC 4315/9051) when ``uids`` is given."""

    tag: str
    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """SEARCH / UID SEARCH.

    ``returns`` is ``None`` for a plain (IMAP4rev1-style ``* SEARCH``) search, and a tuple for
    ESEARCH syntax ``RETURN (...)``; an empty tuple means ``RETURN ()`` = ``ALL``
    (RFC 4731 3.1).  IMAP4rev2 sessions always answer with ESEARCH; the session decides.
    """

    tag: str
    key: SearchKey
    charset: str | None = None
    uid: bool = False
    returns: tuple[SearchReturnOption, ...] | None = None
    #: RFC 9394 PARTIAL return option (``"PARTIAL" in returns``)
    partial: PartialRange | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    """FETCH / UID FETCH.

    ``items`` keeps the client's order with macros expanded.  For UID FETCH the session adds
    ``UID`` to the response (RFC 9051 6.4.9); it is not inserted here.
    ``changedsince``/``vanished`` are the RFC 7162 modifiers.
    """

    tag: str
    set: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changedsince: int | None = None
    vanished: bool = False
    #: RFC 9394 4: the PARTIAL fetch modifier (UID FETCH only)
    partial: PartialRange | None = None


StoreMode = Literal["replace", "add", "remove"]


@dataclass(frozen=True, slots=True)
class Store:
    """STORE / UID STORE: ``FLAGS``, ``+FLAGS``, ``-FLAGS`` with optional ``.SILENT`` and
    ``UNCHANGEDSINCE`` (RFC 7162 3.1.3)."""

    tag: str
    set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    tag: str
    set: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Move:
    tag: str
    set: SequenceSet
    mailbox: str
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Id:
    """``ID NIL`` or ``ID (k v ...)`` (RFC 2971); values may be ``None`` (NIL)."""

    tag: str
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class GetQuota:
    tag: str
    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT / UID SORT (RFC 5256), with ESORT ``returns`` (RFC 5267) or ``None``."""

    tag: str
    criteria: tuple[SortCriterion, ...]
    charset: str
    key: SearchKey
    uid: bool = False
    returns: tuple[SearchReturnOption, ...] | None = None
    partial: PartialRange | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    """THREAD / UID THREAD (RFC 5256)."""

    tag: str
    algorithm: ThreadAlgorithm
    charset: str
    key: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Compress:
    """``COMPRESS DEFLATE`` (RFC 4978)."""

    tag: str
    mechanism: str


#: MULTISEARCH source kinds (RFC 7377 2): the filter names of RFC 5465 6 used by ESEARCH IN.
SourceKind = Literal[
    "SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE",
    "SUBTREE-ONE", "MAILBOXES",
]


@dataclass(frozen=True, slots=True)
class MultiSearch:
    """``ESEARCH [IN (sources)] [RETURN (...)] [CHARSET x] keys`` (RFC 7377 2).

    ``sources`` pairs each filter with its mailbox names (empty for the ones without any);
    an empty ``sources`` means the selected mailbox.  Results are always UIDs.
    """

    tag: str
    sources: tuple[tuple[SourceKind, tuple[str, ...]], ...]
    key: SearchKey
    charset: str | None = None
    returns: tuple[SearchReturnOption, ...] | None = None
    partial: PartialRange | None = None


@dataclass(frozen=True, slots=True)
class Replace:
    """``[UID] REPLACE set mailbox [flags] [date] literal`` (RFC 8508 3): append the message
    to ``mailbox`` and expunge the one named by ``set``, as one operation.  The message data
    is streamed like APPEND's; ``message.data`` is empty once the session has it staged."""

    tag: str
    set: SequenceSet
    mailbox: str
    message: AppendMessage
    uid: bool = False


@dataclass(frozen=True, slots=True)
class CancelUpdate:
    """``CANCELUPDATE "tag" ...`` (RFC 5267 4.2): stop the updates of those searches."""

    tag: str
    tags: tuple[str, ...]


MetadataDepth = Literal["0", "1", "infinity"]


@dataclass(frozen=True, slots=True)
class GetMetadata:
    """``GETMETADATA [(MAXSIZE n / DEPTH d)] mailbox entries`` (RFC 5464 4.2); ``mailbox``
    "" is the server.  Entry names are lower-cased (they are case-insensitive, 3.2)."""

    tag: str
    mailbox: str
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: MetadataDepth = "0"


@dataclass(frozen=True, slots=True)
class SetMetadata:
    """``SETMETADATA mailbox (entry value ...)`` (RFC 5464 4.3); a ``None`` value (NIL)
    removes the entry."""

    tag: str
    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]

# -- ACL (RFC 4314 3) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetAcl:
    """``SETACL mailbox identifier rights`` (3.1); ``rights`` may start with + or -."""

    tag: str
    mailbox: str
    identifier: str
    rights: str


@dataclass(frozen=True, slots=True)
class DeleteAcl:
    """``DELETEACL mailbox identifier`` (3.2)."""

    tag: str
    mailbox: str
    identifier: str


@dataclass(frozen=True, slots=True)
class GetAcl:
    """``GETACL mailbox`` (3.3)."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class ListRights:
    """``LISTRIGHTS mailbox identifier`` (3.4)."""

    tag: str
    mailbox: str
    identifier: str


@dataclass(frozen=True, slots=True)
class MyRights:
    """``MYRIGHTS mailbox`` (3.5)."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class GenUrlAuth:
    """``GENURLAUTH 1*(url-rump mechanism)`` (RFC 4467 6.2)."""

    tag: str
    urls: tuple[tuple[str, str], ...]  # (rump, mechanism upper-cased)


@dataclass(frozen=True, slots=True)
class ResetKey:
    """``RESETKEY [mailbox *mechanism]`` (RFC 4467 6.1): no mailbox resets every key."""

    tag: str
    mailbox: str | None = None
    mechanisms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UrlFetch:
    """``URLFETCH 1*url`` (RFC 4467 6.3)."""

    tag: str
    urls: tuple[str, ...]


#: RFC 5465 6: the mailbox filters of an event group, upper-cased.
NOTIFY_FILTERS = frozenset({
    "SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES",
})
#: RFC 5465 5: the events the server implements, in their canonical spelling (the answer of
#: BADEVENT lists them); AnnotationChange needs ANNOTATE (RFC 5257), which we do not have.
NOTIFY_EVENTS = (
    "MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange",
    "MailboxMetadataChange", "ServerMetadataChange",
)


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event group of NOTIFY SET (RFC 5465 3): a mailbox filter and its events.

    ``events`` is empty for ``NONE``; ``fetch`` holds MessageNew's fetch attributes (only
    for SELECTED and SELECTED-DELAYED, RFC 5465 5.2)."""

    filter: str
    mailboxes: tuple[str, ...] = ()
    events: frozenset[str] = frozenset()
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify:
    """``NOTIFY SET [STATUS] groups`` or ``NOTIFY NONE`` (``groups`` is None), RFC 5465 3."""

    tag: str
    groups: tuple[NotifyGroup, ...] | None
    status: bool = False


Command = (
    Capability
    | Noop
    | Logout
    | StartTLS
    | Authenticate
    | Login
    | Enable
    | Select
    | Create
    | Delete
    | Rename
    | Subscribe
    | Unsubscribe
    | ListCmd
    | Namespace
    | Status
    | Append
    | Idle
    | Check
    | Close
    | Unselect
    | Expunge
    | Search
    | Fetch
    | Store
    | Copy
    | Move
    | Id
    | GetQuota
    | GetQuotaRoot
    | Sort
    | Thread
    | Compress
    | MultiSearch
    | Replace
    | GetMetadata
    | SetMetadata
    | CancelUpdate
    | GenUrlAuth
    | ResetKey
    | UrlFetch
    | SetAcl
    | DeleteAcl
    | GetAcl
    | ListRights
    | MyRights
    | Notify
)

