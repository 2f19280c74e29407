"""One session's view of its selected mailbox: sequence numbers, known flags, sync state.

Sequence numbers are session state (RFC 9051 2.3.1.2): they change only when this session tells
its client, at the moments the RFC allows.  The store's ``changes_since`` gives what happened
after the view's ``modseq``; :meth:`SelectedView.apply` turns it into the untagged responses to
send, holding back expunges when the command in progress forbids them (RFC 9051 7.5.1: no
EXPUNGE during FETCH, STORE or SEARCH).  Held-back expunged messages stay in the view as ghosts
until the next point where expunges may be sent.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mailwright.proto.imap import ast
from mailwright.store.api import ChangeSet, Mailbox, MessageListing, MessageRecord

_RECENT = frozenset({"\\Recent"})
#: flag set -> the same with \Recent (flag sets are few and shared between records)
_WITH_RECENT: dict[frozenset[str], frozenset[str]] = {}
# Flags no message can have: a record woken from hibernation whose flags the client may not
# know yet carries these, so the next change set always reports its real flags.
_UNKNOWN = frozenset({"\\ unknown"})


@dataclass(slots=True)
class Updates:
    """What a sync found: to be rendered by the session in this order."""

    expunged: list[tuple[int, int]] = field(default_factory=list)  # (seq at send time, uid)
    exists: int | None = None
    flags: list[tuple[int, MessageRecord]] = field(default_factory=list)  # (seq, record)
    new_keywords: bool = False
    #: UIDs that joined the view (for \Recent, RFC 3501 2.3.2)
    new_uids: list[int] = field(default_factory=list)


class SelectedView:
    """Sequence-number view of one mailbox for one session."""

    __slots__ = (
        "_hibernated",
        "_index",
        "_shared",
        "display",
        "keywords",
        "mailbox",
        "modseq",
        "pending_expunge",
        "readonly",
        "recent",
        "records",
        "rights",
        "uidnext",
        "uids",
    )

    def __init__(
        self,
        mailbox: Mailbox,
        records: list[MessageRecord],
        readonly: bool,
        *,
        rights: str = "lrswipkxtea",
        display: str | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.readonly = readonly
        #: the user's rights on the mailbox (RFC 4314), and its name as the client knows it
        #: ("Other Users/..." for another account's mailbox)
        self.rights = rights
        self.display = mailbox.name if display is None else display
        self.uids: list[int] = [r.uid for r in records]
        self.records: dict[int, MessageRecord] = {r.uid: r for r in records}
        # The mailbox row is read before the message list, so replaying changes after its
        # HIGHESTMODSEQ is idempotent: nothing is missed if a change lands in between.
        self.modseq = mailbox.highestmodseq
        self.uidnext = mailbox.uidnext
        #: UIDs expunged in the store but not yet announced (ghosts in ``uids``).
        self.pending_expunge: set[int] = set()
        self.keywords: set[str] = set()
        # flag sets are few and shared between records: look at each distinct one once
        for flags in {r.flags for r in records}:
            self.keywords.update(f for f in flags if not f.startswith("\\"))
        self._index: dict[int, int] | None = None
        #: UID ranges that are \Recent to this session (RFC 3501 2.3.2; IMAP4rev1 sessions
        #: only): one range per claim, merged when adjacent, so memory does not grow with the
        #: mailbox (a first SELECT of a million new messages is one range)
        self.recent: list[tuple[int, int]] = []
        #: while hibernated: the UIDs as (first, last) runs, with ``uids`` and ``records`` empty
        self._hibernated: list[tuple[int, int]] | None = None
        #: the store listing whose ``records`` dict this view shares with other sessions, until
        #: the first change copies it (copy on write); None once the view has its own
        self._shared: MessageListing | None = None

    @classmethod
    def from_listing(
        cls, mailbox: Mailbox, listing: MessageListing, readonly: bool, *,
        rights: str = "lrswipkxtea", display: str | None = None,
    ) -> SelectedView:
        """A view over a shared listing without a step per message: the UID list is copied
        (one memory copy) and the records are shared until this session changes one, so
        SELECT of a large mailbox costs what Dovecot's index read does, not a Python object
        per message."""
        view = cls(mailbox, [], readonly, rights=rights, display=display)
        view.uids = list(listing.uids)
        view.records = listing.records
        view._shared = listing
        view.keywords = set(listing.keywords)
        return view

    def _own(self) -> dict[int, MessageRecord]:
        """``records``, copied first if it is still the shared listing's."""
        if self._shared is not None:
            self.records = dict(self.records)
            self._shared = None
        return self.records

    def same_as_listing(self) -> MessageListing | None:
        """The listing this view was made from, while the view is still exactly it (same
        messages, same numbers, same flags, nothing held back): what is rendered for every
        message of the listing can then be sent to this session as it is."""
        shared = self._shared
        if shared is None or self.pending_expunge or self.recent or len(self.uids) != len(shared):
            return None
        return shared

    # -- lookups -----------------------------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def resolve(
        self, seqset: ast.SequenceSet, *, uid: bool, saved: list[int] | None = None
    ) -> list[tuple[int, int]]:
        """(seq, uid) pairs named by *seqset*, ascending, only messages in the view.

        RFC 9051 6.4.8: in UID commands a UID range with ``*`` means the largest UID in use;
        non-existent UIDs are ignored.  ``$`` (RFC 5182) uses *saved* (UIDs).
        """
        if seqset.saved:
            wanted = set(saved or ())
            return [(i + 1, u) for i, u in enumerate(self.uids) if u in wanted]
        if not self.uids:
            return []
        if len(seqset.ranges) == 1 and seqset.ranges[0].end is None and seqset.ranges[0].start == 1:
            return list(zip(range(1, len(self.uids) + 1), self.uids, strict=True))  # 1:*
        if uid:
            largest = self.uids[-1]
            out: list[tuple[int, int]] = []
            spans = sorted(r.bounds(largest) for r in seqset.ranges)
            seen_upto = 0
            for lo, hi in spans:
                lo = max(lo, seen_upto + 1)
                if lo > hi:
                    continue
                i = bisect.bisect_left(self.uids, lo)
                j = bisect.bisect_right(self.uids, hi)
                out.extend((k + 1, self.uids[k]) for k in range(i, j))
                seen_upto = max(seen_upto, hi)
            return out
        return [(n, self.uids[n - 1]) for n in seqset.iter_numbers(len(self.uids))]

    def seq_out_of_range(self, seqset: ast.SequenceSet) -> bool:
        """RFC 9051 6.4.5: a sequence number beyond EXISTS is an error (BAD)."""
        if seqset.saved:
            return False
        n = len(self.uids)
        for r in seqset.ranges:
            if n == 0 and (r.start is None or r.end is None):
                # "1:*" or "*" on an empty mailbox names nothing; clients do it. Dovecot says
                # BAD; we answer with nothing (more forgiving, still unambiguous).
                continue
            for v in (r.start, r.end):
                if v is not None and v > n:
                    return True
        return False

    def shown(self, rec: MessageRecord) -> MessageRecord:
        """*rec* with ``\\Recent`` among its flags when it is recent to this session."""
        if self.recent and self.is_recent(rec.uid):
            # a FETCH 1:* of 100,000 recent messages: one flag set per distinct set, and the
            # record built directly (NamedTuple._replace is several times slower)
            flags = _WITH_RECENT.get(rec.flags)
            if flags is None:
                if len(_WITH_RECENT) > 4096:
                    _WITH_RECENT.clear()
                flags = _WITH_RECENT[rec.flags] = rec.flags | _RECENT
            return MessageRecord(rec[0], rec[1], rec[2], flags, rec[4], rec[5], rec[6])
        return rec

    def add_recent(self, first: int, last: int) -> None:
        if first > last:
            return
        if self.recent and first <= self.recent[-1][1] + 1:
            lo, hi = self.recent[-1]
            self.recent[-1] = (min(lo, first), max(hi, last))
        else:
            self.recent.append((first, last))

    def is_recent(self, uid: int) -> bool:
        i = bisect.bisect_right(self.recent, (uid, 1 << 62)) - 1
        return i >= 0 and self.recent[i][0] <= uid <= self.recent[i][1]

    def recent_count(self) -> int:
        """Messages in the view that are recent (expunged ones drop out by themselves)."""
        return sum(
            bisect.bisect_right(self.uids, hi) - bisect.bisect_left(self.uids, lo)
            for lo, hi in self.recent
        )

    def iter_records(self) -> Iterator[tuple[int, MessageRecord]]:
        for i, u in enumerate(self.uids):
            rec = self.records.get(u)
            if rec is not None:
                yield i + 1, rec

    # -- changes -----------------------------------------------------------------------------

    def update_records(self, records: Iterable[MessageRecord]) -> None:
        """Our own STORE results: flags we have already told the client about."""
        for r in records:
            if r.uid in self.records:
                self._own()[r.uid] = r
                self.keywords.update(f for f in r.flags if not f.startswith("\\"))

    def apply(self, cs: ChangeSet, *, allow_expunge: bool) -> Updates:
        """Merge a change set; return what to announce."""
        up = Updates()
        known = self._own() if cs.updated else self.records
        last_uid = self.uids[-1] if self.uids else 0
        for uid in cs.expunged:
            if uid in known and uid not in self.pending_expunge:
                self.pending_expunge.add(uid)
        new: list[MessageRecord] = []
        for r in cs.updated:
            if r.uid in self.pending_expunge:
                continue
            old = known.get(r.uid)
            if old is None:
                if r.uid > last_uid:
                    new.append(r)
                continue
            if old.flags != r.flags or old.modseq != r.modseq:
                flags_changed = old.flags != r.flags
                known[r.uid] = r
                before = len(self.keywords)
                self.keywords.update(f for f in r.flags if not f.startswith("\\"))
                if len(self.keywords) != before:
                    up.new_keywords = True
                if flags_changed:
                    up.flags.append((0, r))
        if allow_expunge and self.pending_expunge:
            up.expunged = self._remove_pending()
        for r in new:
            self.uids.append(r.uid)
            known[r.uid] = r
            before = len(self.keywords)
            self.keywords.update(f for f in r.flags if not f.startswith("\\"))
            if len(self.keywords) != before:
                up.new_keywords = True
        if new:
            up.exists = len(self.uids)
            up.new_uids = [r.uid for r in new]
        # sequence numbers for flag updates are computed after removals/additions
        up.flags = [(s, r) for _, r in up.flags if (s := self.seq_of(r.uid) or 0)]
        self.modseq = max(self.modseq, cs.highestmodseq)
        self.uidnext = max(self.uidnext, cs.uidnext)
        return up

    def _remove_pending(self) -> list[tuple[int, int]]:
        """Remove announced-to-be expunged UIDs; (seq, uid) in send order (RFC 9051 7.5.1:
        each EXPUNGE renumbers the following messages, so ascending order with the number
        as it is at that moment)."""
        out: list[tuple[int, int]] = []
        removed = 0
        keep: list[int] = []
        records = self._own()
        for i, u in enumerate(self.uids):
            if u in self.pending_expunge:
                out.append((i + 1 - removed, u))
                removed += 1
                records.pop(u, None)
            else:
                keep.append(u)
        self.uids = keep
        self.pending_expunge.clear()
        return out

    def remove_expunged(self, uids: Iterable[int]) -> list[tuple[int, int]]:
        """Our own EXPUNGE/MOVE: remove now, (seq, uid) in send order."""
        self.pending_expunge.update(u for u in uids if u in self.records)
        return self._remove_pending()

    def flush_pending(self) -> list[tuple[int, int]]:
        return self._remove_pending() if self.pending_expunge else []

    # -- hibernation -------------------------------------------------------------------------
    # An IDLE session may wait for hours; thousands of them on one big mailbox would each hold
    # a UID list and a record per message (about 65 KiB per session for 1,000 messages).
    # Like Dovecot's imap-hibernate, a waiting view keeps only what cannot be read again: the
    # UIDs its client knows, as runs (sequence numbers are this session's alone), and its
    # MODSEQ. Flags are not kept: every message changed after ``modseq`` is reported again.

    @property
    def hibernated(self) -> bool:
        return self._hibernated is not None

    def hibernate(self) -> bool:
        """Drop per-message state; False when the view holds news not yet sent (then it
        must stay whole)."""
        if self._hibernated is not None:
            return True
        if self.pending_expunge:
            return False
        runs: list[tuple[int, int]] = []
        for u in self.uids:
            if runs and runs[-1][1] + 1 == u:
                runs[-1] = (runs[-1][0], u)
            else:
                runs.append((u, u))
        self._hibernated = runs
        self.uids = []
        self.records = {}
        self._shared = None
        self._index = None
        return True

    def wake(self, current: Iterable[MessageRecord]) -> None:
        """Rebuild from the mailbox's listing now (`current`, read after the view's ``modseq``).

        The view applied every change up to ``modseq`` before it slept, so a UID it knew that is
        gone now was expunged after ``modseq`` and the next change set removes it; a message
        changed after ``modseq`` gets flags no message has, so that change set reports it."""
        runs = self._hibernated
        if runs is None:
            return
        self._hibernated = None
        uids = [u for lo, hi in runs for u in range(lo, hi + 1)]
        known = set(uids)
        records: dict[int, MessageRecord] = {}
        for rec in current:
            if rec.uid in known:
                if rec.modseq > self.modseq:
                    rec = rec._replace(flags=_UNKNOWN, modseq=0)
                records[rec.uid] = rec
        for u in uids:
            if u not in records:  # expunged while asleep: a ghost until the change set
                records[u] = MessageRecord(self.mailbox.id, u, 0, _UNKNOWN, 0.0, 0, "")
        self.uids = uids
        self.records = records
        self._shared = None

    def freeze(self) -> FrozenView:
        """The hibernated view as a few immutable fields (imapd/hibernate.py), so that the
        session object and every container of the view can go while its client waits."""
        runs = self._hibernated
        assert runs is not None and not self.pending_expunge, "freeze a hibernated view only"
        return FrozenView(
            self.mailbox, self.modseq, self.uidnext, _pack(runs),
            _pack(self.recent) if self.recent else None,
            tuple(sorted(self.keywords)) if self.keywords else None,
            self.readonly, self.rights,
            None if self.display == self.mailbox.name else self.display,
        )


class FrozenView:
    """A hibernated `SelectedView`: UID runs and \\Recent ranges packed as 32-bit pairs
    (RFC 9051 2.3.1.1: UIDs are 32-bit), no list, set or dict."""

    __slots__ = (
        "display", "keywords", "mailbox", "modseq", "readonly", "recent", "rights", "runs",
        "uidnext",
    )

    def __init__(
        self, mailbox: Mailbox, modseq: int, uidnext: int, runs: bytes, recent: bytes | None,
        keywords: tuple[str, ...] | None, readonly: bool, rights: str, display: str | None,
    ) -> None:
        self.mailbox = mailbox
        self.modseq = modseq
        self.uidnext = uidnext
        self.runs = runs
        self.recent = recent
        self.keywords = keywords
        self.readonly = readonly
        self.rights = rights
        self.display = display

    def thaw(self) -> SelectedView:
        """A hibernated view again (`wake` rebuilds its per-message state from a listing)."""
        view = SelectedView(self.mailbox, [], self.readonly, rights=self.rights,
                            display=self.display)
        view.modseq = self.modseq
        view.uidnext = self.uidnext
        view.keywords = set(self.keywords or ())
        view.recent = _unpack(self.recent) if self.recent is not None else []
        view._hibernated = _unpack(self.runs)
        return view


def _pack(pairs: list[tuple[int, int]]) -> bytes:
    return array("I", [v for pair in pairs for v in pair]).tobytes()


def _unpack(data: bytes) -> list[tuple[int, int]]:
    a = array("I")
    a.frombytes(data)
    return list(zip(a[::2], a[1::2], strict=True))
