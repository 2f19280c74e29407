"""FETCH, SEARCH, SORT and THREAD: the session side.

The session resolves sequence sets, applies the implicit ``\\Seen`` (RFC 9051 6.4.5),
CHANGEDSINCE/VANISHED (RFC 7162), holds back expunges, streams the responses and formats
SEARCH/ESEARCH results.  Rendering a message's FETCH data and evaluating search keys are pure
functions in ``imapd/fetch.py``, ``imapd/search.py`` and ``imapd/sortthread.py``, reached
through :mod:`mailwright.imapd.content`.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from mailwright.imapd import content
from mailwright.imapd.blobcache import BLOBS, CachingStore
from mailwright.imapd.cmd_selected import resolve
from mailwright.imapd.session import No, Ok, Session, handles
from mailwright.imapd.util import ordered_flags, ordered_set_string, uid_set_string
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.errors import ProtocolError
from mailwright.store.api import FlagOp, MessageRecord, NotFound


def _sets_seen(item: ast.FetchItem) -> bool:
    if isinstance(item, ast.FetchBody | ast.FetchBinary):
        return not item.peek
    return isinstance(item, ast.FetchAttr) and item.name in ("RFC822", "RFC822.TEXT")


@handles(ast.Fetch)
async def fetch(s: Session, cmd: ast.Fetch) -> Ok | None:
    view = s.view
    assert view is not None
    items = list(cmd.items)
    if cmd.uid and ast.FetchAttr("UID") not in items:
        # RFC 9051 6.4.9: UID FETCH always returns the UID.
        items.insert(0, ast.FetchAttr("UID"))
    if cmd.changedsince is not None or ast.FetchAttr("MODSEQ") in items:
        s.enable_condstore()
        if ast.FetchAttr("MODSEQ") not in items:
            items.append(ast.FetchAttr("MODSEQ"))  # RFC 7162 3.1.4.1
    if cmd.vanished and not s.qresync:
        raise ProtocolError("VANISHED requires ENABLE QRESYNC")
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
    seen_now: set[int] = set()
    if not view.readonly and any(_sets_seen(i) for i in items):
        unseen = [rec.uid for _, rec in live if "\\Seen" not in rec.flags]
        if unseen:
            res = await s.store.store_flags(view.mailbox.id, unseen, FlagOp.ADD, ["\\Seen"])
            view.update_records(res.updated)
            seen_now = {r.uid for r in res.updated}
            live = [(seq, view.records.get(rec.uid, rec)) for seq, rec in live]
    if view.recent:
        # RFC 3501 2.3.2: \Recent is shown in FLAGS (never to IMAP4rev2 sessions: none kept)
        live = [(seq, view.shown(rec)) for seq, rec in live]
    if not seen_now and _fast_items(items):
        _fetch_fast(s, live, items)
        await s.maybe_flush()
        if ghosts:
            raise No("Some messages were expunged", "EXPUNGEISSUED")
        return None
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
            ghosts = True  # expunged (and its blob freed) since our last sync
            continue
        s.write(data)
        await s.maybe_flush()
    if ghosts:
        # RFC 9051 7.1: EXPUNGEISSUED, some messages were expunged by another session.
        raise No("Some messages were expunged", "EXPUNGEISSUED")
    return None


_FAST = frozenset({"UID", "FLAGS", "MODSEQ", "RFC822.SIZE", "INTERNALDATE"})


def _fast_items(items: list[ast.FetchItem]) -> bool:
    return all(isinstance(i, ast.FetchAttr) and i.name in _FAST for i in items)


def _fetch_fast(s: Session, live: list[tuple[int, MessageRecord]], items: list[ast.FetchItem]) -> None:
    """FETCH of record-only items (the mail client's resync: ``UID FETCH 1:* (FLAGS)``)
    without per-message awaits: one format string, flag lists rendered once per distinct set."""
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
    fmt = b"* %d FETCH (" + b" ".join(fmts) + b")\r\n"
    names = [i.name for i in items if isinstance(i, ast.FetchAttr)]
    for start in range(0, len(live), 4000):
        chunk = live[start : start + 4000]
        if names == ["UID", "FLAGS"]:
            # the resync every client does: no per-item dispatch at all
            lines = [fmt % (seq, rec.uid, flags(rec)) for seq, rec in chunk]
        else:
            lines = [fmt % (seq, *[g(rec) for g in getters]) for seq, rec in chunk]
        s.write(b"".join(lines))


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


async def _matching(s: Session, key: ast.SearchKey) -> list[tuple[int, MessageRecord]]:
    view = s.view
    assert view is not None
    msgs = [
        (seq, view.shown(rec)) for seq, rec in view.iter_records()
        if rec.uid not in view.pending_expunge
    ]
    evaluate = content.search_evaluator()
    store = CachingStore(s.store)
    if content.search_needs_content(key):
        await _prefetch(store, [rec for _, rec in msgs], meta=True, raw=True)
    return await evaluate(
        store, key, msgs, saved=set(s.saved_search), largest_seq=view.exists,
        largest_uid=view.uids[-1] if view.uids else 0, rev2=s.rev2,
    )


@handles(ast.Search)
async def search(s: Session, cmd: ast.Search) -> Ok | None:
    modseq = _uses_modseq(cmd.key)
    if modseq:
        s.enable_condstore()
    found = await _matching(s, cmd.key)
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
             [rec.modseq for _, rec in found] if modseq else None, [rec.uid for _, rec in found])
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
) -> None:
    """RFC 4731 / RFC 9051 7.3.4 ESEARCH, with RFC 5182 SAVE.

    For ESORT (RFC 5267 3.2) MIN/MAX are the first/last message in sort order and ALL keeps
    the sort order."""
    opts = set(returns) or {"ALL"}
    if "SAVE" in opts:
        s.saved_search = list(uids)
        opts.discard("SAVE")
        if not opts and returns:
            return  # RFC 5182 2.1: SAVE alone suppresses the ESEARCH response
    parts = [b"(TAG " + R.quoted(tag) + b")"]
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
    if modseqs is not None and numbers:
        # RFC 4731 3.2: MIN or MAX alone carries the mod-sequence of the message it returns,
        # MIN and MAX (no ALL/COUNT) the higher of the two; otherwise the highest of all found
        if opts and opts <= {"MIN", "MAX"}:
            picked = []
            if "MIN" in opts:
                picked.append(0 if sorted_result else numbers.index(min(numbers)))
            if "MAX" in opts:
                picked.append(len(numbers) - 1 if sorted_result else numbers.index(max(numbers)))
            value = max(modseqs[i] for i in picked)
        else:
            value = max(modseqs)
        parts.append(b"MODSEQ %d" % value)
    s.untagged(b"ESEARCH " + b" ".join(parts))


@handles(ast.Sort)
async def sort(s: Session, cmd: ast.Sort) -> Ok | None:
    if not content.sortthread_available():
        raise No("SORT is not available", "CANNOT")
    found = await _matching(s, cmd.key)
    ordered = await content.sort_messages(CachingStore(s.store), cmd.criteria, found)
    numbers = [rec.uid if cmd.uid else seq for seq, rec in ordered]
    if cmd.returns is None:
        s.untagged(b"SORT" + b"".join(b" %d" % n for n in numbers))
        return None
    _esearch(s, cmd.tag, cmd.uid, cmd.returns, numbers, None, [r.uid for _, r in ordered],
             sorted_result=True)
    return None


@handles(ast.Thread)
async def thread(s: Session, cmd: ast.Thread) -> Ok | None:
    if not content.sortthread_available():
        raise No("THREAD is not available", "CANNOT")
    found = await _matching(s, cmd.key)
    data = await content.thread_messages(CachingStore(s.store), cmd.algorithm, found, uid=cmd.uid)
    s.untagged(b"THREAD" + (b" " + data if data else b""))
    return None
