"""Selecting a mailbox and changing its messages: SELECT/EXAMINE (RFC 7162 CONDSTORE and
QRESYNC), CLOSE, UNSELECT, EXPUNGE and UID EXPUNGE (RFC 4315), STORE (RFC 7162
UNCHANGEDSINCE), COPY and MOVE (RFC 6851) with COPYUID."""

from __future__ import annotations

from mailwright.imapd import objectid
from mailwright.imapd.cmd_mailbox import check_flags
from mailwright.imapd.session import No, Ok, Progress, Session, handles
from mailwright.imapd.shared import open_mailbox, permanent_flags, readonly_rights
from mailwright.imapd.util import ordered_set_string, uid_set_string
from mailwright.imapd.view import SelectedView
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.errors import ProtocolError
from mailwright.store.api import (
    ALL_RIGHTS,
    FlagOp,
    MessageRecord,
    NotFound,
    QuotaExceeded,
    StorageFull,
)

_PERMANENT = b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)"


@handles(ast.Select)
async def select(s: Session, cmd: ast.Select) -> Ok | None:
    if cmd.qresync is not None and not s.qresync:
        # checked before anything changes: a BAD command leaves the state as it was
        raise ProtocolError("QRESYNC parameter requires ENABLE QRESYNC")
    if s.view is not None:
        s.unselect()
        # RFC 9051 6.3.2 / RFC 7162 3.2.11: the previous mailbox is closed first.
        s.untagged_status("OK", "Previous mailbox closed", "CLOSED")
    if cmd.condstore:
        s.enable_condstore()
    # RFC 4314 4: SELECT and EXAMINE need r; READ-ONLY when nothing may be changed
    mb, rights, ref = await open_mailbox(s, cmd.mailbox, "r")
    # One read of the shared listing: no step per message (the counts and the first unseen
    # message are the listing's aggregates, computed once per change of the mailbox).
    listing = await s.store.listing_as(s.account_id, mb.id)
    readonly = cmd.readonly or readonly_rights(rights)
    view = SelectedView.from_listing(mb, listing, readonly, rights=rights, display=ref.display)
    s.select_view(view)
    await s.claim_recent(view.uids)
    s.untagged(b"FLAGS " + R.flag_list(s.mailbox_flags()))
    s.untagged_status(
        "OK", "Flags permitted",
        "PERMANENTFLAGS " + ("()" if readonly else _PERMANENT.decode() if rights == ALL_RIGHTS
                             else permanent_flags(rights)),
    )
    s.untagged(b"%d EXISTS" % view.exists)
    if s.rev2:
        # RFC 9051 6.3.2: IMAP4rev2 SELECT answers with the mailbox's LIST response.
        prefix = mb.name + "/"
        kids = any(m.name.startswith(prefix) for m in await s.store.list_mailboxes(mb.account_id))
        attrs = ["\\HasChildren" if kids else "\\HasNoChildren"]
        if mb.special_use and not ref.shared:
            attrs.append(mb.special_use)
        s.untagged(b"LIST " + R.flag_list(attrs) + b' "/" ' + s.name_out(ref.display))
    else:
        s.untagged(b"%d RECENT" % view.recent_count())
        unseen = listing.first_unseen  # the view is the listing still: same positions
        if unseen is not None and not s.uidonly:  # RFC 9586 3: no sequence numbers
            s.untagged_status("OK", "First unseen", f"UNSEEN {unseen + 1}")
    s.untagged_status("OK", "UIDs valid", f"UIDVALIDITY {mb.uidvalidity}")
    # RFC 8474 4.2: MAILBOXID on every successful SELECT and EXAMINE
    s.untagged_status("OK", "Mailbox id", f"MAILBOXID ({objectid.mailbox_id(mb)})")
    s.untagged_status("OK", "Predicted next UID", f"UIDNEXT {mb.uidnext}")
    # RFC 7162 3.1.2.1: HIGHESTMODSEQ on every successful SELECT/EXAMINE.
    s.untagged_status("OK", "Highest", f"HIGHESTMODSEQ {mb.highestmodseq}")
    if cmd.qresync is not None and cmd.qresync.uidvalidity == mb.uidvalidity:
        await _qresync(s, view, cmd.qresync)
    return Ok(
        ("EXAMINE" if cmd.readonly else "SELECT") + " completed",
        "READ-ONLY" if readonly else "READ-WRITE",
    )


async def _qresync(s: Session, view: SelectedView, q: ast.QResyncParams) -> None:
    """RFC 7162 3.2.5.1: VANISHED (EARLIER) then FETCH of what changed since q.modseq."""
    cs = await s.store.changes_since(view.mailbox.id, q.modseq)
    known = q.known_uids
    largest = max(view.uidnext - 1, 1)
    gone = [u for u in cs.expunged if known is None or known.contains(u, largest)]
    if gone:
        s.untagged(b"VANISHED (EARLIER) " + uid_set_string(gone).encode())
    for rec in cs.updated:
        if known is not None and not known.contains(rec.uid, largest):
            continue
        seq = view.seq_of(rec.uid)
        current = view.records.get(rec.uid)
        if seq is None or current is None:
            continue
        s.untagged(s.flags_fetch(seq, current, with_uid=True))


@handles(ast.Close)
async def close(s: Session, cmd: ast.Close) -> Ok | None:
    view = s.view
    assert view is not None
    if not view.readonly and "e" in view.rights:
        # RFC 9051 6.4.1: CLOSE expunges silently (RFC 4314 4: only with e).
        await s.sync(cmd, force=True)
        deleted = [r.uid for _, r in view.iter_records() if "\\Deleted" in r.flags]
        if deleted:
            await s.store.expunge_as(s.account_id, view.mailbox.id, deleted)
    s.unselect()
    return None


@handles(ast.Unselect)
async def unselect(s: Session, cmd: ast.Unselect) -> Ok | None:
    s.unselect()
    return None


def send_expunged(s: Session, removed: list[tuple[int, int]]) -> None:
    """Our own expunges, as EXPUNGE responses or VANISHED (QRESYNC, UIDONLY)."""
    if not removed:
        return
    if s.qresync or s.uidonly:  # RFC 9586 3: VANISHED, never EXPUNGE
        s.untagged(b"VANISHED " + uid_set_string(u for _, u in removed).encode())
    else:
        for seq, _uid in removed:
            s.untagged(b"%d EXPUNGE" % seq)


@handles(ast.Expunge)
async def expunge(s: Session, cmd: ast.Expunge) -> Ok | None:
    view = s.view
    assert view is not None
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    if "e" not in view.rights:
        raise No("You lack the right to expunge here", "NOPERM")  # RFC 4314 4
    await s.sync(cmd, force=True)
    if cmd.uids is not None:
        wanted = {u for _, u in view.resolve(cmd.uids, uid=True, saved=s.saved_search)}
    else:
        wanted = None
    deleted = [
        r.uid for _, r in view.iter_records()
        if "\\Deleted" in r.flags and (wanted is None or r.uid in wanted)
    ]
    if deleted:
        progress = Progress(s, cmd.tag, len(deleted), "Expunging")
        gone = await progress.around(s.store.expunge_as(s.account_id, view.mailbox.id, deleted))
        send_expunged(s, view.remove_expunged(gone))
    return None


def resolve(s: Session, seqset: ast.SequenceSet, uid: bool) -> list[tuple[int, int]]:
    """(seq, uid) pairs; BAD for message numbers beyond EXISTS (RFC 9051 6.4.5 example)."""
    view = s.view
    assert view is not None
    if not uid and view.seq_out_of_range(seqset):
        raise ProtocolError("Invalid message sequence number")
    return view.resolve(seqset, uid=uid, saved=s.saved_search)


@handles(ast.Store)
async def store(s: Session, cmd: ast.Store) -> Ok | None:
    view = s.view
    assert view is not None
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    flags = check_flags(cmd.flags)
    if cmd.unchangedsince is not None:
        s.enable_condstore()
    pairs = resolve(s, cmd.set, cmd.uid)
    # RFC 2180 4.2.1: messages expunged by another session (not yet announced) are skipped
    # and the STORE answers OK for the rest, as Dovecot does; a tagged NO would be shown to
    # the user as an error by some clients.
    live = [(seq, u) for seq, u in pairs if u not in view.pending_expunge]
    op = {"add": FlagOp.ADD, "remove": FlagOp.REMOVE, "replace": FlagOp.REPLACE}[cmd.mode]
    if not live:
        return None
    # RFC 4314 4: s for \\Seen, t for \\Deleted, w for the others (the store refuses)
    res = await s.store.store_flags_as(
        s.account_id, view.mailbox.id, [u for _, u in live], op, flags, cmd.unchangedsince
    )
    before = set(view.keywords)
    view.update_records(res.updated)
    if view.keywords != before:
        s.untagged(b"FLAGS " + R.flag_list(s.mailbox_flags()))
    changed = {r.uid: r for r in res.updated}
    if not cmd.silent:
        touched: dict[int, MessageRecord] = {r.uid: r for r in res.unchanged}
        touched.update(changed)
        for seq, u in live:
            rec = touched.get(u)
            if rec is not None:
                s.untagged(s.flags_fetch(seq, rec, with_uid=cmd.uid))
    elif s.condstore and cmd.unchangedsince is not None:
        # RFC 7162 3.1.3: with .SILENT the new MODSEQ is still reported.
        for seq, u in live:
            rec = changed.get(u)
            if rec is not None:
                if s.uidonly:  # RFC 9586 3.3
                    s.untagged(b"%d UIDFETCH (MODSEQ (%d))" % (rec.uid, rec.modseq))
                    continue
                uid_part = b"UID %d " % rec.uid if cmd.uid else b""
                s.untagged(b"%d FETCH (%sMODSEQ (%d))" % (seq, uid_part, rec.modseq))
    if res.failed:
        failed = set(res.failed)
        if cmd.uid:
            modified = uid_set_string(failed)
        else:
            modified = uid_set_string(seq for seq, u in live if u in failed)
        return Ok("Conditional STORE failed", f"MODIFIED {modified}")
    return None


async def _target(s: Session, raw: str) -> int:
    try:
        mb, _, _ = await open_mailbox(s, raw, "i")  # RFC 4314 4: i on the target
    except No as exc:
        if exc.code == "NOPERM":
            raise
        raise No("Target mailbox does not exist", "TRYCREATE") from None
    return mb.id


@handles(ast.Copy, ast.Move)
async def copy_move(s: Session, cmd: ast.Copy | ast.Move) -> Ok | None:
    view = s.view
    assert view is not None
    is_move = isinstance(cmd, ast.Move)
    if is_move and view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    pairs = resolve(s, cmd.set, cmd.uid)
    dst_id = await _target(s, cmd.mailbox)
    live = [u for _, u in pairs if u not in view.pending_expunge]
    if not live:
        if len(pairs):
            raise No("Messages were expunged", "EXPUNGEISSUED")
        return Ok("No messages")
    # RFC 9585: a long COPY/MOVE says it is still working
    progress = Progress(s, cmd.tag, len(live), "Moving" if is_move else "Copying")
    try:
        if is_move:
            mapping = await progress.around(
                s.store.move_as(s.account_id, view.mailbox.id, live, dst_id))
        else:
            mapping = await progress.around(
                s.store.copy_as(s.account_id, view.mailbox.id, live, dst_id))
    except QuotaExceeded:
        raise No("Quota exceeded", "OVERQUOTA") from None
    except StorageFull:
        raise No("Server storage is full", "LIMIT") from None
    except NotFound:
        raise No("Target mailbox does not exist", "TRYCREATE") from None
    if not mapping:
        raise No("Messages were expunged", "EXPUNGEISSUED")
    dst = await s.store.get_mailbox_by_id(dst_id)
    uidvalidity = dst.uidvalidity if dst is not None else 0
    code = (
        f"COPYUID {uidvalidity} {ordered_set_string([a for a, _ in mapping])} "
        f"{ordered_set_string([b for _, b in mapping])}"
    )
    if not is_move:
        return Ok("COPY completed", code)
    # RFC 6851 4.3: COPYUID goes in an untagged OK before the expunges.
    s.untagged_status("OK", "Moved", code)
    send_expunged(s, view.remove_expunged(a for a, _ in mapping))
    if len(mapping) != len(live):
        raise No("Some messages were expunged", "EXPUNGEISSUED")
    return None
