"""Authenticated-state commands on mailboxes: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
LIST/LSUB (RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE), NAMESPACE,
STATUS, APPEND (RFC 3502 MULTIAPPEND, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT), GETQUOTA,
GETQUOTAROOT (RFC 9208)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from mailwright.imapd import names, objectid, shared
from mailwright.imapd.session import No, Ok, Session, handles
from mailwright.imapd.urls import ReadBudget
from mailwright.imapd.util import uid_set_string
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.connection import AppendMessageStart
from mailwright.proto.imap.errors import ProtocolError
from mailwright.store.api import (
    ALL_RIGHTS,
    SPECIAL_USES,
    SYSTEM_FLAGS,
    AlreadyExists,
    AppendItem,
    BlobWriter,
    InvalidOperation,
    Mailbox,
    NotFound,
    QuotaExceeded,
    StagedBlob,
    StorageFull,
)


async def _mailbox(s: Session, raw: str, needed: str = "") -> Mailbox:
    """The mailbox a client names, the user's own or shared with them (`shared`), when the
    user holds the rights of `needed` (RFC 4314 4)."""
    return (await shared.open_mailbox(s, raw, needed))[0]


@handles(ast.Create)
async def create(s: Session, cmd: ast.Create) -> Ok | None:
    ref = await shared.locate(s, cmd.mailbox)
    if ref.shared:
        return await _create_shared(s, ref)
    name = ref.name
    if shared.is_other_users(name):
        raise No("That name is the other users' namespace", "CANNOT")
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
        # the new mailbox inherits its parent's ACL (store/core/acl.py)
        mb = await s.store.create_mailbox_as(s.account_id, s.account_id, name, use)
    except AlreadyExists:
        raise No("Mailbox already exists", "ALREADYEXISTS") from None
    # RFC 8474 4.1: MAILBOXID in the tagged OK of every successful CREATE
    return Ok("CREATE completed", f"MAILBOXID ({objectid.mailbox_id(mb)})")


async def _create_shared(s: Session, ref: shared.MailboxRef) -> Ok:
    """CREATE in another account's tree: k on the existing parent (RFC 4314 4)."""
    parent = ref.name.rpartition("/")[0]
    if not parent or await s.store.get_mailbox(ref.owner_id, parent) is None:
        raise No("You may not create mailboxes there", "NOPERM")
    await shared.open_mailbox(s, ref.display.rpartition("/")[0], "k")
    try:
        mb = await s.store.create_mailbox_as(s.account_id, ref.owner_id, ref.name)
    except AlreadyExists:
        raise No("Mailbox already exists", "ALREADYEXISTS") from None
    return Ok("CREATE completed", f"MAILBOXID ({objectid.mailbox_id(mb)})")


@handles(ast.Delete)
async def delete(s: Session, cmd: ast.Delete) -> Ok | None:
    mb = await _mailbox(s, cmd.mailbox, "x")  # RFC 4314 4: x
    if mb.name == "INBOX":
        raise No("INBOX cannot be deleted", "CANNOT")
    prefix = mb.name + names.DELIMITER
    if any(m.name.startswith(prefix) for m in await s.store.list_mailboxes(mb.account_id)):
        # Dovecot does the same: no \Noselect holes in the hierarchy.
        raise No("Mailbox has children; delete them first", "HASCHILDREN")
    if s.view is not None and s.view.mailbox.id == mb.id:
        raise No("Mailbox is selected; close it first", "INUSE")
    try:
        await s.store.delete_mailbox_as(s.account_id, mb.id)
    except NotFound:
        raise No("Mailbox does not exist", "NONEXISTENT") from None
    except InvalidOperation as exc:
        raise No(str(exc), "CANNOT") from None
    return None


@handles(ast.Rename)
async def rename(s: Session, cmd: ast.Rename) -> Ok | None:
    old_ref = await shared.locate(s, cmd.old)
    new_ref = await shared.locate(s, cmd.new)
    if old_ref.shared or new_ref.shared or shared.is_other_users(new_ref.name):
        return await _rename_shared(s, cmd, old_ref, new_ref)
    old = old_ref.name
    new = new_ref.name
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


async def _rename_shared(
    s: Session, cmd: ast.Rename, old: shared.MailboxRef, new: shared.MailboxRef
) -> Ok | None:
    """RENAME within one other account's tree: x on the mailbox, k on the new parent (RFC
    4314 4); a mailbox never moves from one account to another."""
    if old.owner_id != new.owner_id or not new.shared:
        raise No("Mailboxes cannot move between accounts", "CANNOT")
    mb = await _mailbox(s, cmd.old, "x")
    parent = new.display.rpartition("/")[0]
    if new.name.count("/") == 0:
        raise No("You may not create mailboxes there", "NOPERM")
    await _mailbox(s, parent, "k")
    try:
        await s.store.rename_mailbox(mb.account_id, old.name, new.name)
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
    # RFC 2342 / RFC 9051 6.3.10: the personal namespace and the other users' (RFC 4314
    # sharing, imapd/shared.py); no shared one.
    s.untagged(b'NAMESPACE (("" "/")) (("' + shared.PREFIX.encode() + b'" "/")) NIL')
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
    # other users' mailboxes the user may look up (RFC 4314 l), under their shared names,
    # with the levels above them as \Noselect placeholders (RFC 2342 5)
    rights_of: dict[str, str] = {}
    placeholders: set[str] = set()
    for sm in await s.store.shared_mailboxes(s.account_id):
        display = shared.display_name(sm.owner, sm.mailbox.name)
        mailboxes[display] = dataclasses.replace(sm.mailbox, name=display, special_use=None)
        rights_of[display] = sm.rights
    for n in list(mailboxes):
        if shared.is_other_users(n):
            placeholders.update(p for p in names.parents(n) if p not in mailboxes)
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
    for n in list(mailboxes) + list(placeholders):
        children.update(names.parents(n))

    candidates: list[str]
    if cmd.lsub or "SUBSCRIBED" in cmd.selection:
        candidates = sorted(subscribed)
    else:
        candidates = sorted(set(mailboxes) | placeholders)
    recursive = "RECURSIVEMATCH" in cmd.selection
    childinfo: set[str] = set()
    if recursive and "SUBSCRIBED" in cmd.selection:
        # RFC 5258 3.5: parents of subscribed names that match get CHILDINFO.
        for n in subscribed:
            for p in names.parents(n):
                if p not in subscribed and matches(p):
                    childinfo.add(p)
        candidates = sorted(set(candidates) | childinfo)
    lsub_parents: set[str] = set()
    if cmd.lsub:
        # RFC 3501 6.3.9: when "%" stops short of a subscribed name, its unsubscribed
        # parent that matches is returned with \Noselect ("foo" for a subscribed "foo/bar").
        for n in subscribed:
            if matches(n):
                continue
            for p in names.parents(n):
                if p not in subscribed and matches(p):
                    lsub_parents.add(p)
        candidates = sorted(set(candidates) | lsub_parents)
    special_only = "SPECIAL-USE" in cmd.selection
    for name in _inbox_first(candidates):
        if not matches(name):
            continue
        mb = mailboxes.get(name)
        if special_only and (mb is None or mb.special_use is None):
            continue
        if name in placeholders:
            attrs = ["\\Noselect"] if cmd.lsub else ["\\Noselect", "\\HasChildren"]
        elif name in childinfo and name not in subscribed:
            if mb is None:
                attrs = ["\\NonExistent"]
            else:
                attrs = []
        else:
            attrs = []
            if mb is None or name in lsub_parents:
                attrs.append("\\NonExistent" if not cmd.lsub else "\\Noselect")
        if not cmd.lsub:
            if name in placeholders:
                pass
            elif mb is not None or "\\NonExistent" not in attrs:
                attrs.append("\\HasChildren" if name in children else "\\HasNoChildren")
            if (want_subscribed or cmd.returns) and name in subscribed:
                attrs.append("\\Subscribed")
            if mb is not None and mb.special_use:
                attrs.append(mb.special_use)
        line = word + b" " + R.flag_list(attrs) + b' "/" ' + s.name_out(name)
        if name in childinfo:
            line += b' ("CHILDINFO" ("SUBSCRIBED"))'
        s.untagged(line)
        rights = rights_of.get(name, ALL_RIGHTS)
        if "MYRIGHTS" in cmd.returns and mb is not None:
            # RFC 8440 2: the user's rights, right after the mailbox's LIST response
            s.untagged(b"MYRIGHTS " + s.name_out(name) + b" " + rights.encode())
        if cmd.status_items and mb is not None and "r" in rights:
            # RFC 5819 / RFC 4314 4: STATUS needs r
            await _status_line(s, mb, cmd.status_items)
        if cmd.metadata and mb is not None and name not in rights_of:
            from mailwright.imapd.cmd_metadata import list_metadata

            await list_metadata(s, mb.id, mb.name, cmd.metadata)
        await s.maybe_flush()
    return None


def _inbox_first(items: list[str]) -> list[str]:
    return sorted(items, key=lambda n: (n != "INBOX", not n.startswith("INBOX/"), n))


# -- STATUS ----------------------------------------------------------------------------------


async def _status_line(
    s: Session, mb: Mailbox, items: tuple[ast.StatusItem, ...], name: str | None = None
) -> None:
    if mb.account_id == s.account_id:
        st = await s.store.mailbox_status(mb.id)
    else:
        st = await s.store.mailbox_status_as(s.account_id, mb.id)
    recent = 0
    if "RECENT" in items and not s.rev2:
        # RFC 3501 6.3.10: messages not yet claimed as \Recent by any session
        recent = await s.store.count_recent(mb.id)
    values = {
        "MESSAGES": st.messages,
        "UIDNEXT": st.uidnext,
        "UIDVALIDITY": st.uidvalidity,
        "UNSEEN": st.unseen,
        "DELETED": st.deleted,
        "SIZE": st.size,
        "RECENT": recent,
        "HIGHESTMODSEQ": st.highestmodseq,
    }
    if "HIGHESTMODSEQ" in items:
        s.enable_condstore()
    out = []
    for item in items:
        if item == "RECENT" and s.rev2:
            continue
        if item == "MAILBOXID":  # RFC 8474 4.3
            out.append(b"MAILBOXID (" + objectid.mailbox_id(mb).encode() + b")")
            continue
        out.append(item.encode() + b" %d" % values[item])
    s.untagged(b"STATUS " + s.name_out(mb.name if name is None else name) + b" ("
               + b" ".join(out) + b")")


@handles(ast.Status)
async def status(s: Session, cmd: ast.Status) -> Ok | None:
    mb, _, ref = await shared.open_mailbox(s, cmd.mailbox, "r")  # RFC 4314 4: r
    await _status_line(s, mb, cmd.items, ref.display)
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


class AppendUpload:
    """One APPEND command's messages, streamed into blob writers while they arrive, so that
    memory stays at one read buffer whatever the message size.  Nothing reaches a mailbox until
    the command is complete; then every message is stored in one transaction, or none."""

    def __init__(self, s: Session, mailbox: Mailbox | None, raw_name: str) -> None:
        self.store = s.store
        #: None only for a CATENATE refused at its start (it fails when the command ends)
        self.mailbox = mailbox
        self.raw_name = raw_name
        self.staged: list[tuple[StagedBlob, tuple[str, ...], datetime | None, bool]] = []
        self.writer: BlobWriter | None = None
        self.current: tuple[tuple[str, ...], datetime | None, bool] = ((), None, False)
        #: a message could not be staged (storage full, a bad CATENATE URL): the command
        #: fails at its end
        self.failure: No | ProtocolError | None = None
        #: RFC 4469: the current message is a CATENATE, bounded by ``limit`` octets
        #: (RFC 4469 6: NO [TOOBIG]) since no announced size was checked up front
        self.catenate = False
        self.limit = s.config.max_append
        #: RFC 4469: stored octets the command's URL parts may still read (imapd/catenate.py)
        self.budget: ReadBudget | None = None
        self.done = False
        #: REPLACE (RFC 8508): the UID of the selected mailbox's message it replaces, and
        #: whether the client named it by UID
        self.replace: tuple[int, bool] | None = None

    def begin(self, ev: AppendMessageStart, flags: tuple[str, ...]) -> None:
        # RFC 3516 4.4: a literal8 is binary content, stored as sent (no LF -> CRLF)
        self.writer = self.store.blob_writer(exact=ev.binary)
        self.current = (flags, ev.internaldate, ev.binary)
        self.catenate = ev.catenate

    def write(self, data: bytes) -> None:
        if self.writer is not None:
            self.writer.write(data)
            if self.catenate and self.writer.size > self.limit:
                self.fail(No("Message too large", "TOOBIG"))

    async def message_end(self) -> None:
        w, self.writer = self.writer, None
        if w is None:
            return
        if self.catenate and w.size == 0:
            w.abort()
            self.fail(No("Empty message"))
            return
        try:
            blob = await w.finish()
        except StorageFull:  # the free-space reserve is checked when the blob is staged
            w.abort()
            self.fail(No("Server storage is full", "LIMIT"))
            return
        except BaseException:
            w.abort()
            raise
        flags, when, binary = self.current
        self.staged.append((blob, flags, when, binary))

    def fail(self, why: No | ProtocolError) -> None:
        """The command will fail with *why* when it ends; stop writing what still comes."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        if self.failure is None:
            self.failure = why

    def command(self, tag: str) -> ast.Append | ast.Replace:
        """The complete command for execute(); the data stays staged (``s.upload``)."""
        if self.replace is not None:
            uid, by_uid = self.replace
            _, flags, when, binary = self.staged[0] if self.staged else (None, (), None, False)
            return ast.Replace(
                tag, ast.SequenceSet((ast.SeqRange(uid, uid),)), self.raw_name,
                ast.AppendMessage(flags, when, b"", binary), by_uid,
            )
        return ast.Append(tag, self.raw_name, tuple(
            ast.AppendMessage(flags, when, b"", binary) for _, flags, when, binary in self.staged
        ))

    def abort(self) -> None:
        """Drop whatever was staged (no-op once the store took the messages)."""
        if self.done:
            return
        self.done = True
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        for blob, *_ in self.staged:
            self.store.discard_staged(blob)


async def append_message_start(s: Session, ev: AppendMessageStart) -> None:
    """Decide on an APPEND message before its data is sent (RFC 9051 6.3.12: a server may
    answer the literal's continuation request with a tagged NO): a missing mailbox, an empty
    message or a quota that cannot take the messages announced so far (RFC 3502: MULTIAPPEND
    is checked for all of them) are refused before the upload."""
    try:
        flags = check_flags(ev.flags)
        replaced: tuple[int, bool] | None = None
        freed = 0
        if ev.replace is not None:
            replaced, freed = _replaced_message(s, ev.tag, *ev.replace)
        if ev.index == 0:
            try:
                mb = await _mailbox(s, ev.mailbox, "i")  # RFC 4314 4: i
            except No as exc:
                if exc.code == "NOPERM":
                    raise
                # RFC 9051 6.3.12: TRYCREATE tells the client it may CREATE and retry.
                raise No("Mailbox does not exist", "TRYCREATE") from None
            s.abort_upload()
            s.upload = AppendUpload(s, mb, ev.mailbox)
            s.upload.replace = replaced
        upload: AppendUpload = s.upload
        if upload.failure is not None:
            raise upload.failure
        if ev.size == 0 and not ev.catenate:
            raise No("Empty message")
        # a shared mailbox's additions are charged to its owner (docs/imap.md, Sharing)
        owner = upload.mailbox.account_id if upload.mailbox is not None else s.account_id
        acc = await s.store.get_account(owner)
        if acc is not None and acc.quota_bytes:
            usage = await s.store.usage(owner)
            # RFC 8508 3.2: the replaced message's octets are freed by the same operation
            if usage.bytes - freed + ev.total > acc.quota_bytes:
                # RFC 9208 / RFC 5530: OVERQUOTA, before the client uploads anything more
                raise No("Quota exceeded", "OVERQUOTA")
        max_messages = await s.store.message_quota(owner)
        if max_messages and replaced is None:
            usage = await s.store.usage(owner)
            if usage.messages + ev.index + 1 > max_messages:
                # RFC 9208 5.2: the MESSAGE resource, also before the upload
                raise No("Message quota exceeded", "OVERQUOTA")
    except (No, ProtocolError) as exc:
        if ev.catenate:
            # RFC 4469: no literal to refuse; the parts still come and the command fails
            # when it ends (a synchronizing TEXT literal is refused on the way)
            if ev.index == 0 or s.upload is None:
                s.abort_upload()
                s.upload = AppendUpload(s, None, ev.mailbox)
            s.upload.fail(exc)
            return
        s.conn.reject_literal()
        s.abort_upload()
        if isinstance(exc, No):
            s.write(R.tagged(ev.tag, "NO", exc.text, exc.code))
        else:
            s.write(exc.with_tag(ev.tag).to_bytes())
        return
    upload.begin(ev, flags)
    if not ev.catenate:
        s.write(s.conn.accept_literal())


def _replaced_message(
    s: Session, tag: str, seqset: ast.SequenceSet, by_uid: bool
) -> tuple[tuple[int, bool], int]:
    """The message a REPLACE names (RFC 8508 3) and its size; checked before the upload."""
    from mailwright.proto.imap.state import State, check_allowed
    from mailwright.proto.imap.uidonly import check_uid_only

    placeholder = ast.Replace(tag, seqset, "", ast.AppendMessage((), None, b""), by_uid)
    check_allowed(placeholder, s.state)
    if s.uidonly:
        check_uid_only(placeholder)
    view = s.view
    assert view is not None and s.state is State.SELECTED
    if view.readonly:
        raise No("Mailbox is read-only", "READ-ONLY")
    if not by_uid and view.seq_out_of_range(seqset):
        raise ProtocolError("Invalid message sequence number")
    pairs = [(q, u) for q, u in view.resolve(seqset, uid=by_uid, saved=s.saved_search)
             if u not in view.pending_expunge]
    if len(pairs) > 1:
        raise ProtocolError("REPLACE names exactly one message")
    if not pairs:
        # RFC 8508 3.3: nothing is appended when the message to replace does not exist
        raise No("The message to replace does not exist", "NONEXISTENT")
    uid = pairs[0][1]
    rec = view.records.get(uid)
    return (uid, by_uid), rec.size if rec is not None else 0


@handles(ast.Replace)
async def replace(s: Session, cmd: ast.Replace) -> Ok | None:
    """RFC 8508: the new message and the expunge of the old one in one store transaction,
    then ``* OK [APPENDUID ...]``, the expunge of the old message, and the tagged OK."""
    from mailwright.imapd.cmd_selected import send_expunged

    upload: AppendUpload | None = s.upload
    s.upload = None
    view = s.view
    if upload is None or upload.replace is None or view is None:
        raise No("REPLACE data was not received")  # pragma: no cover
    if upload.failure is not None:
        raise upload.failure
    assert upload.mailbox is not None
    mb = await s.store.get_mailbox_by_id(upload.mailbox.id)
    if mb is None:
        raise No("Mailbox does not exist", "TRYCREATE")
    blob, flags, when, _ = upload.staged[0]
    item = AppendItem(blob, flags, when.astimezone(UTC) if when else datetime.now(UTC))
    uid, _ = upload.replace
    # RFC 8508 3 with RFC 4314 4: i on the target, t and e where the old message goes
    await s.store.acl_require(s.account_id, mb.id, "i")
    await s.store.acl_require(s.account_id, view.mailbox.id, "te")
    try:
        rec, gone = await s.store.replace_message(view.mailbox.id, uid, mb.id, item)
    except QuotaExceeded:
        raise No("Quota exceeded", "OVERQUOTA") from None
    except StorageFull:
        raise No("Server storage is full", "LIMIT") from None
    except NotFound:
        if await s.store.get_mailbox_by_id(mb.id) is None:
            raise No("Mailbox does not exist", "TRYCREATE") from None
        raise No("The message to replace was expunged", "EXPUNGEISSUED") from None
    upload.done = True
    s.untagged_status("OK", "Replacement message", f"APPENDUID {mb.uidvalidity} {rec.uid}")
    send_expunged(s, view.remove_expunged(gone))
    return Ok("REPLACE completed")


@handles(ast.Append)
async def append(s: Session, cmd: ast.Append) -> Ok | None:
    upload: AppendUpload | None = s.upload
    s.upload = None
    if upload is None:
        # the connection core streams every APPEND of an authenticated session
        raise No("APPEND data was not received")  # pragma: no cover
    if upload.failure is not None:
        raise upload.failure
    assert upload.mailbox is not None
    mb = await s.store.get_mailbox_by_id(upload.mailbox.id)
    if mb is None:  # deleted while the messages were uploaded
        raise No("Mailbox does not exist", "TRYCREATE")
    now = datetime.now(UTC)
    items = [
        AppendItem(blob, flags, when.astimezone(UTC) if when else now)
        for blob, flags, when, _ in upload.staged
    ]
    try:
        # RFC 3502 3: MULTIAPPEND is all or nothing: one transaction for every message.
        done = await s.store.append_as(s.account_id, mb.id, items)
    except QuotaExceeded:
        raise No("Quota exceeded", "OVERQUOTA") from None
    except StorageFull:
        raise No("Server storage is full", "LIMIT") from None
    except NotFound:
        raise No("Mailbox does not exist", "TRYCREATE") from None
    upload.done = True
    uids = uid_set_string(r.uid for r in done)
    return Ok("APPEND completed", f"APPENDUID {mb.uidvalidity} {uids}")


# -- QUOTA -----------------------------------------------------------------------------------


async def _quota_line(s: Session, account_id: int, root: str) -> bytes:
    """The QUOTA response of one account's quota root: the user's own is ``""``; another
    account's, whose mailboxes are shared with the user, is ``Other Users/<owner>``."""
    assert s.account is not None
    acc = await s.store.get_account(account_id)
    if acc is None:
        raise No("No such quota root", "NONEXISTENT")
    usage = await s.store.usage(account_id)
    max_messages = await s.store.message_quota(account_id)
    resources: list[bytes] = []
    if acc.quota_bytes:
        # RFC 9208 5.1: STORAGE in units of 1024 octets.
        resources.append(b"STORAGE %d %d" % ((usage.bytes + 1023) // 1024,
                                             acc.quota_bytes // 1024))
    if max_messages:
        # RFC 9208 5.2: MESSAGE counts the messages of every mailbox of the root
        resources.append(b"MESSAGE %d %d" % (usage.messages, max_messages))
    return b"QUOTA " + R.astring(root, utf8=s.utf8) + b" (" + b" ".join(resources) + b")"


async def _owner_root(s: Session, root: str) -> int:
    """The account whose quota root `root` is: the user's own ``""``, or another account
    that shares at least one mailbox with the user (any other is not the user's to see)."""
    if root == "":
        return s.account_id
    owner = root[len(shared.PREFIX):].lower() if root.startswith(shared.PREFIX) else ""
    if owner and any(sm.owner == owner for sm in await s.store.shared_mailboxes(s.account_id)):
        acc = await s.store.find_account(owner)
        if acc is not None:
            return acc.id
    raise No("No such quota root", "NONEXISTENT")


@handles(ast.GetQuota)
async def getquota(s: Session, cmd: ast.GetQuota) -> Ok | None:
    s.untagged(await _quota_line(s, await _owner_root(s, cmd.root), cmd.root))
    return None


@handles(ast.GetQuotaRoot)
async def getquotaroot(s: Session, cmd: ast.GetQuotaRoot) -> Ok | None:
    mb, _, ref = await shared.open_mailbox(s, cmd.mailbox)
    # RFC 9208 4.3: a shared mailbox's root is its owner's (what is added there is charged
    # to the owner), named after the other users' namespace
    root = "" if not ref.shared else shared.PREFIX + ref.display[len(shared.PREFIX):].split(
        "/", 1)[0]
    s.untagged(b"QUOTAROOT " + s.name_out(ref.display) + b" " + R.astring(root, utf8=s.utf8))
    s.untagged(await _quota_line(s, mb.account_id, root))
    return None
