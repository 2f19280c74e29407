"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 4): searches that stay up to date.

A SEARCH or SORT with the UPDATE return option leaves an :class:`UpdateContext` in the
session.  At each point where the session may tell the client of expunges (RFC 9051 7.5.1; the
same points, so a REMOVEFROM never refers to a message the client still counts), the session
evaluates every context again and sends what changed: ``ADDTO``/``REMOVEFROM`` for the ALL
result, fresh ``MIN``/``MAX``/``COUNT`` values when those were asked for (4.3).  Results are
UIDs: an UPDATE without the UID prefix, or with PARTIAL, is refused with ``NOUPDATE`` (4.1
lets the server decline), as is one context more than :data:`MAX_CONTEXTS`.  CANCELUPDATE and
leaving the mailbox end them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailwright.imapd.session import No, Ok, Session, handles
from mailwright.imapd.util import ordered_set_string, uid_set_string
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R

#: searches a session keeps up to date at once
MAX_CONTEXTS = 8


@dataclass(slots=True)
class UpdateContext:
    """One search kept up to date: the command and the result the client knows."""

    command: ast.Search | ast.Sort
    result: list[int]
    modseq: int
    exists: int
    extras: dict[str, int] = field(default_factory=dict)


def start(s: Session, cmd: ast.Search | ast.Sort, result: list[int]) -> Ok | None:
    """Keep *cmd* up to date (its initial answer has been sent)."""
    view = s.view
    assert view is not None
    if not cmd.uid or cmd.partial is not None or (
        cmd.tag not in s.contexts and len(s.contexts) >= MAX_CONTEXTS
    ):
        # RFC 5267 4.1: the search was answered; its updates are declined
        return Ok("Search completed; no updates", "NOUPDATE " + R.quoted(cmd.tag).decode())
    ctx = UpdateContext(cmd, list(result), view.modseq, view.exists)
    ctx.extras = _extras(cmd, result)
    s.contexts[cmd.tag] = ctx
    return None


def _extras(cmd: ast.Search | ast.Sort, result: list[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    returns = cmd.returns or ()
    if result and "MIN" in returns:
        out["MIN"] = result[0] if isinstance(cmd, ast.Sort) else min(result)
    if result and "MAX" in returns:
        out["MAX"] = result[-1] if isinstance(cmd, ast.Sort) else max(result)
    if "COUNT" in returns:
        out["COUNT"] = len(result)
    return out


def _wants_all(cmd: ast.Search | ast.Sort) -> bool:
    opts = set(cmd.returns or ()) - {"CONTEXT", "UPDATE", "SAVE"}
    return not opts or "ALL" in opts


async def refresh(s: Session) -> None:
    """Evaluate every context whose mailbox changed since; send ADDTO/REMOVEFROM (4.3)."""
    from mailwright.imapd.dispatch import may_read, updated_result

    view = s.view
    if view is None:
        s.contexts.clear()
        return
    if s.contexts and not await may_read(s):
        # RFC 4314 4: the share was revoked; RFC 5267 NOUPDATE: no more updates of these
        for tag in list(s.contexts):
            s.untagged(b"NO [NOUPDATE " + R.quoted(tag) + b"] No right to read this mailbox")
        s.contexts.clear()
        return
    for tag, ctx in list(s.contexts.items()):
        if ctx.modseq == view.modseq and ctx.exists == view.exists:
            continue
        ctx.modseq, ctx.exists = view.modseq, view.exists
        new = await updated_result(s, ctx.command)
        head = b"ESEARCH (TAG " + R.quoted(tag) + b") UID"
        if _wants_all(ctx.command):
            gone = set(ctx.result) - set(new)
            if gone:
                # position 0: the client finds them by UID
                s.untagged(head + b" REMOVEFROM (0 " + uid_set_string(gone).encode() + b")")
            kept = [u for u in ctx.result if u not in gone]
            added = [u for u in new if u not in set(kept)]
            if added:
                if isinstance(ctx.command, ast.Sort):
                    # the position of each in the new sort order (RFC 5267 4.3)
                    where = {u: i + 1 for i, u in enumerate(new)}
                    pairs = b" ".join(b"%d %d" % (where[u], u) for u in sorted(added, key=lambda u: where[u]))
                    s.untagged(head + b" ADDTO (" + pairs + b")")
                else:
                    s.untagged(head + b" ADDTO (0 " + ordered_set_string(sorted(added)).encode()
                               + b")")
        extras = _extras(ctx.command, new)
        if extras != ctx.extras:
            s.untagged(head + b"".join(b" %s %d" % (k.encode(), v) for k, v in extras.items()))
        ctx.extras = extras
        ctx.result = new


@handles(ast.CancelUpdate)
async def cancelupdate(s: Session, cmd: ast.CancelUpdate) -> Ok | None:
    unknown = [t for t in cmd.tags if t not in s.contexts]
    if unknown:
        raise No(f"No search with tag {unknown[0]} is being updated")
    for t in cmd.tags:
        s.contexts.pop(t, None)
    return None
