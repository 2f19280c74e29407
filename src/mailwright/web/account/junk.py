"""Junk training: recent mail of Inbox and Junk with the spam filter's verdict, and buttons that
correct it.

There is one way the classifier learns from users, the trainer reading the store's change log
(`spam.trainer`); this page does what a mail app does over IMAP and lets that path learn: it
sets the `$Junk` or `$NotJunk` keyword (as Thunderbird and Apple Mail do) and moves the message
with `store.move`, the operation behind IMAP MOVE. It then runs the trainer's pass over the
account at once rather than waiting for the next round, so the counts shown are current.

The verdict shown is the one the server wrote into the message at delivery: the
`X-Spam-Status` and `X-Spam-Report` fields (`spam.report`), which the filter strips from
incoming mail first, so they are always our own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from starlette.requests import Request
from starlette.responses import Response

from mailwright.store.api import Account, FlagOp, Mailbox, StoreError
from mailwright.web.roles import JunkStore
from mailwright.web.ui.pages import context, form, render, user_page
from mailwright.web.webmail.mailbox import Row, apply_action, list_page

RECENT = 20  # messages listed per mailbox
MAX_HEADER = 64 * 1024  # octets of a message's header read for its verdict
_STATUS = re.compile(r"^(yes|no)\b.*?score=(-?[0-9.]+)(?:.*?required=(-?[0-9.]+))?",
                     re.IGNORECASE | re.DOTALL)
_TEST = re.compile(r"([A-Z0-9_]+)\(([+-]?[0-9.]+)\)")


@dataclass(frozen=True, slots=True)
class Verdict:
    spam: bool
    score: float
    required: float | None
    tests: tuple[tuple[str, float], ...]  # (name, points)
    report: tuple[str, ...]  # X-Spam-Report lines: one sentence per reason


@dataclass(frozen=True, slots=True)
class Item:
    row: Row
    verdict: Verdict | None  # None: delivered without a verdict (spam filter off, or older)


def verdict_of(header: bytes) -> Verdict | None:
    """The X-Spam-Status (and X-Spam-Report) of a message header, or None without one."""
    msg = BytesHeaderParser(policy=compat32).parsebytes(header[:MAX_HEADER])
    status = msg.get("X-Spam-Status")
    if status is None:
        return None
    text = " ".join(str(status).split())
    m = _STATUS.match(text)
    if m is None:
        return None
    tests = tuple((name, float(points)) for name, points in _TEST.findall(text))
    report_raw = msg.get("X-Spam-Report")
    report: tuple[str, ...] = ()
    if report_raw is not None:
        # the fields are folded one reason a line (spam.report.spam_fields)
        lines = [" ".join(line.split()) for line in str(report_raw).splitlines()]
        report = tuple(line for line in lines[1:] if line)
    try:
        return Verdict(m.group(1).lower() == "yes", float(m.group(2)),
                       float(m.group(3)) if m.group(3) else None, tests, report)
    except ValueError:
        return None


async def _items(store: JunkStore, box: Mailbox) -> list[Item]:
    page = await list_page(store, box, size=RECENT)
    blobs = {r.uid: r.blob_id for r in await store.get_messages(box.id, [r.uid for r in page.rows])}
    items = []
    for row in page.rows:
        verdict = None
        blob = blobs.get(row.uid)
        if blob is not None:
            try:
                raw = await store.read_blob(blob)
            except StoreError:
                raw = b""
            end = raw.find(b"\r\n\r\n", 0, MAX_HEADER)
            verdict = verdict_of(raw[: end + 4 if end >= 0 else MAX_HEADER])
            del raw
        items.append(Item(row, verdict))
    return items


def _boxes(mailboxes: list[Mailbox]) -> tuple[Mailbox | None, Mailbox | None]:
    inbox = next((b for b in mailboxes if b.name.upper() == "INBOX"), None)
    junk = next((b for b in mailboxes if (b.special_use or "").lower() == "\\junk"), None)
    return inbox, junk


async def _train(request: Request, account: Account) -> None:
    """The trainer's pass over this account now (the same pass its background loop runs)."""
    from mailwright.spam.trainer import Trainer

    ctx = context(request)
    spam = ctx.spam
    if spam is not None and spam.settings.learn:
        await Trainer(ctx.store, spam.classifier, ctx.hostname).sync_account(account)


@user_page
async def junk(request: Request, account: Account) -> Response:
    ctx = context(request)
    store = ctx.store
    inbox, junk_box = _boxes(await store.list_mailboxes(account.id))
    error = notice = None
    if request.method == "POST":
        fields = await form(request)
        action = fields.get("action", "")
        source = inbox if fields.get("mailbox") == "inbox" else junk_box
        try:
            uid = int(fields.get("uid", ""))
        except ValueError:
            uid = 0
        if source is None or inbox is None or junk_box is None or uid <= 0 or action not in (
                "junk", "notjunk"):
            error = "That message cannot be moved from here."
        elif not await store.get_messages(source.id, [uid]):
            error = "That message is no longer there."
        else:
            # the keywords mail apps set (RFC 5788 registry: $Junk, $NotJunk), then a move
            add, remove = ("$Junk", "$NotJunk") if action == "junk" else ("$NotJunk", "$Junk")
            await store.store_flags(source.id, [uid], FlagOp.REMOVE, (remove,))
            await store.store_flags(source.id, [uid], FlagOp.ADD, (add,))
            moved = await apply_action(store, account.id, source, [uid], "move",
                                       (junk_box if action == "junk" else inbox).name)
            await _train(request, account)
            learned = " and learned" if ctx.spam is not None and ctx.spam.settings.learn else ""
            where = junk_box.name if action == "junk" else "the Inbox"
            notice = f"Moved to {where}{learned}." if moved else "Nothing to move."
    totals = await store.spam_totals([0, account.id])
    learn = ctx.spam is not None and ctx.spam.settings.learn
    return await render(
        request, "account/junk.html", title="Junk training", section="junk.html",
        inbox=await _items(store, inbox) if inbox else [],
        junk=await _items(store, junk_box) if junk_box else [],
        junk_name=junk_box.name if junk_box else None,
        own=totals.get(account.id, (0, 0)), server=totals.get(0, (0, 0)),
        filtering=ctx.spam is not None, learning=learn, error=error, notice=notice,
        status=400 if error else 200)
