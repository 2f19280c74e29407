"""IMAP NOTIFY (RFC 5465): which changes a session hears of, and when.

House rules (read before changing anything here):

* The change hub is the only source of wake-ups. A :class:`Notifier` watches exactly the hub
  keys its NOTIFY set needs, in one ``Watch``: each mailbox with message events, and the
  account channels (mailbox list, subscriptions, annotations) of the mailbox events. The store
  is read only for a key that changed: ``changes_since`` (and ``mailbox_status`` when a STATUS
  goes out) for a changed mailbox, one listing for a changed account channel. Nothing polls.
* Notifications are computed when they can be sent (between commands, during IDLE, at the end
  of a command) by comparing the store with what the client was last told (per-mailbox
  snapshots), so a burst of changes coalesces and what is pending is bounded by the watched
  set. More than ``notify_max_pending`` responses due at once, or a set grown beyond
  ``notify_max_mailboxes``, is ``* OK [NOTIFICATIONOVERFLOW]`` and NOTIFY NONE from then on
  (RFC 5465 5.8; the client re-issues NOTIFY and resynchronises with STATUS or SELECT).
* The selected mailbox is reported through the session's view (EXISTS, EXPUNGE or VANISHED,
  FETCH FLAGS, and MessageNew's fetch attributes), never with STATUS (RFC 5465 5.1-5.3 send
  STATUS only for "another mailbox"). Its message events come from the SELECTED or
  SELECTED-DELAYED group alone (RFC 5465 6: only those two match the selected mailbox; 3.1: no
  such group is the same as SELECTED NONE); its mailbox events (MailboxName, ...) from the other
  groups, since 6.1 restricts the selected filters to message events. A selected mailbox with no
  message events still gets what the base protocol requires (EXISTS, EXPUNGE) at the end of
  commands, as with NOTIFY NONE; not between commands, nor during IDLE (RFC 5465 4: IDLE sends
  exactly the events NOTIFY asked for).
* A mailbox matched by several event groups gets the events of all of them (RFC 5465 6 lets
  several groups apply to one mailbox); a group with NONE that matches it first stops the walk
  (RFC 5465 5: NONE is how a client says "no events" for a set of mailboxes).
* INBOXES is PERSONAL here (RFC 5465 6.3: a server that cannot easily compute the mailboxes an
  MDA may deliver to MUST treat INBOXES as PERSONAL; Sieve ``fileinto`` reaches any of them).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from mailwright.imapd.session import CloseConnection, No, Ok, Session, handles
from mailwright.imapd.view import Updates
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.store.api import Mailbox, NotFound
from mailwright.store.changes import (
    ANNOTATIONS,
    MAILBOX_LIST,
    SUBSCRIPTIONS,
    account_channel,
)

log = logging.getLogger("mailwright.imapd")

_MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange"})
_SELECTED = ("SELECTED", "SELECTED-DELAYED")


@dataclass(slots=True)
class _Told:
    """What the client knows of a non-selected mailbox: the store's values at its last STATUS
    (or when watching began)."""

    uidnext: int
    highestmodseq: int


def _forbids_expunge(cmd: ast.Command | None) -> bool:
    # RFC 9051 7.5.1: no EXPUNGE while FETCH, STORE or SEARCH by sequence number runs
    return isinstance(cmd, ast.Fetch | ast.Store | ast.Search | ast.Sort | ast.Thread) and (
        not cmd.uid
    )


class Notifier:
    """One session's NOTIFY set (RFC 5465 3) and what it has told the client."""

    def __init__(self, session: Session, groups: tuple[ast.NotifyGroup, ...]) -> None:
        self.groups = groups
        self.others = tuple(g for g in groups if g.filter not in _SELECTED)
        self.selected_group = next((g for g in groups if g.filter in _SELECTED), None)
        self.account_id = session.account_id
        self.watch = session.store.changes.watch()
        self.mailboxes: dict[int, Mailbox] = {}
        self.subscribed: set[str] = set()
        self.told: dict[int, _Told] = {}
        self.annotations: dict[tuple[int | None, str], bytes] = {}
        self.selected_id: int | None = None
        # RFC 5465 5: the changes this session's own commands made to the mailbox list,
        # subscriptions and metadata, which it is not told of; cleared when the channel is read
        self.own: set[tuple[str, str, str]] = set()
        # and the UIDs its own APPEND/COPY gave messages in other mailboxes, by mailbox
        self.own_new: dict[int, set[int]] = {}
        self.wants = frozenset(e for g in groups for e in g.events)
        self.max_pending = session.config.notify_max_pending
        self.max_mailboxes = session.config.notify_max_mailboxes

    # -- which mailbox gets which events ------------------------------------------------------

    def _matches(self, group: ast.NotifyGroup, name: str) -> bool:
        f = group.filter
        if f in ("PERSONAL", "INBOXES"):
            # RFC 5465 6.2: every mailbox of the account is in its personal namespace. 6.3:
            # INBOXES are the mailboxes an MDA may deliver to; Sieve fileinto may deliver to
            # any of them, so (MUST) INBOXES is treated as PERSONAL
            return True
        if f == "SUBSCRIBED":
            return name in self.subscribed  # RFC 5465 6.4
        if f == "MAILBOXES":
            return name in group.mailboxes  # RFC 5465 6.6
        if f == "SUBTREE":
            return any(name == m or name.startswith(m + "/") for m in group.mailboxes)  # 6.5
        return False

    def events_for(self, name: str) -> frozenset[str]:
        """The events of a mailbox that is not selected: those of every non-selected group
        that names it (RFC 5465 6), up to the first matching group with NONE (RFC 5465 5)."""
        out: set[str] = set()
        for g in self.others:
            if self._matches(g, name):
                if not g.events:
                    break
                out |= g.events
        return frozenset(out)

    def selected_events(self, session: Session) -> tuple[ast.NotifyGroup | None, bool]:
        """The group that governs the selected mailbox's message events, and whether expunges
        are delayed: the SELECTED or SELECTED-DELAYED group, or none (RFC 5465 6: no other
        filter matches the selected mailbox; 3.1: its absence is SELECTED NONE)."""
        if session.view is None:
            return None, False
        g = self.selected_group
        if g is None:
            return None, False
        return g, g.filter == "SELECTED-DELAYED"

    def wants_flags(self, session: Session) -> bool:
        """Whether the selected mailbox's flag changes made by others are told (RFC 5465 5.1:
        FlagChange in the SELECTED group). Without it they are not, also at the end of
        commands: RFC 9051 5.2 only recommends flag updates (SHOULD), while the size updates
        (EXISTS, EXPUNGE) it requires still go out then."""
        g, _ = self.selected_events(session)
        return g is not None and "FlagChange" in g.events

    def _message_mailboxes(self, session: Session) -> set[int]:
        """Non-selected mailboxes with message events."""
        selected = session.view.mailbox.id if session.view is not None else None
        out = set()
        for mb in self.mailboxes.values():
            if mb.id == selected:
                continue
            if self.events_for(mb.name) & _MESSAGE_EVENTS:
                out.add(mb.id)
        return out

    def _watches_subscriptions(self) -> bool:
        return "SubscriptionChange" in self.wants or any(g.filter == "SUBSCRIBED" for g in self.groups)

    def _watches_annotations(self) -> bool:
        return bool(self.wants & {"MailboxMetadataChange", "ServerMetadataChange"})

    def _keys(self, session: Session) -> frozenset[int]:
        keys = {account_channel(self.account_id, MAILBOX_LIST)}
        if self._watches_subscriptions():
            keys.add(account_channel(self.account_id, SUBSCRIPTIONS))
        if self._watches_annotations():
            keys.add(account_channel(self.account_id, ANNOTATIONS))
        keys |= set(self.told)
        g, _ = self.selected_events(session)
        if session.view is not None and g is not None and g.events & _MESSAGE_EVENTS:
            keys.add(session.view.mailbox.id)
        return frozenset(keys)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, session: Session, status: bool) -> None:
        """Take the first snapshots and begin watching; with *status*, a STATUS for each
        non-selected mailbox with message events (RFC 5465 3)."""
        store = session.store
        self.mailboxes = {mb.id: mb for mb in await store.list_mailboxes(self.account_id)}
        self.subscribed = set(await store.list_subscriptions(self.account_id))
        if self.wants & {"MailboxMetadataChange", "ServerMetadataChange"}:
            self.annotations = await store.metadata_digests(self.account_id)
        self.selected_id = session.view.mailbox.id if session.view is not None else None
        watched = self._message_mailboxes(session)
        if len(watched) > self.max_mailboxes:
            # RFC 5465 3.1: a set too costly to honour MAY be refused with this code
            raise No(f"NOTIFY covers more than {self.max_mailboxes} mailboxes",
                     "NOTIFICATIONOVERFLOW")
        counts = await store.message_counts(self.account_id) if status else {}
        for mb_id in sorted(watched, key=lambda i: self.mailboxes[i].name):
            mb = self.mailboxes[mb_id]
            if mb_id not in counts:
                self.told[mb_id] = _Told(mb.uidnext, mb.highestmodseq)
                continue
            # one snapshot for all: the STATUS says what the client is told from then on
            messages, uidnext, uidvalidity, highestmodseq = counts[mb_id]
            self.told[mb_id] = _Told(uidnext, highestmodseq)
            items = b"MESSAGES %d UIDNEXT %d UIDVALIDITY %d" % (messages, uidnext, uidvalidity)
            if self._with_modseq(session, mb.name, flags=False):
                items += b" HIGHESTMODSEQ %d" % highestmodseq
            session.untagged(b"STATUS " + session.name_out(mb.name) + b" (" + items + b")")
        self.watch.watch(self._keys(session))

    def _with_modseq(self, session: Session, name: str, *, flags: bool) -> bool:
        """HIGHESTMODSEQ: RFC 5465 5.2/5.3 require it once the client enabled CONDSTORE or
        QRESYNC; 5.1 (and 3.1 for SET STATUS) where FlagChange is asked for and the server
        supports CONDSTORE, which we do."""
        return session.condstore or flags or "FlagChange" in self.events_for(name)

    def close(self) -> None:
        self.watch.close()

    # -- delivery -----------------------------------------------------------------------------

    async def deliver(
        self, session: Session, cmd: ast.Command | None, *, idle: bool = False,
        code: str | None = None,
    ) -> None:
        """Send what is due. *cmd* is the command that is ending (None between commands and
        during IDLE, which *idle* marks); *code* its tagged OK's response code."""
        own_uids: set[int] = set()
        if cmd is not None:
            self._note_own(session, cmd)
            if isinstance(cmd, ast.Append | ast.Copy | ast.Move) and code is not None:
                own_uids = self._note_own_new(session, cmd.mailbox, code)
        changed = self.watch.take()
        selected = session.view.mailbox.id if session.view is not None else None
        reselected = selected != self.selected_id
        if reselected:
            await self._reselect(session, selected)
        lines: list[bytes] = []
        channels = {k for k in changed if k < 0}
        if channels:
            lines += await self._account_changes(session, channels)
        for mb_id in sorted(k for k in changed if k > 0 and k in self.told):
            line = await self._mailbox_change(session, mb_id)
            if line is not None:
                lines.append(line)
        if len(lines) > self.max_pending or len(self.told) > self.max_mailboxes:
            overflow(session)
            return
        for line in lines:
            session.untagged(line)
        if session.notifier is self and (channels or reselected):
            self.watch.watch(self._keys(session))  # the set may have changed
        await self._selected(session, cmd, idle, own_uids)

    def _note_own(self, session: Session, cmd: ast.Command) -> None:
        """RFC 5465 5: the server SHOULD NOT tell a client of what it did itself (its example:
        the MailboxName event of the client's own CREATE). Mailbox and subscription events are
        named, so the session's own are known and left out; message events in other mailboxes
        come coalesced with everyone's, so their STATUS still goes out (the client learns
        nothing wrong from it)."""
        if len(self.own) >= 64:
            return  # bounded; an own event told is harmless
        if isinstance(cmd, ast.Create):
            self.own.add(("create", session.name_in(cmd.mailbox), ""))
        elif isinstance(cmd, ast.Delete):
            self.own.add(("delete", session.name_in(cmd.mailbox), ""))
        elif isinstance(cmd, ast.Rename):
            self.own.add(("rename", session.name_in(cmd.old), session.name_in(cmd.new)))
        elif isinstance(cmd, ast.Subscribe | ast.Unsubscribe) and self._watches_subscriptions():
            self.own.add(("sub", session.name_in(cmd.mailbox), ""))
        elif isinstance(cmd, ast.SetMetadata) and self._watches_annotations():
            name = session.name_in(cmd.mailbox) if cmd.mailbox else ""
            self.own.add(("meta", name, ""))

    def _note_own_new(self, session: Session, mailbox: str, code: str) -> set[int]:
        """The UIDs of the messages the command put in the selected mailbox (returned), or
        noted for the other mailbox it put them in (RFC 5465 5: not told back)."""
        name = session.name_in(mailbox)
        view = session.view
        if view is not None and view.mailbox.name == name and (
            view.mailbox.account_id == self.account_id
        ):
            return _own_uids(code, view.mailbox.uidvalidity)
        mb = next((m for m in self.mailboxes.values() if m.name == name), None)
        if mb is not None and mb.id in self.told and len(self.own_new) < 64:
            uids = _own_uids(code, mb.uidvalidity)
            if uids:
                self.own_new.setdefault(mb.id, set()).update(uids)
        return set()

    def _own(self, kind: str, name: str, new: str = "") -> bool:
        for k, a, b in self.own:
            if k != kind:
                continue
            if kind == "create" and (a == name or a.startswith(name + "/")):
                return True  # CREATE a/b creates a too
            if kind == "rename" and (
                (name, new) == (a, b) or (name.startswith(a + "/") and new == b + name[len(a):])
            ):
                return True  # RENAME takes the children along
            if kind in ("delete", "sub", "meta") and a == name:
                return True
        return False

    def _forget_own(self, *kinds: str) -> None:
        self.own = {o for o in self.own if o[0] not in kinds}

    async def _reselect(self, session: Session, selected: int | None) -> None:
        """The selected mailbox changed: the old one is reported with STATUS from now on,
        from its present state; the new one through the view."""
        old, self.selected_id = self.selected_id, selected
        if selected is not None:
            self.told.pop(selected, None)
        if old is not None and old in self._message_mailboxes(session):
            try:
                st = await session.store.mailbox_status(old)
            except NotFound:
                return
            self.told[old] = _Told(st.uidnext, st.highestmodseq)

    async def _selected(
        self, session: Session, cmd: ast.Command | None, idle: bool, own_uids: set[int]
    ) -> None:
        view, sub = session.view, session.subscription
        if view is None or sub is None or not sub.pending:
            return
        group, delayed = self.selected_events(session)
        if group is None or not group.events & _MESSAGE_EVENTS:
            return  # the base protocol's updates at the end of the command (session.sync)
        if cmd is None:
            # RFC 5465 6: SELECTED-DELAYED holds expunges back until a command that allows
            # them; IDLE is such a command (RFC 2177)
            allow_expunge = idle or not delayed
        else:
            allow_expunge = not _forbids_expunge(cmd)
        sub.clear()
        await session.wake_view()
        try:
            cs = await session.store.changes_since(view.mailbox.id, view.modseq)
        except Exception:  # noqa: BLE001 - the mailbox was deleted under us, as in sync
            session.untagged_status("BYE", "Selected mailbox was deleted")
            raise CloseConnection from None
        up = view.apply(cs, allow_expunge=allow_expunge)
        if up.new_uids:
            await session.claim_recent(up.new_uids)
        if "FlagChange" not in group.events:
            up.flags = []  # RFC 5465 5.1: flag changes only for a client that asked
        session.send_updates(up)
        if up.new_uids and group.fetch:
            await self._fetch_new(session, group.fetch, up, own_uids)
        if session.contexts and allow_expunge:
            from mailwright.imapd import context

            await context.refresh(session)

    async def _fetch_new(
        self, session: Session, items: tuple[ast.FetchItem, ...], up: Updates, own: set[int]
    ) -> None:
        """RFC 5465 5.2: MessageNew's fetch attributes, after the EXISTS; they never set
        \\Seen (a notification is not a read). Not for the messages this session's own
        APPEND or COPY put in the selected mailbox (5.2: SHOULD NOT): the client has them."""
        from mailwright.imapd import content

        view = session.view
        assert view is not None
        if len(up.new_uids) > self.max_pending:
            overflow(session)
            return
        wanted = list(items)
        if session.qresync and not session.uidonly and ast.FetchAttr("UID") not in wanted:
            wanted.insert(0, ast.FetchAttr("UID"))  # RFC 7162 3.2.4
        renderer = content.fetch_renderer()
        for uid in up.new_uids:
            if uid in own:
                continue
            seq = view.seq_of(uid)
            rec = view.records.get(uid)
            if seq is None or rec is None:
                continue
            try:
                data = await renderer(session.store, seq, view.shown(rec), wanted,
                                      utf8=session.utf8)
            except (content.FetchFailed, NotFound):
                continue  # expunged meanwhile: its EXPUNGE follows
            if session.uidonly:
                # RFC 9586 3.3: the message is named by its UID
                prefix = b"* %d FETCH (" % seq
                data = b"* %d UIDFETCH (" % uid + data[len(prefix):]
            session.write(data)
            await session.maybe_flush()

    async def _mailbox_change(self, session: Session, mb_id: int) -> bytes | None:
        """RFC 5465 5.2-5.4 for a mailbox that is not selected: a STATUS when messages came
        or went, or (FlagChange) when flags changed."""
        told = self.told[mb_id]
        try:
            cs = await session.store.changes_since(mb_id, told.highestmodseq)
        except NotFound:
            return None  # deleted: the mailbox list says so
        new = cs.uidnext != told.uidnext
        expunged = bool(cs.expunged)
        flags = any(r.uid < told.uidnext for r in cs.updated)
        own = self.own_new.pop(mb_id, set())
        if new and own and not expunged and not flags and own.issuperset(
            range(told.uidnext, cs.uidnext)
        ):
            new = False  # RFC 5465 5: only the session's own APPEND or COPY came
        elif own and cs.uidnext <= max(own):
            self.own_new[mb_id] = own  # its change has not been seen yet
        told.uidnext, told.highestmodseq = cs.uidnext, max(cs.highestmodseq, told.highestmodseq)
        mb = self.mailboxes.get(mb_id)
        events = self.events_for(mb.name) if mb is not None else frozenset()
        if not events & _MESSAGE_EVENTS:
            return None
        if new or expunged:
            return await self._status_line(session, mb_id, new=True, flags=False)
        if flags and "FlagChange" in events:
            return await self._status_line(session, mb_id, new=False, flags=True)
        return None

    async def _status_line(
        self, session: Session, mb_id: int, *, new: bool, flags: bool
    ) -> bytes | None:
        """RFC 5465 5.2-5.3: MESSAGES, UIDNEXT and UIDVALIDITY when messages came or went;
        UIDVALIDITY and HIGHESTMODSEQ for FlagChange (we have CONDSTORE), so HIGHESTMODSEQ
        always comes where the group has FlagChange, and once CONDSTORE is enabled."""
        mb = self.mailboxes.get(mb_id)
        try:
            st = await session.store.mailbox_status(mb_id)
        except NotFound:
            return None
        if mb is None:
            return None
        items = []
        if new:
            items += [b"MESSAGES %d" % st.messages, b"UIDNEXT %d" % st.uidnext]
        items.append(b"UIDVALIDITY %d" % st.uidvalidity)
        if self._with_modseq(session, mb.name, flags=flags):
            items.append(b"HIGHESTMODSEQ %d" % st.highestmodseq)
        told = self.told.get(mb_id)
        if told is not None:
            told.uidnext, told.highestmodseq = st.uidnext, st.highestmodseq
        return b"STATUS " + session.name_out(mb.name) + b" (" + b" ".join(items) + b")"

    async def _account_changes(self, session: Session, channels: set[int]) -> list[bytes]:
        """MailboxName (5.4), SubscriptionChange (5.5), MailboxMetadataChange (5.8) and
        ServerMetadataChange (5.9), from the listings compared with the last ones."""
        store = session.store
        lines: list[bytes] = []
        renamed: set[tuple[str, str]] = set()
        digests = None
        if account_channel(self.account_id, ANNOTATIONS) in channels:
            # Metadata first, then the mailbox list: a DELETE (which takes its mailbox's
            # entries with it) that lands between the two reads is then told as the mailbox's
            # LIST (\NonExistent) alone, never as a METADATA change of a mailbox already gone.
            digests = await store.metadata_digests(self.account_id)
            channels = channels | {account_channel(self.account_id, MAILBOX_LIST)}
        if account_channel(self.account_id, MAILBOX_LIST) in channels:
            before = self.mailboxes
            self.mailboxes = {mb.id: mb for mb in await store.list_mailboxes(self.account_id)}
            for mb_id, mb in self.mailboxes.items():
                old = before.get(mb_id)
                if old is None:
                    if self._wants(mb.name, "MailboxName") and not self._own("create", mb.name):
                        lines.append(_list_line(session, (), mb.name))
                elif old.name != mb.name:
                    renamed.add((old.name, mb.name))
                    if (
                        self._wants(mb.name, "MailboxName") or self._wants(old.name, "MailboxName")
                    ) and not self._own("rename", old.name, mb.name):
                        lines.append(_list_line(session, (), mb.name, old_name=old.name))
            for mb_id, old in before.items():
                if mb_id not in self.mailboxes:
                    self.told.pop(mb_id, None)
                    if self._wants(old.name, "MailboxName") and not self._own("delete", old.name):
                        lines.append(_list_line(session, ("\\NonExistent",), old.name))
            self._forget_own("create", "rename", "delete")
        if account_channel(self.account_id, SUBSCRIPTIONS) in channels or renamed:
            before_subs = self.subscribed
            self.subscribed = set(await store.list_subscriptions(self.account_id))
            gone = before_subs - self.subscribed
            came = self.subscribed - before_subs
            moved_from = {o for o, _ in renamed}
            moved_to = {n for _, n in renamed}
            names = {mb.name for mb in self.mailboxes.values()}
            own = {name for name in came | gone if self._own("sub", name)}
            if account_channel(self.account_id, SUBSCRIPTIONS) in channels:
                self._forget_own("sub")
            for name in sorted(came - moved_to - own):
                if self._wants(name, "SubscriptionChange"):
                    attrs: tuple[str, ...] = ("\\Subscribed",)
                    if name not in names:
                        attrs += ("\\NonExistent",)
                    lines.append(_list_line(session, attrs, name))
            for name in sorted(gone - moved_from - own):
                if self._wants(name, "SubscriptionChange"):
                    attrs = () if name in names else ("\\NonExistent",)
                    lines.append(_list_line(session, attrs, name))
        # a mailbox that came into the set: watched from its present state on
        selected = session.view.mailbox.id if session.view is not None else None
        current = self._message_mailboxes(session)
        for mb_id in current - set(self.told):
            if mb_id != selected:
                mb = self.mailboxes[mb_id]
                self.told[mb_id] = _Told(mb.uidnext, mb.highestmodseq)
        for mb_id in set(self.told) - current:
            del self.told[mb_id]
        if digests is not None:
            lines += self._annotation_changes(session, digests)
        return lines

    def _wants(self, name: str, event: str) -> bool:
        # mailbox events never come from SELECTED (RFC 5465 6.1: message events only), so the
        # selected mailbox takes them from the other groups
        return event in self.events_for(name)

    def _annotation_changes(
        self, session: Session, digests: dict[tuple[int | None, str], bytes]
    ) -> list[bytes]:
        before = self.annotations
        self.annotations = digests
        changed: dict[int | None, list[str]] = {}
        for key in sorted(set(before) | set(self.annotations), key=lambda k: (k[0] or 0, k[1])):
            if before.get(key) != self.annotations.get(key):
                changed.setdefault(key[0], []).append(key[1])
        lines = []
        own = self.own
        self._forget_own("meta")
        for mb_id, entries in changed.items():
            if mb_id is None:
                if "ServerMetadataChange" not in self.wants or ("meta", "", "") in own:
                    continue
                name = b'""'
            else:
                mb = self.mailboxes.get(mb_id)
                if mb is None or not self._wants(mb.name, "MailboxMetadataChange"):
                    continue
                if ("meta", mb.name, "") in own:
                    continue
                name = session.name_out(mb.name)
            # RFC 5464 4.4.2: the unsolicited form names the entries, without values
            lines.append(b"METADATA " + name + b"".join(b" " + R.astring(e) for e in entries))
        return lines


def _own_uids(code: str | None, uidvalidity: int) -> set[int]:
    """The UIDs a session's own APPEND, COPY or MOVE gave messages in the mailbox of
    *uidvalidity*, from its APPENDUID or COPYUID code (RFC 4315 3)."""
    words = code.split() if code is not None else []
    if len(words) < 3 or words[0] not in ("APPENDUID", "COPYUID"):
        return set()
    if words[1] != str(uidvalidity):
        return set()
    out: set[int] = set()
    for part in words[-1].split(","):
        lo, _, hi = part.partition(":")
        if not lo.isdigit() or not (hi or lo).isdigit():
            return set()
        a, b = sorted((int(lo), int(hi or lo)))
        if b - a > 100_000:
            return set()  # bounded: a larger own set is told as anyone's
        out.update(range(a, b + 1))
    return out


def _list_line(
    session: Session, attrs: tuple[str, ...], name: str, *, old_name: str | None = None
) -> bytes:
    """RFC 5465 5.4/5.5: a LIST response, with RFC 5258's OLDNAME after a rename."""
    line = b"LIST (" + " ".join(attrs).encode() + b') "/" ' + session.name_out(name)
    if old_name is not None:
        line += b' ("OLDNAME" (' + session.name_out(old_name) + b"))"
    return line


def overflow(session: Session) -> None:
    """RFC 5465 5.8: too much to say: an untagged OK [NOTIFICATIONOVERFLOW], then behave as
    if NOTIFY NONE had been received; the client re-issues NOTIFY once it has caught up."""
    notifier = session.notifier
    if notifier is not None:
        notifier.close()
        session.notifier = None
    session.untagged_status("OK", "Too many notifications; NOTIFY is off", "NOTIFICATIONOVERFLOW")


async def read_between_commands(session: Session, timeout: float) -> bytes | None:
    """The session's read between commands while NOTIFY is on: notifications go out as the
    hub reports changes (RFC 5465 3: at any time, not only during IDLE). None on timeout or
    when a graceful shutdown begins, as ``Session._read``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    read = asyncio.ensure_future(session.transport.read())
    stop = asyncio.ensure_future(session.closing.wait()) if session.closing is not None else None
    try:
        while True:
            notifier = session.notifier
            wake = asyncio.ensure_future(notifier.watch.wait()) if notifier is not None else None
            waits: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
            if stop is not None:
                waits.add(stop)  # type: ignore[arg-type]
            if wake is not None:
                waits.add(wake)  # type: ignore[arg-type]
            done, _ = await asyncio.wait(
                waits, timeout=max(deadline - loop.time(), 0), return_when=asyncio.FIRST_COMPLETED
            )
            if wake is not None and not wake.done():
                wake.cancel()
            if read in done:
                return read.result()
            if not done or (stop is not None and stop in done):
                read.cancel()
                return None
            if notifier is not None and session.notifier is notifier:
                try:
                    await notifier.deliver(session, None)
                except (CloseConnection, ConnectionError, asyncio.CancelledError):
                    raise
                except Exception:
                    # ours (the store failed): the client is told to resynchronise, as after
                    # an overflow, and the session goes on
                    log.exception("IMAP NOTIFY delivery failed")
                    overflow(session)
                await session.flush()
    finally:
        if stop is not None:
            stop.cancel()


@handles(ast.Notify)
async def handle_notify(s: Session, cmd: ast.Notify) -> Ok | None:
    """RFC 5465 3: NOTIFY SET replaces the set in force, NOTIFY NONE ends it; a NOTIFY that
    fails leaves the set in force as it was."""
    if cmd.groups is None:
        if s.notifier is not None:
            s.notifier.close()
            s.notifier = None
        return None
    groups = tuple(
        ast.NotifyGroup(g.filter, tuple(s.name_in(m) for m in g.mailboxes), g.events, g.fetch)
        for g in cmd.groups
    )
    notifier = Notifier(s, groups)
    try:
        await notifier.start(s, cmd.status)
    except BaseException:
        notifier.close()
        raise
    if s.notifier is not None:
        s.notifier.close()
    s.notifier = notifier
    return None
