"""A hibernated view (an IDLE session that only waits) tells its client exactly what a view that
kept everything would: the same EXPUNGE numbers, the same EXISTS, every flag change.

The mailbox is modelled as the store keeps it (UIDs, MODSEQs, expunge records), changes are
random, and the two views are compared after the same change set."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.imapd.view import SelectedView
from mailwright.store.api import ChangeSet, Mailbox, MessageListing, MessageRecord

FLAGS = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Flagged", "$Todo"}),
         frozenset({"\\Deleted"})]


class Box:
    """The store's side: current messages and expunge records, with MODSEQ."""

    def __init__(self, n: int) -> None:
        self.modseq = 1
        self.uidnext = 1
        self.messages: dict[int, MessageRecord] = {}
        self.expunged: dict[int, int] = {}  # uid -> modseq of the expunge
        for _ in range(n):
            self.append(0)

    def append(self, flags: int) -> None:
        self.modseq += 1
        uid = self.uidnext
        self.uidnext += 1
        self.messages[uid] = MessageRecord(1, uid, self.modseq, FLAGS[flags], 0.0, 10, f"b{uid}")

    def store(self, pick: int, flags: int) -> None:
        if self.messages:
            uid = sorted(self.messages)[pick % len(self.messages)]
            self.modseq += 1
            self.messages[uid] = self.messages[uid]._replace(flags=FLAGS[flags],
                                                             modseq=self.modseq)

    def expunge(self, pick: int) -> None:
        if self.messages:
            uid = sorted(self.messages)[pick % len(self.messages)]
            self.modseq += 1
            del self.messages[uid]
            self.expunged[uid] = self.modseq

    def mailbox(self) -> Mailbox:
        return Mailbox(1, 1, "INBOX", 7, self.uidnext, self.modseq, None, True, 0)

    def listing(self) -> list[MessageRecord]:
        return [self.messages[u] for u in sorted(self.messages)]

    def changes_since(self, modseq: int) -> ChangeSet:
        return ChangeSet(
            self.modseq, self.uidnext,
            tuple(r for r in self.listing() if r.modseq > modseq),
            tuple(sorted(u for u, m in self.expunged.items() if m > modseq)),
        )

    def change(self, ops: list[tuple[str, int, int]]) -> None:
        for op, a, b in ops:
            if op == "append":
                self.append(b)
            elif op == "store":
                self.store(a, b)
            else:
                self.expunge(a)


OPS = st.lists(st.tuples(st.sampled_from(["append", "store", "expunge"]),
                         st.integers(0, 50), st.integers(0, len(FLAGS) - 1)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 30), OPS, OPS, OPS, st.booleans())
def test_hibernated_view_announces_what_a_whole_view_does(
    n: int, before: list[tuple[str, int, int]], asleep: list[tuple[str, int, int]],
    later: list[tuple[str, int, int]], frozen: bool,
) -> None:
    """*frozen*: the view also went through `freeze` and `thaw`, as a session hibernated
    without its coroutines (imapd/hibernate.py) keeps it."""
    box = Box(n)
    whole = SelectedView(box.mailbox(), box.listing(), False)
    sleeper = SelectedView(box.mailbox(), box.listing(), False)
    # changes both views have seen and sent before the sleeper goes to sleep
    box.change(before)
    cs = box.changes_since(whole.modseq)
    for v in (whole, sleeper):
        v.apply(cs, allow_expunge=True)
    assert sleeper.hibernate()
    assert sleeper.uids == [] and sleeper.records == {}
    if frozen:
        for v in (whole, sleeper):
            v.add_recent(2, 4)
        thawed = sleeper.freeze().thaw()
        assert (thawed.modseq, thawed.uidnext, thawed.keywords, thawed.recent) == (
            sleeper.modseq, sleeper.uidnext, sleeper.keywords, sleeper.recent)
        sleeper = thawed
    box.change(asleep)
    sleeper.wake(box.listing())
    cs = box.changes_since(whole.modseq)
    got_whole = whole.apply(cs, allow_expunge=True)
    got_sleeper = sleeper.apply(cs, allow_expunge=True)
    assert got_sleeper.expunged == got_whole.expunged
    assert got_sleeper.exists == got_whole.exists
    assert got_sleeper.new_uids == got_whole.new_uids
    # every flag change the whole view reports, the sleeper reports too, with the same number
    # (it may also report a message whose MODSEQ changed without its flags: harmless)
    assert set(got_whole.flags) <= set(got_sleeper.flags)
    assert sleeper.uids == whole.uids
    assert {u: r.flags for u, r in sleeper.records.items()} == \
        {u: r.flags for u, r in whole.records.items()}
    assert sleeper.recent_count() == whole.recent_count()
    # and the woken view goes on like the other
    box.change(later)
    cs = box.changes_since(whole.modseq)
    a, b = whole.apply(cs, allow_expunge=True), sleeper.apply(cs, allow_expunge=True)
    assert (a.expunged, a.exists, a.flags) == (b.expunged, b.exists, b.flags)


def test_view_with_expunges_not_yet_sent_does_not_sleep() -> None:
    box = Box(3)
    view = SelectedView(box.mailbox(), box.listing(), False)
    box.expunge(0)
    view.apply(box.changes_since(view.modseq), allow_expunge=False)  # held back (FETCH ran)
    assert not view.hibernate()
    assert view.uids == [1, 2, 3]
    assert view.flush_pending() == [(1, 1)]
    assert view.hibernate()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), OPS, OPS)
def test_views_sharing_a_listing_behave_as_views_of_their_own(
    n: int, first: list[tuple[str, int, int]], second: list[tuple[str, int, int]],
) -> None:
    """SELECT shares the store's listing between sessions (copy on write): a view over it
    announces what a view with its own records does, and changes neither the listing nor
    another view over it."""
    box = Box(n)
    listing = MessageListing(1, box.modseq, {r.uid: r for r in box.listing()})
    before = dict(listing.records)
    own = SelectedView(box.mailbox(), box.listing(), False)
    shared = SelectedView.from_listing(box.mailbox(), listing, False)
    bystander = SelectedView.from_listing(box.mailbox(), listing, True)
    assert shared.uids == own.uids and shared.keywords == own.keywords
    for ops in (first, second):
        box.change(ops)
        cs = box.changes_since(own.modseq)
        a, b = own.apply(cs, allow_expunge=True), shared.apply(cs, allow_expunge=True)
        assert (a.expunged, a.exists, a.flags, a.new_keywords) == \
            (b.expunged, b.exists, b.flags, b.new_keywords)
        assert shared.uids == own.uids and dict(shared.records) == dict(own.records)
    assert listing.records == before and listing.uids == sorted(before)
    assert bystander.uids == sorted(before) and bystander.records == before


def test_listing_aggregates() -> None:
    box = Box(0)
    for flags in (1, 2, 0, 1):  # \Seen, \Flagged $Todo, none, \Seen
        box.append(flags)
    listing = MessageListing(1, box.modseq, {r.uid: r for r in box.listing()})
    assert listing.first_unseen == 1  # the second message (0-based)
    assert listing.keywords == {"$Todo"}
    assert MessageListing(1, 0, {}).first_unseen is None
