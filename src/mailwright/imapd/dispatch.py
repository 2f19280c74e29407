"""FETCH, SEARCH, SORT and THREAD: the session side.

The session resolves sequence sets, applies the implicit ``\\Seen`` (RFC 9051 6.4.5),
CHANGEDSINCE/VANISHED (RFC 7162), holds back expunges, streams the responses and formats
SEARCH/ESEARCH results.  Rendering a message's FETCH data and evaluating search keys are pure
functions in ``imapd/fetch.py``, ``imapd/search.py`` and ``imapd/sortthread.py``, reached
through :mod:`mailwright.imapd.content`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from operator import attrgetter

from mailwright.imapd import content, context
from mailwright.imapd.blobcache import BLOBS, CachingStore
from mailwright.imapd.cmd_selected import resolve
from mailwright.imapd.session import No, Ok, Progress, Session, handles
from mailwright.imapd.util import ordered_flags, ordered_set_string, uid_set_string
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.errors import ProtocolError
from mailwright.store.api import AccessDenied, FlagOp, Mailbox, MessageRecord, NotFound


def _sets_seen(item: ast.FetchItem) -> bool:
    if isinstance(item, ast.FetchBody | ast.FetchBinary):
        return not item.peek
    return isinstance(item, ast.FetchAttr) and item.name in ("RFC822", "RFC822.TEXT")


async def may_read(s: Session) -> bool:
    """Whether the user still holds ``r`` on the selected mailbox (RFC 4314 4): another
    account's share may have been revoked since SELECT, so every command that reads message
    data there asks the store again (one indexed read; the user's own mailboxes need none)."""
    view = s.view
    if view is None or view.mailbox.account_id == s.account_id:
        return True
    try:
        await s.store.acl_require(s.account_id, view.mailbox.id, "r")
    except (AccessDenied, NotFound):
        return False
    return True


async def require_read(s: Session) -> None:
    """RFC 4314 5.1.1 lets a server whose reader lost ``r`` either say BYE or refuse the
    commands of the selected state; we refuse each reading command with NO [NOPERM] and keep
    the session, so the client can CLOSE and go on with its other mailboxes."""
    if not await may_read(s):
        raise No("You lack the right(s) r on this mailbox", "NOPERM")


@handles(ast.Fetch)
async def fetch(s: Session, cmd: ast.Fetch) -> Ok | None:
    view = s.view
    assert view is not None
    await require_read(s)
    items = list(cmd.items)
    if cmd.uid and ast.FetchAttr("UID") not in items and not s.uidonly:
        # RFC 9051 6.4.9: UID FETCH always returns the UID (RFC 9586 3.3: UIDFETCH names it)
        items.insert(0, ast.FetchAttr("UID"))
    want_savedate = ast.FetchAttr("SAVEDATE") in items
    if want_savedate:
        # RFC 8514 4.1: the save date is store data, added to each line by _finish_line
        items = [i for i in items if i != ast.FetchAttr("SAVEDATE")]
    if cmd.changedsince is not None or ast.FetchAttr("MODSEQ") in items:
        s.enable_condstore()
        if ast.FetchAttr("MODSEQ") not in items:
            items.append(ast.FetchAttr("MODSEQ"))  # RFC 7162 3.1.4.1
    if cmd.vanished and not s.qresync:
        raise ProtocolError("VANISHED requires ENABLE QRESYNC")
    if (cmd.changedsince is None and cmd.partial is None and not want_savedate
            and not s.uidonly and not view.pending_expunge and not view.recent
            and _whole(cmd.set) and _fast_items(items)):
        # The resync every client does (UID FETCH 1:* (FLAGS)): straight from the view, with
        # no list of (number, UID) pairs and records made first. The lines are the same for
        # every session whose view is still the shared listing: the first renders them and
        # the others send that (kept with the listing, so a change of the mailbox drops it).
        listing = view.same_as_listing()
        if listing is None or len(listing) < _RENDER_CACHE_MIN:
            for piece in _fast_lines(items, enumerate(map(view.records.__getitem__, view.uids),
                                                      1)):
                s.write(piece)
                await s.maybe_flush()
            return None
        key = ("FETCH", *(i.name for i in items if isinstance(i, ast.FetchAttr)))
        block = listing.derived.get(key)
        if not isinstance(block, bytes):
            block = b"".join(_fast_lines(items, enumerate(
                map(view.records.__getitem__, view.uids), 1)))
            listing.derived = {key: block}
        s.write(block)
        await s.maybe_flush()
        return None
    pairs = resolve(s, cmd.set, cmd.uid)
    if cmd.vanished and cmd.changedsince is not None:
        cs = await s.store.changes_since(view.mailbox.id, cmd.changedsince)
        largest = max(view.uidnext - 1, 1)
        gone = [u for u in cs.expunged if cmd.set.saved is False and cmd.set.contains(u, largest)]
        if gone:
            s.untagged(b"VANISHED (EARLIER) " + uid_set_string(gone).encode())
    ghosts = False
    records = view.records
    live: list[tuple[int, MessageRecord]]
    if not view.pending_expunge and cmd.changedsince is None:
        live = [(seq, records[uid]) for seq, uid in pairs]
    else:
        live = []
        for seq, uid in pairs:
            # A message expunged elsewhere but not yet announced keeps its number; like
            # Dovecot we still answer from what we have (record, cached or shared blob) and
            # say EXPUNGEISSUED only for what can no longer be read.
            rec = records.get(uid)
            if rec is None:
                ghosts = True
                continue
            if cmd.changedsince is not None and rec.modseq <= cmd.changedsince:
                continue
            live.append((seq, rec))
    if cmd.partial is not None:
        # RFC 9394 4: the range counts the messages the command would otherwise return
        keep = set(cmd.partial.pick([rec.uid for _, rec in live]))
        live = [(seq, rec) for seq, rec in live if rec.uid in keep]
    savedates: dict[int, float | None] | None = None
    if want_savedate:
        savedates = await s.store.save_dates(view.mailbox.id, [rec.uid for _, rec in live])
    seen_now: set[int] = set()
    # RFC 4314 4: reading sets \\Seen only for a user with s
    if not view.readonly and "s" in view.rights and any(_sets_seen(i) for i in items):
        unseen = [rec.uid for _, rec in live if "\\Seen" not in rec.flags]
        try:
            res = await s.store.store_flags_as(
                s.account_id, view.mailbox.id, unseen, FlagOp.ADD, ["\\Seen"]
            ) if unseen else None
        except AccessDenied:
            res = None  # s revoked since SELECT: the data is still served, \Seen left alone
        if res is not None:
            view.update_records(res.updated)
            seen_now = {r.uid for r in res.updated}
            live = [(seq, view.records.get(rec.uid, rec)) for seq, rec in live]
    if view.recent:
        # RFC 3501 2.3.2: \Recent is shown in FLAGS (never to IMAP4rev2 sessions: none kept)
        live = [(seq, view.shown(rec)) for seq, rec in live]
    if not seen_now and _fast_items(items):
        _fetch_fast(s, live, items, savedates)
        await s.maybe_flush()
        return _EXPUNGE_ISSUED if ghosts else None
    renderer = content.fetch_renderer()
    store = CachingStore(s.store)
    want_info, want_raw = content.fetch_needs(items)
    await _prefetch(store, [rec for _, rec in live], meta=want_info, raw=want_raw)
    with_flags = [*items, ast.FetchAttr("FLAGS")] if ast.FetchAttr("FLAGS") not in items else items
    for seq, rec in live:
        # RFC 9051 6.4.5: when \Seen is set implicitly, FLAGS is reported with the data.
        use = with_flags if rec.uid in seen_now else items
        try:
            data = await renderer(store, seq, rec, use, utf8=s.utf8)
        except content.FetchFailed as exc:
            raise No(str(exc), exc.code) from None
        except NotFound:
            # expunged by another session (and its blob freed) since our last sync: it keeps
            # its number until the EXPUNGE is sent, so it is answered from its record
            ghosts = True
            data = content.ghost_line(seq, rec, use, utf8=s.utf8)
        s.write(_finish_line(s, data, seq, rec, savedates))
        await s.maybe_flush()
    return _EXPUNGE_ISSUED if ghosts else None


#: RFC 9051 7.1 / RFC 2180 4.1.1: some messages were expunged by another session; the others
#: were answered, so the command succeeded (Dovecot answers the same, never NO for the rest)
_EXPUNGE_ISSUED = Ok("Some messages were already expunged", "EXPUNGEISSUED")


def _savedate(rec: MessageRecord, savedates: dict[int, float | None]) -> bytes:
    """RFC 8514 4.1: the save date, NIL for a message saved before save dates were kept
    (the RFC's NIL for a mailbox without them, per message)."""
    when = savedates.get(rec.uid)
    if when is None:
        return b"SAVEDATE NIL"
    return b"SAVEDATE " + content.internaldate(datetime.fromtimestamp(when, UTC))


def _finish_line(
    s: Session, data: bytes, seq: int, rec: MessageRecord,
    savedates: dict[int, float | None] | None,
) -> bytes:
    """Add SAVEDATE (RFC 8514) and, under UIDONLY, name the message by UID (RFC 9586 3.3)."""
    if savedates is not None:
        sep = b"" if data.endswith(b"()\r\n") else b" "
        data = data[:-3] + sep + _savedate(rec, savedates) + b")\r\n"
    if s.uidonly:
        prefix = b"* %d FETCH (" % seq
        data = b"* %d UIDFETCH (" % rec.uid + data[len(prefix):]
    return data


_FAST = frozenset({"UID", "FLAGS", "MODSEQ", "RFC822.SIZE", "INTERNALDATE"})


def _fast_items(items: list[ast.FetchItem]) -> bool:
    return all(isinstance(i, ast.FetchAttr) and i.name in _FAST for i in items)


def _whole(seqset: ast.SequenceSet) -> bool:
    """``1:*``: every message, by number or by UID."""
    return (not seqset.saved and len(seqset.ranges) == 1 and seqset.ranges[0].start == 1
            and seqset.ranges[0].end is None)


#: listings this big keep their rendering of a whole-mailbox FETCH of record items
_RENDER_CACHE_MIN = 1000


def _fast_lines(
    items: list[ast.FetchItem], live: Iterable[tuple[int, MessageRecord]],
    savedates: dict[int, float | None] | None = None, *, uidonly: bool = False,
) -> Iterator[bytes]:
    """FETCH lines of record-only items (the mail client's resync: ``UID FETCH 1:*
    (FLAGS)``) without per-message awaits: one format string, flag lists rendered once per
    distinct set, 4,000 lines to a piece."""
    flag_cache: dict[frozenset[str], bytes] = {}

    def flags(rec: MessageRecord) -> bytes:
        fl = flag_cache.get(rec.flags)
        if fl is None:
            fl = flag_cache[rec.flags] = R.flag_list(ordered_flags(rec.flags))
        return fl

    fmts: list[bytes] = []
    getters: list[Callable[[MessageRecord], object]] = []
    for i in items:
        assert isinstance(i, ast.FetchAttr)
        if i.name == "UID":
            fmts.append(b"UID %d")
            getters.append(attrgetter("uid"))
        elif i.name == "FLAGS":
            fmts.append(b"FLAGS %s")
            getters.append(flags)
        elif i.name == "MODSEQ":
            fmts.append(b"MODSEQ (%d)")
            getters.append(attrgetter("modseq"))
        elif i.name == "RFC822.SIZE":
            fmts.append(b"RFC822.SIZE %d")
            getters.append(attrgetter("size"))
        else:
            fmts.append(b"INTERNALDATE %s")
            getters.append(lambda rec: content.internaldate(rec.internaldate))
    if savedates is not None:
        dates = savedates
        fmts.append(b"%s")
        getters.append(lambda rec: _savedate(rec, dates))
    # RFC 9586 3.3: under UIDONLY the line names the message by UID (UIDFETCH)
    fmt = (b"* %d UIDFETCH (" if uidonly else b"* %d FETCH (") + b" ".join(fmts) + b")\r\n"
    names = [i.name for i in items if isinstance(i, ast.FetchAttr)]
    it = iter(live)
    while chunk := list(islice(it, 4000)):
        if uidonly:
            lines = [fmt % (rec.uid, *[g(rec) for g in getters]) for _, rec in chunk]
        elif names == ["UID", "FLAGS"] and savedates is None:
            # the resync every client does: no per-item dispatch at all
            lines = [fmt % (seq, rec.uid, flags(rec)) for seq, rec in chunk]
        else:
            lines = [fmt % (seq, *[g(rec) for g in getters]) for seq, rec in chunk]
        yield b"".join(lines)


def _fetch_fast(
    s: Session, live: list[tuple[int, MessageRecord]], items: list[ast.FetchItem],
    savedates: dict[int, float | None] | None,
) -> None:
    """FETCH of record-only items, written in pieces (see `_fast_lines`)."""
    for piece in _fast_lines(items, live, savedates, uidonly=s.uidonly):
        s.write(piece)


# -- SEARCH ----------------------------------------------------------------------------------


def _uses_modseq(key: ast.SearchKey) -> bool:
    if isinstance(key, ast.SearchModSeq):
        return True
    if isinstance(key, ast.SearchAnd):
        return any(_uses_modseq(k) for k in key.keys)
    if isinstance(key, ast.SearchOr):
        return _uses_modseq(key.left) or _uses_modseq(key.right)
    if isinstance(key, ast.SearchNot):
        return _uses_modseq(key.key)
    return False


async def _prefetch(
    store: CachingStore, recs: list[MessageRecord], *, meta: bool, raw: bool
) -> None:
    """Warm the shared cache concurrently when the messages fit in it comfortably."""
    if not (meta or raw) or not recs:
        return
    if raw and sum(r.size for r in recs) > BLOBS.max_bytes // 2:
        raw = False
    if meta and len(recs) > 20000:
        meta = False
    await store.prefetch((r.blob_id for r in recs), meta=meta, raw=raw)


#: messages evaluated between two INPROGRESS reports (RFC 9585)
SEARCH_CHUNK = 1000


def _has_savedate_key(key: ast.SearchKey) -> bool:
    if isinstance(key, ast.SearchSaveDateSupported):
        return True
    if isinstance(key, ast.SearchDate):
        return key.field == "saved"
    if isinstance(key, ast.SearchAnd):
        return any(_has_savedate_key(k) for k in key.keys)
    if isinstance(key, ast.SearchOr):
        return _has_savedate_key(key.left) or _has_savedate_key(key.right)
    if isinstance(key, ast.SearchNot):
        return _has_savedate_key(key.key)
    return False


def _uid_key(uids: list[int]) -> ast.SearchKey:
    """A UID key for ascending *uids*, consecutive ones merged into ranges (save dates grow
    with UIDs, so the ranges are few)."""
    if not uids:
        return ast.SearchNot(ast.SearchAll())
    ranges: list[ast.SeqRange] = []
    start = prev = uids[0]
    for u in uids[1:]:
        if u != prev + 1:
            ranges.append(ast.SeqRange(start, prev))
            start = u
        prev = u
    ranges.append(ast.SeqRange(start, prev))
    return ast.SearchUid(ast.SequenceSet(tuple(ranges)))


def _bind_savedates(
    key: ast.SearchKey, msgs: list[tuple[int, MessageRecord]], dates: dict[int, float | None]
) -> ast.SearchKey:
    """RFC 8514 4.2: SAVEDBEFORE/SAVEDON/SAVEDSINCE compare the save date (store data, not in
    the record), so they are replaced by the UIDs they match before the pure evaluation; a
    message without a save date is compared by its internal date (4.2).  SAVEDATESUPPORTED
    matches the messages that have one (every message saved since save dates are kept)."""
    if isinstance(key, ast.SearchSaveDateSupported):
        have = [rec.uid for _, rec in msgs if dates.get(rec.uid) is not None]
        if not have:
            return ast.SearchNot(ast.SearchAll())
        return _uid_key(have)
    if isinstance(key, ast.SearchDate) and key.field == "saved":
        uids = []
        for _, rec in msgs:
            when = dates.get(rec.uid)
            day = (rec.internaldate if when is None else datetime.fromtimestamp(when, UTC)).date()
            if (day < key.date if key.op == "before" else day == key.date if key.op == "on"
                    else day >= key.date):
                uids.append(rec.uid)
        return _uid_key(uids)
    if isinstance(key, ast.SearchAnd):
        return ast.SearchAnd(tuple(_bind_savedates(k, msgs, dates) for k in key.keys))
    if isinstance(key, ast.SearchOr):
        return ast.SearchOr(_bind_savedates(key.left, msgs, dates),
                            _bind_savedates(key.right, msgs, dates))
    if isinstance(key, ast.SearchNot):
        return ast.SearchNot(_bind_savedates(key.key, msgs, dates))
    return key


async def _evaluate(
    s: Session,
    key: ast.SearchKey,
    mailbox_id: int,
    msgs: list[tuple[int, MessageRecord]],
    *,
    saved: set[int],
    largest_seq: int,
    largest_uid: int,
    progress: Progress | None,
) -> list[tuple[int, MessageRecord]]:
    """The messages of *msgs* that match *key*, in chunks so that a long search reports its
    progress (RFC 9585) and lets other sessions run in between."""
    if _has_savedate_key(key):
        dates = await s.store.save_dates(mailbox_id, [rec.uid for _, rec in msgs])
        key = _bind_savedates(key, msgs, dates)
    evaluate = content.search_evaluator()
    store = CachingStore(s.store)
    if content.search_needs_content(key):
        # the cheap keys first: a UID range or a flag narrows what is read at all
        msgs = content.search_candidates(
            key, msgs, saved=saved, largest_seq=largest_seq, largest_uid=largest_uid, rev2=s.rev2
        )
        await _prefetch(
            store, [rec for _, rec in msgs], meta=True, raw=content.search_needs_raw(key)
        )
    found: list[tuple[int, MessageRecord]] = []
    for start in range(0, max(len(msgs), 1), SEARCH_CHUNK):
        chunk = msgs[start : start + SEARCH_CHUNK]
        found += await evaluate(
            store, key, chunk, saved=saved, largest_seq=largest_seq,
            largest_uid=largest_uid, rev2=s.rev2,
        )
        if progress is not None:
            await progress.step(start + len(chunk))
    return found


async def _matching(
    s: Session, key: ast.SearchKey, tag: str | None = None
) -> list[tuple[int, MessageRecord]]:
    view = s.view
    assert view is not None
    msgs: list[tuple[int, MessageRecord]] | None = None
    if not view.pending_expunge and not view.recent:
        # the usual case, without a step of Python per message
        recs = list(map(view.records.get, view.uids))
        if None not in recs:
            msgs = list(enumerate(recs, 1))  # type: ignore[arg-type]
    if msgs is None:
        msgs = [
            (seq, view.shown(rec)) for seq, rec in view.iter_records()
            if rec.uid not in view.pending_expunge
        ]
    progress = Progress(s, tag, len(msgs), "Searching") if tag is not None else None
    return await _evaluate(
        s, key, view.mailbox.id, msgs, saved=set(s.saved_search), largest_seq=view.exists,
        largest_uid=view.uids[-1] if view.uids else 0, progress=progress,
    )


async def updated_result(s: Session, cmd: ast.Search | ast.Sort) -> list[int]:
    """The UIDs *cmd* finds now, in its order (RFC 5267 4.3 updates)."""
    found = await _matching(s, cmd.key)
    if isinstance(cmd, ast.Sort):
        found = await content.sort_messages(CachingStore(s.store), cmd.criteria, found)
    return [rec.uid for _, rec in found]


@handles(ast.Search)
async def search(s: Session, cmd: ast.Search) -> Ok | None:
    await require_read(s)  # RFC 4314 4: r, checked again since SELECT
    modseq = _uses_modseq(cmd.key)
    if modseq:
        s.enable_condstore()
    found = await _matching(s, cmd.key, cmd.tag)
    numbers = [rec.uid if cmd.uid else seq for seq, rec in found]
    highest = max((rec.modseq for _, rec in found), default=0)
    returns = cmd.returns
    if returns is None and s.rev2:
        returns = ()  # RFC 9051 6.4.4: IMAP4rev2 answers with ESEARCH
    if returns is None:
        line = b"SEARCH" + b"".join(b" %d" % n for n in numbers)
        if modseq and numbers:
            line += b" (MODSEQ %d)" % highest
        s.untagged(line)
        return None
    _esearch(s, cmd.tag, cmd.uid, returns, numbers,
             [rec.modseq for _, rec in found] if modseq else None, [rec.uid for _, rec in found],
             partial=cmd.partial)
    if "UPDATE" in returns:
        return context.start(s, cmd, numbers)
    return None


def _esearch(
    s: Session,
    tag: str,
    uid: bool,
    returns: tuple[ast.SearchReturnOption, ...],
    numbers: list[int],
    modseqs: list[int] | None,
    uids: list[int],
    *,
    sorted_result: bool = False,
    partial: ast.PartialRange | None = None,
    correlator: bytes = b"",
) -> None:
    """RFC 4731 / RFC 9051 7.3.4 ESEARCH, with RFC 5182 SAVE and RFC 9394 PARTIAL.

    For ESORT (RFC 5267 3.2) MIN/MAX are the first/last message in sort order and ALL keeps
    the sort order.  *correlator* is added to the TAG correlator (RFC 7377 MAILBOX and
    UIDVALIDITY)."""
    # RFC 5267 4.1: CONTEXT and UPDATE ask for no data of their own
    opts: set[str] = {str(r) for r in returns} - {"CONTEXT", "UPDATE"} or {"ALL"}
    picked: list[int] | None = None
    if partial is not None:
        picked = partial.pick(numbers)
    if "SAVE" in opts:
        if picked is not None:
            # RFC 9394 3.1: with PARTIAL, SAVE keeps the part that was returned
            keep = set(picked)
            s.saved_search = [u for n, u in zip(numbers, uids, strict=True) if n in keep]
        else:
            s.saved_search = list(uids)
        opts.discard("SAVE")
        if not opts and returns:
            return  # RFC 5182 2.1: SAVE alone suppresses the ESEARCH response
    parts = [b"(TAG " + R.quoted(tag) + correlator + b")"]
    if uid:
        parts.append(b"UID")
    if "MIN" in opts and numbers:
        parts.append(b"MIN %d" % (numbers[0] if sorted_result else min(numbers)))
    if "MAX" in opts and numbers:
        parts.append(b"MAX %d" % (numbers[-1] if sorted_result else max(numbers)))
    if "ALL" in opts and numbers:
        text = ordered_set_string(numbers) if sorted_result else uid_set_string(numbers)
        parts.append(b"ALL " + text.encode())
    if "COUNT" in opts:
        parts.append(b"COUNT %d" % len(numbers))
    if partial is not None and picked is not None:
        # RFC 9394 3.1: the range as asked, then the numbers or NIL
        text = ordered_set_string(picked) if sorted_result else uid_set_string(picked)
        parts.append(b"PARTIAL (" + str(partial).encode() + b" " + (text.encode() or b"NIL")
                     + b")")
    if modseqs is not None and numbers:
        # RFC 4731 3.2: MIN or MAX alone carries the mod-sequence of the message it returns,
        # MIN and MAX (no ALL/COUNT) the higher of the two; otherwise the highest of all found
        if opts and opts <= {"MIN", "MAX"}:
            chosen = []
            if "MIN" in opts:
                chosen.append(0 if sorted_result else numbers.index(min(numbers)))
            if "MAX" in opts:
                chosen.append(len(numbers) - 1 if sorted_result else numbers.index(max(numbers)))
            value = max(modseqs[i] for i in chosen)
        else:
            value = max(modseqs)
        parts.append(b"MODSEQ %d" % value)
    s.untagged(b"ESEARCH " + b" ".join(parts))


@handles(ast.Sort)
async def sort(s: Session, cmd: ast.Sort) -> Ok | None:
    if not content.sortthread_available():
        raise No("SORT is not available", "CANNOT")
    await require_read(s)  # RFC 4314 4: r, checked again since SELECT
    found = await _matching(s, cmd.key, cmd.tag)
    ordered = await content.sort_messages(CachingStore(s.store), cmd.criteria, found)
    numbers = [rec.uid if cmd.uid else seq for seq, rec in ordered]
    if cmd.returns is None:
        s.untagged(b"SORT" + b"".join(b" %d" % n for n in numbers))
        return None
    _esearch(s, cmd.tag, cmd.uid, cmd.returns, numbers, None, [r.uid for _, r in ordered],
             sorted_result=True, partial=cmd.partial)
    if "UPDATE" in cmd.returns:
        return context.start(s, cmd, numbers)
    return None


@handles(ast.Thread)
async def thread(s: Session, cmd: ast.Thread) -> Ok | None:
    if not content.sortthread_available():
        raise No("THREAD is not available", "CANNOT")
    await require_read(s)  # RFC 4314 4: r, checked again since SELECT
    found = await _matching(s, cmd.key, cmd.tag)
    data = await content.thread_messages(CachingStore(s.store), cmd.algorithm, found, uid=cmd.uid)
    s.untagged(b"THREAD" + (b" " + data if data else b""))
    return None


# -- MULTISEARCH (RFC 7377) ------------------------------------------------------------------


async def _sources(s: Session, cmd: ast.MultiSearch) -> list[Mailbox]:
    """The account's own mailboxes the source filters name (RFC 5465 6), in LIST order."""
    from mailwright.imapd import names

    own = await s.store.list_mailboxes(s.account_id)
    if not cmd.sources:
        if s.view is None:
            raise ProtocolError("ESEARCH without IN needs a selected mailbox")
        return [s.view.mailbox]
    chosen: set[int] = set()
    subscribed: set[str] | None = None
    for kind, boxes in cmd.sources:
        if kind in ("SELECTED", "SELECTED-DELAYED"):
            if s.view is not None:
                chosen.add(s.view.mailbox.id)
        elif kind == "INBOXES":
            chosen.update(m.id for m in own if m.name == "INBOX")
        elif kind == "PERSONAL":
            chosen.update(m.id for m in own)
        elif kind == "SUBSCRIBED":
            if subscribed is None:
                subscribed = set(await s.store.list_subscriptions(s.account_id))
            chosen.update(m.id for m in own if m.name in subscribed)
        else:
            wanted = [s.name_in(b) for b in boxes]
            for m in own:
                for w in wanted:
                    below = m.name.startswith(w + names.DELIMITER)
                    if m.name == w or (kind == "SUBTREE" and below) or (
                        kind == "SUBTREE-ONE" and below
                        and names.DELIMITER not in m.name[len(w) + 1 :]
                    ):
                        chosen.add(m.id)
    # INBOX first, then by name, as LIST answers
    out = sorted((m for m in own if m.id in chosen), key=lambda m: (m.name != "INBOX", m.name))
    view = s.view
    if view is not None and view.mailbox.id in chosen and view.mailbox.account_id != s.account_id:
        out.append(view.mailbox)  # SELECTED may be another account's (its r is checked)
    return out


@handles(ast.MultiSearch)
async def multisearch(s: Session, cmd: ast.MultiSearch) -> Ok | None:
    """RFC 7377: one ESEARCH response per mailbox with matches, always UIDs, each with the
    mailbox name and UIDVALIDITY in its correlator."""
    if _uses_modseq(cmd.key):
        s.enable_condstore()
    modseq = _uses_modseq(cmd.key)
    boxes = await _sources(s, cmd)
    progress = Progress(s, cmd.tag, len(boxes), "Searching mailboxes")
    returns = cmd.returns if cmd.returns is not None else ()
    for done, mb in enumerate(boxes):
        view = s.view
        if view is not None and view.mailbox.id == mb.id:
            await require_read(s)  # SELECTED may be another account's (RFC 4314 4: r)
            msgs = [(seq, view.shown(rec)) for seq, rec in view.iter_records()
                    if rec.uid not in view.pending_expunge]
            saved = set(s.saved_search)
            largest = view.exists
        else:
            msgs = list(enumerate(await s.store.list_messages(mb.id), start=1))
            saved = set()
            largest = len(msgs)
        found = await _evaluate(
            s, cmd.key, mb.id, msgs, saved=saved, largest_seq=largest,
            largest_uid=msgs[-1][1].uid if msgs else 0, progress=None,
        )
        await progress.step(done + 1)
        if not found:
            continue
        uids = [rec.uid for _, rec in found]
        shown = view.display if view is not None and view.mailbox.id == mb.id else mb.name
        correlator = (b" MAILBOX " + s.name_out(shown)
                      + b" UIDVALIDITY %d" % mb.uidvalidity)
        _esearch(s, cmd.tag, True, returns, uids,
                 [rec.modseq for _, rec in found] if modseq else None, uids,
                 partial=cmd.partial, correlator=correlator)
        await s.maybe_flush()
    return None
