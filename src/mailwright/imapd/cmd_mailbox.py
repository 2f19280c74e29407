"""Authenticated-state commands on mailboxes: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
LIST/LSUB (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE), NAMESPACE,
STATUS, APPEND (RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT), GETQUOTA,
GETQUOTAROOT (RFC 9208)."""

from __future__ import annotations

from datetime import UTC, datetime

from mailwright.imapd import names
from mailwright.imapd.session import No, Ok, Session, handles
from mailwright.imapd.util import uid_set_string
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.errors import ProtocolError
from mailwright.store.api import (
    SPECIAL_USES,
    SYSTEM_FLAGS,
    AlreadyExists,
    InvalidOperation,
    Mailbox,
    MessageRecord,
    NotFound,
    QuotaExceeded,
    StorageFull,
)


async def _mailbox(s: Session, raw: str) -> Mailbox:
    name = s.name_in(raw)
    mb = await s.store.get_mailbox(s.account_id, name)
    if mb is None:
        raise No(f"Mailbox does not exist: {raw}", "NONEXISTENT")
    return mb


@handles(ast.Create)
async def create(s: Session, cmd: ast.Create) -> Ok | None:
    name = s.name_in(cmd.mailbox)
    if name == "INBOX":
        raise No("INBOX always exists", "ALREADYEXISTS")
    use: str | None = None
    if cmd.special_use:
        if len(cmd.special_use) > 1:
            raise No("Only one special-use attribute per mailbox", "USEATTR")
        wanted = cmd.special_use[0].lower()
        use = next((u for u in SPECIAL_USES if u.lower() == wanted), None)
        if use is None:
            raise No(f"Unsupported special-use attribute {cmd.special_use[0]}", "USEATTR")
    existing = {m.name for m in await s.store.list_mailboxes(s.account_id)}
    if name in existing:
        raise No("Mailbox already exists", "ALREADYEXISTS")
    # RFC 9051 6.3.4: create the superior hierarchical names that do not exist yet.
    for parent in names.parents(name):
        if parent not in existing:
            try:
                await s.store.create_mailbox(s.account_id, parent)
            except AlreadyExists:
                pass
    try:
        await s.store.create_mailbox(s.account_id, name, use)
    except AlreadyExists:
        raise No("Mailbox already exists", "ALREADYEXISTS") from None
    return None


@handles(ast.Delete)
async def delete(s: Session, cmd: ast.Delete) -> Ok | None:
    mb = await _mailbox(s, cmd.mailbox)
    if mb.name == "INBOX":
        raise No("INBOX cannot be deleted", "CANNOT")
    prefix = mb.name + names.DELIMITER
    if any(m.name.startswith(prefix) for m in await s.store.list_mailboxes(s.account_id)):
        # Dovecot does the same: no \Noselect holes in the hierarchy.
        raise No("Mailbox has children; delete them first", "HASCHILDREN")
    if s.view is not None and s.view.mailbox.id == mb.id:
        raise No("Mailbox is selected; close it first", "INUSE")
    try:
        await s.store.delete_mailbox(mb.id)
    except NotFound:
        raise No("Mailbox does not exist", "NONEXISTENT") from None
    except InvalidOperation as exc:
        raise No(str(exc), "CANNOT") from None
    return None


@handles(ast.Rename)
async def rename(s: Session, cmd: ast.Rename) -> Ok | None:
    old = s.name_in(cmd.old)
    new = s.name_in(cmd.new)
    if new == "INBOX":
        raise No("Cannot rename to INBOX", "ALREADYEXISTS")
    existing = {m.name for m in await s.store.list_mailboxes(s.account_id)}
    if old not in existing:
        raise No("Mailbox does not exist", "NONEXISTENT")
    if new in existing:
        raise No("Target mailbox already exists", "ALREADYEXISTS")
    if new.startswith(old + names.DELIMITER) and old != "INBOX":
        raise No("Cannot rename a mailbox into itself", "CANNOT")
    for parent in names.parents(new):
        if parent not in existing and not parent.startswith(old + names.DELIMITER):
            try:
                await s.store.create_mailbox(s.account_id, parent)
            except AlreadyExists:
                pass
    try:
        await s.store.rename_mailbox(s.account_id, old, new)
    except NotFound:
        raise No("Mailbox does not exist", "NONEXISTENT") from None
    except AlreadyExists:
        raise No("Target mailbox already exists", "ALREADYEXISTS") from None
    except InvalidOperation as exc:
        raise No(str(exc), "CANNOT") from None
    return None


@handles(ast.Subscribe)
async def subscribe(s: Session, cmd: ast.Subscribe) -> Ok | None:
    await s.store.set_subscribed(s.account_id, s.name_in(cmd.mailbox), True)
    return None


@handles(ast.Unsubscribe)
async def unsubscribe(s: Session, cmd: ast.Unsubscribe) -> Ok | None:
    await s.store.set_subscribed(s.account_id, s.name_in(cmd.mailbox), False)
    return None


@handles(ast.Namespace)
async def namespace(s: Session, cmd: ast.Namespace) -> Ok | None:
    # RFC 2342 / RFC 9051 6.3.10: one personal namespace, no shared or other users'.
    s.untagged(b'NAMESPACE (("" "/")) NIL NIL')
    return None


# -- LIST ------------------------------------------------------------------------------------


@handles(ast.ListCmd)
async def list_(s: Session, cmd: ast.ListCmd) -> Ok | None:
    word = b"LSUB" if cmd.lsub else b"LIST"
    if not cmd.extended and not cmd.lsub and cmd.patterns == ("",):
        # RFC 9051 6.3.9: an empty pattern asks for the delimiter and the root.
        s.untagged(b'LIST (\\Noselect) "/" ""')
        return None
    mailboxes = {m.name: m for m in await s.store.list_mailboxes(s.account_id)}
    want_subscribed = (
        cmd.lsub or "SUBSCRIBED" in cmd.selection or "SUBSCRIBED" in cmd.returns
    )
    subscribed = set(await s.store.list_subscriptions(s.account_id)) if want_subscribed else set()
    matchers = [
        rx for p in cmd.patterns
        if (rx := names.matcher(cmd.reference, p, utf8=s.utf8 or not p.isascii())) is not None
    ]

    def matches(name: str) -> bool:
        return any(names.matches(rx, name) for rx in matchers)

    children: set[str] = set()
    for n in mailboxes:
        children.update(names.parents(n))

    candidates: list[str]
    if cmd.lsub or "SUBSCRIBED" in cmd.selection:
        candidates = sorted(subscribed)
    else:
        candidates = sorted(mailboxes)
    recursive = "RECURSIVEMATCH" in cmd.selection
    childinfo: set[str] = set()
    if recursive and "SUBSCRIBED" in cmd.selection:
        # RFC 5258 3.5: parents of subscribed names that match get CHILDINFO.
        for n in subscribed:
            for p in names.parents(n):
                if p not in subscribed and matches(p):
                    childinfo.add(p)
        candidates = sorted(set(candidates) | childinfo)
    special_only = "SPECIAL-USE" in cmd.selection
    for name in _inbox_first(candidates):
        if not matches(name):
            continue
        mb = mailboxes.get(name)
        if special_only and (mb is None or mb.special_use is None):
            continue
        if name in childinfo and name not in subscribed:
            if mb is None:
                attrs = ["\\NonExistent"]
            else:
                attrs = []
        else:
            attrs = []
            if mb is None:
                attrs.append("\\NonExistent" if not cmd.lsub else "\\Noselect")
        if not cmd.lsub:
            if mb is not None or "\\NonExistent" not in attrs:
                attrs.append("\\HasChildren" if name in children else "\\HasNoChildren")
            if (want_subscribed or cmd.returns) and name in subscribed:
                attrs.append("\\Subscribed")
            if mb is not None and mb.special_use:
                attrs.append(mb.special_use)
        line = word + b" " + R.flag_list(attrs) + b' "/" ' + s.name_out(name)
        if name in childinfo:
            line += b' ("CHILDINFO" ("SUBSCRIBED"))'
        s.untagged(line)
        if cmd.status_items and mb is not None:
            await _status_line(s, mb, cmd.status_items)
        await s.maybe_flush()
    return None


def _inbox_first(items: list[str]) -> list[str]:
    return sorted(items, key=lambda n: (n != "INBOX", not n.startswith("INBOX/"), n))


# -- STATUS ----------------------------------------------------------------------------------


async def _status_line(s: Session, mb: Mailbox, items: tuple[ast.StatusItem, ...]) -> None:
    st = await s.store.mailbox_status(mb.id)
    values = {
        "MESSAGES": st.messages,
        "UIDNEXT": st.uidnext,
        "UIDVALIDITY": st.uidvalidity,
        "UNSEEN": st.unseen,
        "DELETED": st.deleted,
        "SIZE": st.size,
        "RECENT": 0,
        "HIGHESTMODSEQ": st.highestmodseq,
    }
    if "HIGHESTMODSEQ" in items:
        s.enable_condstore()
    out = []
    for item in items:
        if item == "RECENT" and s.rev2:
            continue
        out.append(item.encode() + b" %d" % values[item])
    s.untagged(b"STATUS " + s.name_out(mb.name) + b" (" + b" ".join(out) + b")")


@handles(ast.Status)
async def status(s: Session, cmd: ast.Status) -> Ok | None:
    mb = await _mailbox(s, cmd.mailbox)
    await _status_line(s, mb, cmd.items)
    return None


# -- APPEND ----------------------------------------------------------------------------------


def check_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """Flags a client may set: system flags other than \\Recent, and keywords."""
    out: list[str] = []
    for f in flags:
        if f.startswith("\\"):
            canon = next((sf for sf in SYSTEM_FLAGS if sf.lower() == f.lower()), None)
            if canon is None:
                if f.lower() == "\\recent":
                    continue  # RFC 3501 2.3.2: \Recent cannot be set by the client
                raise ProtocolError(f"invalid flag {f}")
            f = canon
        if f not in out:
            out.append(f)
    return tuple(out)


@handles(ast.Append)
async def append(s: Session, cmd: ast.Append) -> Ok | None:
    try:
        mb = await _mailbox(s, cmd.mailbox)
    except No:
        # RFC 9051 6.3.12: TRYCREATE tells the client it may CREATE and retry.
        raise No("Mailbox does not exist", "TRYCREATE") from None
    staged = []
    for msg in cmd.messages:
        if not msg.data:
            raise No("Empty message")
        flags = check_flags(msg.flags)
        w = s.store.blob_writer()
        try:
            w.write(msg.data)
            blob = await w.finish()
        except StorageFull:  # the free-space reserve is checked when the blob is staged
            w.abort()
            raise No("Server storage is full", "LIMIT") from None
        except BaseException:
            w.abort()
            raise
        staged.append((blob, flags, msg.internaldate))
    done: list[MessageRecord] = []
    try:
        for blob, flags, when in staged:
            rec = await s.store.append(
                mb.id, blob, flags, when.astimezone(UTC) if when else datetime.now(UTC)
            )
            done.append(rec)
    except (QuotaExceeded, StorageFull) as exc:
        if done:
            # RFC 3502 3: MULTIAPPEND is all or nothing.
            await s.store.expunge(mb.id, [r.uid for r in done])
        if isinstance(exc, QuotaExceeded):
            raise No("Quota exceeded", "OVERQUOTA") from None
        raise No("Server storage is full", "LIMIT") from None
    uids = uid_set_string(r.uid for r in done)
    return Ok("APPEND completed", f"APPENDUID {mb.uidvalidity} {uids}")


# -- QUOTA -----------------------------------------------------------------------------------


async def _quota_line(s: Session) -> bytes:
    assert s.account is not None
    acc = await s.store.get_account(s.account_id) or s.account
    usage = await s.store.usage(s.account_id)
    if not acc.quota_bytes:
        return b'QUOTA "" ()'
    # RFC 9208 5.1: STORAGE in units of 1024 octets.
    used = (usage.bytes + 1023) // 1024
    limit = acc.quota_bytes // 1024
    return b'QUOTA "" (STORAGE %d %d)' % (used, limit)


@handles(ast.GetQuota)
async def getquota(s: Session, cmd: ast.GetQuota) -> Ok | None:
    if cmd.root != "":
        raise No("No such quota root", "NONEXISTENT")
    s.untagged(await _quota_line(s))
    return None


@handles(ast.GetQuotaRoot)
async def getquotaroot(s: Session, cmd: ast.GetQuotaRoot) -> Ok | None:
    mb = await _mailbox(s, cmd.mailbox)
    s.untagged(b"QUOTAROOT " + s.name_out(mb.name) + b' ""')
    s.untagged(await _quota_line(s))
    return None
