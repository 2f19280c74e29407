"""The webmail's pages and endpoints on the shared web foundation (`web.ui.pages`).

Thin on purpose: each endpoint checks that the mailbox is the signed-in account's (every URL
names a mailbox id, and another account's id is a 404, never a peek), calls the sans-I/O and
store-level functions of this package, and renders a template. Mail content reaches the page
only through `sanitize.sanitize_html` in the sandboxed frame, or as escaped text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Route

from mailwright.imapd.fetch import load_message
from mailwright.mime.model import MessageInfo
from mailwright.smtpd.listener import services_for
from mailwright.smtpd.session import Services
from mailwright.store.api import (
    AccessDenied,
    Account,
    FlagOp,
    Mailbox,
    MessageRecord,
    NotFound,
    StoreError,
)
from mailwright.web.ui.pages import context, render, user_page

from . import contacts, live, mailbox, sanitize
from .compose import ComposeError, Draft, Upload, forward_draft, guess_type, reply_draft
from .message import (
    MessageView,
    NoSuchPart,
    content_type,
    filename,
    message_view,
    part_as_text,
    part_bytes,
)
from .submit import SendRefused, identities, save_draft, special_mailbox, submit

if TYPE_CHECKING:
    from mailwright.web.roles import WebContext

log = logging.getLogger("mailwright.web.webmail")

MAX_UPLOAD = 25 * 1024 * 1024  # all files of one compose request together
# Images a browser may show inline in the message frame; anything else (SVG above all,
# which can carry script) is only ever downloaded.
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


# --- helpers ---------------------------------------------------------------------------------


def _ctx(request: Request) -> WebContext:
    return context(request)


def _services(request: Request) -> Services:
    """The submission session's services, built once per application."""
    state = request.app.state
    services: Services | None = getattr(state, "webmail_services", None)
    if services is None:
        services = state.webmail_services = services_for(state.ctx)
    return services


async def _mailbox(request: Request, account: Account, mailbox_id: int) -> Mailbox:
    store = _ctx(request).store
    box = await store.get_mailbox_by_id(mailbox_id)
    if box is None:
        raise HTTPException(404)
    if box.account_id != account.id:
        # another account's folder: only one shared with the user for reading (RFC 4314 r);
        # what they may change there, the store decides
        try:
            rights = await store.acl_rights(account.id, box.id)
        except NotFound:
            raise HTTPException(404) from None
        if "r" not in rights:
            raise HTTPException(404)
    return box


async def _record(request: Request, box: Mailbox, uid: int) -> MessageRecord:
    records = await _ctx(request).store.get_messages(box.id, [uid])
    if not records:
        raise HTTPException(404)
    return records[0]


async def _load(request: Request, rec: MessageRecord) -> tuple[MessageInfo, bytes]:
    info, raw = await load_message(_ctx(request).store, rec, True, True)
    assert info is not None and raw is not None
    return info, raw


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def _ref(value: str | None) -> tuple[int, int] | None:
    """"mailbox:uid" as sent back by our own forms."""
    if not value or ":" not in value:
        return None
    a, _, b = value.partition(":")
    if not (a.isdigit() and b.isdigit()):
        return None
    return int(a), int(b)


async def _folders(request: Request, account: Account) -> list[mailbox.Folder]:
    return await mailbox.folders(_ctx(request).store, account.id)


async def _page(request: Request, template: str, account: Account, **values: Any) -> Response:
    values.setdefault("folders", await _folders(request, account))
    return await render(request, f"webmail/{template}", **values)


# --- the listing -----------------------------------------------------------------------------


@user_page
async def home(request: Request, account: Account) -> Response:
    box = await _ctx(request).store.get_mailbox(account.id, "INBOX")
    if box is None:
        raise HTTPException(404)
    return await _listing(request, account, box)


@user_page
async def folder(request: Request, account: Account) -> Response:
    box = await _mailbox(request, account, request.path_params["mailbox"])
    return await _listing(request, account, box)


async def _listing(request: Request, account: Account, box: Mailbox) -> Response:
    q = request.query_params.get("q", "")[:500]
    threaded = request.query_params.get("threads") == "1"
    error = ""
    try:
        page = await mailbox.list_page(_ctx(request).store, box, query=q,
                                       page=_int(request.query_params.get("page"), 1),
                                       threaded=threaded)
    except mailbox.QueryError as exc:
        error = str(exc)
        page = mailbox.Page([], 1, 1, 0)
    folders = await _folders(request, account)
    current = next(f for f in folders if f.id == box.id)

    def link(**changes: Any) -> str:
        params = {"q": q, "threads": "1" if threaded else "", "page": str(page.number)}
        params.update({k: str(v) for k, v in changes.items()})
        return f"/webmail/f/{box.id}?" + urlencode({k: v for k, v in params.items() if v})

    return await render(
        request, "webmail/list.html", title=current.label, folders=folders, box=box,
        current=current, page=page, q=q, threaded=threaded, error=error, link=link,
        notice=_notice(request.query_params.get("notice", "")),
        targets=[f for f in folders if f.id != box.id],
    )


@user_page
async def action(request: Request, account: Account) -> Response:
    box = await _mailbox(request, account, request.path_params["mailbox"])
    data = await request.form()
    uids = [int(v) for v in data.getlist("uid") if isinstance(v, str) and v.isdigit()]
    what = str(data.get("action", ""))
    back = str(data.get("back", "")) or f"/webmail/f/{box.id}"
    if not back.startswith("/webmail/"):
        back = f"/webmail/f/{box.id}"
    target: str | None = str(data.get("target", "")) or None
    if what.startswith("move:"):
        what, target = "move", what[5:]
    if what not in mailbox.ACTIONS:
        raise HTTPException(400, "unknown action")
    if what == "move" and not target:
        return RedirectResponse(back, 303)  # no folder chosen: nothing to do
    try:
        done = await mailbox.apply_action(_ctx(request).store, account.id, box, uids, what,
                                          target)
    except LookupError as exc:
        raise HTTPException(400, str(exc)) from None
    except AccessDenied as exc:
        raise HTTPException(403, f"you lack the right(s) {exc.needed} on this folder") from None
    notice = f"{done} message{'s' if done != 1 else ''}: {_DONE.get(what, what)}"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}notice={quote(notice)}", 303)


# Only our own notices are shown: a link cannot make the page say something else.
_NOTICE = re.compile(r"(\d+ messages?: [a-zA-Z ]+|Message sent)")


def _notice(text: str) -> str:
    return text if _NOTICE.fullmatch(text[:100]) else ""


_DONE = {"read": "marked read", "unread": "marked unread", "flag": "flagged",
         "unflag": "unflagged", "move": "moved", "delete": "deleted", "junk": "moved to Junk",
         "archive": "archived"}


# --- reading ---------------------------------------------------------------------------------


@user_page
async def read(request: Request, account: Account) -> Response:
    store = _ctx(request).store
    box = await _mailbox(request, account, request.path_params["mailbox"])
    rec = await _record(request, box, request.path_params["uid"])
    info, raw = await _load(request, rec)
    view = message_view(info, raw)
    if "\\Seen" not in rec.flags:
        try:
            await store.store_flags_as(account.id, box.id, [rec.uid], FlagOp.ADD, ("\\Seen",))
        except AccessDenied:
            pass  # a shared folder without s: reading leaves \\Seen as it was (RFC 4314 4)
    remote = request.query_params.get("remote") == "1"
    as_text = request.query_params.get("view") == "text" or view.html_section is None
    blocked = 0
    if view.html_section is not None and not remote:
        html = part_as_text(info, raw, view.html_section)
        blocked = sanitize.sanitize_html(html).blocked
    thread = await mailbox.thread_of(store, box, rec.uid)
    siblings = await store.get_messages(box.id, thread) if len(thread) > 1 else []
    folders = await _folders(request, account)
    return await render(
        request, "webmail/read.html", title=view.subject or "(no subject)", folders=folders,
        box=box, rec=rec, view=view, remote=remote, as_text=as_text, blocked=blocked,
        current=next(f for f in folders if f.id == box.id),
        thread=[await _summary(request, r) for r in siblings],
        targets=[f for f in folders if f.id != box.id],
        base=f"/webmail/m/{box.id}/{rec.uid}",
    )


async def _summary(request: Request, rec: MessageRecord) -> tuple[int, str, str]:
    info, raw = await _load(request, rec)
    view = message_view(info, raw)
    who = view.from_[0].name or view.from_[0].address if view.from_ else ""
    when = view.date.strftime("%d %b %Y %H:%M") if view.date else ""
    return rec.uid, who, when


@user_page
async def frame(request: Request, account: Account) -> Response:
    """The HTML body, sanitised, for the sandboxed frame (its own strict CSP)."""
    box = await _mailbox(request, account, request.path_params["mailbox"])
    rec = await _record(request, box, request.path_params["uid"])
    info, raw = await _load(request, rec)
    view = message_view(info, raw)
    remote = request.query_params.get("remote") == "1"
    if view.html_section is None:
        raise HTTPException(404)
    base = f"/webmail/m/{box.id}/{rec.uid}/part/"
    cids = view.cids
    types = {a.section: a.content_type for a in view.attachments}

    def cid_url(cid: str) -> str | None:
        section = cids.get(cid)
        if section is None or types.get(section) not in INLINE_IMAGES:
            return None
        return f"{base}{section}?inline=1"

    clean = sanitize.sanitize_html(part_as_text(info, raw, view.html_section),
                                   cid_url=cid_url, allow_remote=remote)
    return Response(sanitize.frame_document(clean), media_type="text/html", headers={
        "Content-Security-Policy": sanitize.frame_csp(remote),
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "private, no-store",
    })


@user_page
async def download(request: Request, account: Account) -> Response:
    box = await _mailbox(request, account, request.path_params["mailbox"])
    rec = await _record(request, box, request.path_params["uid"])
    info, raw = await _load(request, rec)
    section = request.path_params["section"]
    try:
        data, part = part_bytes(info, raw, section)
    except NoSuchPart:
        raise HTTPException(404) from None
    ctype = content_type(part)
    name = filename(part, section)
    inline = request.query_params.get("inline") == "1" and ctype in INLINE_IMAGES
    disposition = "inline" if inline else "attachment"
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return Response(data, headers={
        "Content-Type": ctype if inline else _download_type(ctype),
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=600",
    })


def _download_type(ctype: str) -> str:
    # A download keeps its type (so the browser names it well) except types a browser would
    # render as a document of our origin if someone navigated to it anyway.
    if ctype.startswith("text/") or "html" in ctype or "xml" in ctype or "svg" in ctype:
        return "application/octet-stream"
    return ctype


# --- composing -------------------------------------------------------------------------------


async def _identities(request: Request, account: Account) -> list[str]:
    ctx = _ctx(request)
    return await identities(ctx.store, ctx.directory, account)


@user_page
async def compose(request: Request, account: Account) -> Response:
    ids = await _identities(request, account)
    params = request.query_params
    draft = Draft(from_addr=ids[0], to=params.get("to", "")[:2000])
    sources: list[tuple[str, str, str]] = []  # (key, filename, type) of carried attachments
    reply_ref = ""
    draft_ref = ""
    for kind in ("reply", "all", "forward", "draft"):
        ref = _ref(params.get(kind))
        if ref is None:
            continue
        box = await _mailbox(request, account, ref[0])
        rec = await _record(request, box, ref[1])
        info, raw = await _load(request, rec)
        view = message_view(info, raw)
        own = {a.lower() for a in ids}
        if kind in ("reply", "all"):
            draft = reply_draft(view, own=own, identity=ids[0], reply_all=kind == "all")
            reply_ref = f"{box.id}:{rec.uid}"
        elif kind == "forward":
            draft = forward_draft(view, identity=ids[0])
            sources = [(f"{box.id}:{rec.uid}:{a.section}", a.filename, a.content_type)
                       for a in view.attachments]
        else:
            draft = _draft_from(view, ids[0])
            draft_ref = f"{box.id}:{rec.uid}"
            sources = [(f"{box.id}:{rec.uid}:{a.section}", a.filename, a.content_type)
                       for a in view.attachments]
        break
    return await _compose_page(request, account, draft, ids, sources=sources,
                               reply_ref=reply_ref, draft_ref=draft_ref)


def _draft_from(view: MessageView, identity: str) -> Draft:
    """A saved draft opened again."""
    return Draft(
        from_addr=view.from_[0].address if view.from_ else identity,
        to=", ".join(str(p) for p in view.to), cc=", ".join(str(p) for p in view.cc),
        bcc=", ".join(str(p) for p in view.bcc), subject=view.subject,
        body=(view.text or "").replace("\r\n", "\n").removesuffix("\n"),
        in_reply_to=view.in_reply_to, references=view.references,
    )


async def _compose_page(request: Request, account: Account, draft: Draft, ids: list[str], *,
                        sources: list[tuple[str, str, str]], reply_ref: str = "",
                        draft_ref: str = "", error: str = "", notice: str = "",
                        status: int = 200) -> Response:
    if draft.from_addr not in ids:
        ids = [draft.from_addr, *ids] if draft.from_addr else ids
    return await render(
        request, "webmail/compose.html", status=status, title="New message",
        folders=await _folders(request, account), draft=draft, identities=ids,
        sources=sources, reply_ref=reply_ref, draft_ref=draft_ref, error=error,
        notice=notice,
    )


async def _carried(request: Request, account: Account, keys: list[str]) -> list[Upload]:
    """Attachments kept from the draft or the forwarded message ("mailbox:uid:section")."""
    out: list[Upload] = []
    loaded: dict[tuple[int, int], tuple[MessageInfo, bytes]] = {}
    for key in keys[:100]:
        parts = key.split(":")
        if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        ref = (int(parts[0]), int(parts[1]))
        if ref not in loaded:
            box = await _mailbox(request, account, ref[0])  # another account's: 404
            records = await _ctx(request).store.get_messages(box.id, [ref[1]])
            if not records:  # a draft replaced meanwhile (another tab): its parts are gone
                continue
            loaded[ref] = await _load(request, records[0])
        info, raw = loaded[ref]
        try:
            data, part = part_bytes(info, raw, parts[2])
        except NoSuchPart:
            continue
        out.append(Upload(filename(part, parts[2]), content_type(part), data))
    return out


@user_page
async def compose_post(request: Request, account: Account) -> Response:
    ctx = _ctx(request)
    ids = await _identities(request, account)
    async with request.form(max_files=50, max_fields=200) as data:
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
        keep = [v for v in data.getlist("keep") if isinstance(v, str)]
        uploads: list[Upload] = []
        total = 0
        for item in data.getlist("files"):
            if not isinstance(item, UploadFile) or not item.filename:
                continue
            content = await item.read(MAX_UPLOAD + 1 - total)
            total += len(content)
            if total > MAX_UPLOAD:
                return await _compose_page(
                    request, account, _form_draft(fields, ids), ids, sources=[],
                    error=f"Attachments may be {MAX_UPLOAD // (1024 * 1024)} MB together",
                    status=413)
            uploads.append(Upload(item.filename.replace("\\", "/").rsplit("/", 1)[-1][:200],
                                  item.content_type or guess_type(item.filename), content))
    what = fields.get("action", "save")
    draft = _form_draft(fields, ids)
    carried = await _carried(request, account, keep)
    draft = replace(draft, attachments=(*carried, *uploads))
    reply_ref = fields.get("reply_ref", "")
    old = _ref(fields.get("draft_ref"))
    drafts = await special_mailbox(ctx.store, account.id, "\\Drafts")
    replaces = [old[1]] if old is not None and drafts is not None and old[0] == drafts.id \
        else []
    if what == "send":
        try:
            await submit(_services(request), account, draft,
                         peer_ip=request.client.host if request.client else "",
                         max_message_size=ctx.config.limits.max_message_size)
        except (ComposeError, SendRefused) as exc:
            error = str(exc)
        else:
            if replaces and drafts is not None:
                await ctx.store.expunge(drafts.id, replaces)
            answered = _ref(reply_ref)
            if answered is not None:
                box = await ctx.store.get_mailbox_by_id(answered[0])
                if box is not None and box.account_id == account.id:
                    await ctx.store.store_flags(box.id, [answered[1]], FlagOp.ADD,
                                                ("\\Answered",))
            inbox = await ctx.store.get_mailbox(account.id, "INBOX")
            target = f"/webmail/f/{inbox.id}" if inbox else "/webmail/"
            return RedirectResponse(f"{target}?notice={quote('Message sent')}", 303)
    else:
        error = ""
    # Save (asked for, autosave, or a send that failed: nothing typed or uploaded is lost).
    try:
        record = await save_draft(ctx.store, account, draft, hostname=ctx.hostname,
                                  replaces=replaces)
    except (ComposeError, ValueError) as exc:
        return await _compose_page(request, account, draft, ids, sources=[],
                                   reply_ref=reply_ref, error=error or str(exc), status=400)
    except StoreError as exc:
        log.warning("draft not saved: %s", exc)
        return await _compose_page(request, account, draft, ids, sources=[],
                                   reply_ref=reply_ref, error="The draft could not be saved",
                                   status=503)
    box_id = record.mailbox_id
    info, raw = await _load(request, record)
    saved = message_view(info, raw)
    sources = [(f"{box_id}:{record.uid}:{a.section}", a.filename, a.content_type)
               for a in saved.attachments]
    if what == "autosave":
        # the kept attachments now live in the new draft, in the same order
        return JSONResponse({"draft_ref": f"{box_id}:{record.uid}",
                             "keep": [key for key, _, _ in sources]})
    return await _compose_page(
        request, account, replace(draft, attachments=()), ids, sources=sources,
        reply_ref=reply_ref, draft_ref=f"{box_id}:{record.uid}", error=error,
        notice="" if error else "Draft saved", status=400 if error else 200)


def _form_draft(fields: dict[str, str], ids: list[str]) -> Draft:
    sender = fields.get("from", "")
    refs = tuple(r for r in fields.get("references", "").split() if r.startswith("<"))[:50]
    return Draft(
        from_addr=sender if sender in ids else ids[0],
        to=fields.get("to", "")[:4000], cc=fields.get("cc", "")[:4000],
        bcc=fields.get("bcc", "")[:4000], subject=fields.get("subject", "")[:1000],
        body=fields.get("body", "")[:2_000_000],
        in_reply_to=fields.get("in_reply_to", "")[:1000], references=refs,
    )


@user_page
async def complete(request: Request, account: Account) -> Response:
    found = await contacts.complete(_ctx(request).store, account.id,
                                    request.query_params.get("q", "")[:100])
    return JSONResponse([{"name": p.name, "address": p.address, "text": str(p)}
                         for p in found])


@user_page
async def events(request: Request, account: Account) -> Response:
    """Server-Sent Events: a mailbox of the account changed (new mail, flags, expunges)."""
    stream = live.change_events(_ctx(request).store, account.id)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@user_page
async def counts(request: Request, account: Account) -> Response:
    """Each mailbox's counts, for the live update of the folder list."""
    return JSONResponse({str(f.id): {"unseen": f.unseen, "messages": f.messages}
                         for f in await _folders(request, account)})


routes: list[BaseRoute] = [
    Route("/", home),
    Route("/f/{mailbox:int}", folder),
    Route("/f/{mailbox:int}/action", action, methods=["POST"]),
    Route("/m/{mailbox:int}/{uid:int}", read),
    Route("/m/{mailbox:int}/{uid:int}/html", frame),
    Route("/m/{mailbox:int}/{uid:int}/part/{section}", download),
    Route("/compose", compose),
    Route("/compose", compose_post, methods=["POST"]),
    Route("/complete", complete),
    Route("/events", events),
    Route("/counts", counts),
]
