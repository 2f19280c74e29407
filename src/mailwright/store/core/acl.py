"""Mailbox sharing: access control lists (RFC 4314), kept and enforced in the store.

Theory of operation. A mailbox belongs to one account, whose rights on it are all of
``lrswipkxtea`` and cannot be changed. Anyone else holds the rights the mailbox's ACL grants
to identifiers that match them:

- their own address;
- a group: an alias whose targets include their address (an alias that expands to several
  accounts is how an operator makes a group), or include another group they belong to, down
  to `MAX_GROUP_DEPTH` levels; a cycle of aliases ends there too;
- ``authenticated`` (every account: every actor here is one) and ``anyone``;

minus the rights of the negative entries (``-identifier``, RFC 4314 2) that match. An actor
without any right on a mailbox does not learn that it exists: `acl_rights`, which protocols
use to resolve a name, answers `NotFound` then, as for a mailbox that does not exist (RFC 4314
6, so that names cannot be probed). An operation by mailbox id without the right it needs
(none at all included) raises `AccessDenied`, which names the missing rights.

The message operations (`append_as`, `store_flags_as`, `expunge_as`, `copy_as`, `move_as`,
`delete_mailbox_as`) check the rights inside the operation's own transaction: each hands the
backend a `Guard`, which the backend runs first in the unit of work that makes the change. The
guard locks the mailbox rows (ascending id, the house order of the PostgreSQL backend) before
it reads the ACL, and SETACL/DELETEACL lock the same row before they change it, so a revocation
commits wholly before an operation (which is then refused) or after it (which then happened
before the revocation); on SQLite the single writer gives the same order. The guard also
answers which flags the operation may set (RFC 4314 4: a flag the actor has no right to is
dropped from an APPEND or COPY, and left as it is by a STORE). SELECT's listing and STATUS
check in a read just before theirs. Every protocol (IMAP, webmail, Sieve delivery) goes
through these methods for mailboxes a client names. A group membership changed by an alias
edit takes effect at the next operation.

\\Seen on a shared mailbox is one flag of the message for everybody (RFC 4314 allows both):
a reader without ``s`` cannot change it, and reading does not set it for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from mailwright.store.api import (
    ALL_RIGHTS,
    AccessDenied,
    AlreadyExists,
    AppendItem,
    FlagOp,
    InvalidOperation,
    Mailbox,
    MailboxStatus,
    MessageListing,
    MessageRecord,
    NotFound,
    SharedMailbox,
    StoreFlagsResult,
    canonical_mailbox_name,
)
from mailwright.store.core.accounts import create_mailbox_row
from mailwright.store.core.base import CoreBase
from mailwright.store.core.mailboxes import MB_COLS, MB_FROM, mailbox
from mailwright.store.core.tx import FlagFilter, Guard, Tx, as_list

if TYPE_CHECKING:
    from mailwright.store.api import Store

#: RFC 4314 2.1.1 with RIGHTS=texk: the obsolete "c" is the "create" right (k), "d" the
#: "delete" rights (x, t and e); accepted from clients, never shown
OBSOLETE = {"c": "k", "d": "xte"}
#: identifiers that match every account (RFC 4314 2: "anyone"; "authenticated" as Dovecot)
EVERYONE = ("anyone", "authenticated")
MAX_IDENTIFIER = 320
#: groups nest (an alias whose targets are aliases) this many levels deep at most
MAX_GROUP_DEPTH = 5
#: the most aliases one membership check reads (bounded work whatever the alias table holds)
MAX_GROUP_ALIASES = 1000


class GuardedMessages(Protocol):
    """The backends' message operations, each taking an optional `Guard` run in its own
    transaction before it changes anything."""

    async def append_many(
        self, mailbox_id: int, items: Sequence[AppendItem], *, guard: Guard | None = None
    ) -> list[MessageRecord]: ...

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
        *,
        guard: Guard | None = None,
    ) -> StoreFlagsResult: ...

    async def expunge(
        self, mailbox_id: int, uids: Sequence[int], *, guard: Guard | None = None
    ) -> list[int]: ...

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]: ...

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]: ...

    async def delete_mailbox(self, mailbox_id: int, *, guard: Guard | None = None) -> None: ...


def parse_rights(text: str) -> str:
    """Rights letters (obsolete ones expanded) in ALL_RIGHTS order; ValueError for an unknown
    right (RFC 4314 3.1: a BAD response)."""
    out: set[str] = set()
    for ch in text:
        if ch in OBSOLETE:
            out.update(OBSOLETE[ch])
        elif ch in ALL_RIGHTS:
            out.add(ch)
        else:
            raise ValueError(f"unknown right {ch!r}")
    return ordered(out)


def ordered(rights: Iterable[str]) -> str:
    have = set(rights)
    return "".join(r for r in ALL_RIGHTS if r in have)


def modify(current: str, change: str) -> str:
    """RFC 4314 3.1: ``+rights`` adds, ``-rights`` removes, anything else replaces."""
    if change.startswith("+"):
        return ordered(set(current) | set(parse_rights(change[1:])))
    if change.startswith("-"):
        return ordered(set(current) - set(parse_rights(change[1:])))
    return parse_rights(change)


def normalize_identifier(identifier: str) -> str:
    """Identifiers compare case-insensitively here: addresses are kept lower-case."""
    ident = identifier.strip()
    if not ident or len(ident) > MAX_IDENTIFIER:
        raise InvalidOperation("invalid identifier")
    return ident.lower()


def flag_right(flag: str) -> str:
    """RFC 4314 4: \\Seen is changed with s, \\Deleted with t, any other flag with w."""
    return "s" if flag == "\\Seen" else "t" if flag == "\\Deleted" else "w"


def flag_rights(op: FlagOp, flags: Iterable[str]) -> str:
    """The rights a STORE involves: those of its flags; a replace may touch every flag."""
    if op is FlagOp.REPLACE:
        return "stw"
    return ordered({flag_right(f) for f in flags})


def may_set(rights: str) -> FlagFilter | None:
    """The filter of the flags `rights` let the actor change; None when they cover all."""
    if all(r in rights for r in "stw"):
        return None
    return lambda flag: flag_right(flag) in rights


def new_flags(
    current: Iterable[str], op: FlagOp, given: Iterable[str], allowed: FlagFilter | None
) -> set[str]:
    """A message's flags after a STORE by an actor who may change only the `allowed` ones
    (RFC 4314 4): the others are neither added, removed nor replaced."""
    cur = set(current)
    wanted = {f for f in given if allowed is None or allowed(f)}
    if op is FlagOp.ADD:
        return cur | wanted
    if op is FlagOp.REMOVE:
        return cur - wanted
    if allowed is None:
        return wanted
    return {f for f in cur if not allowed(f)} | wanted


async def actor_address(tx: Tx, actor: int) -> str:
    r = await tx.row("SELECT address FROM accounts WHERE id = ?", (actor,))
    if r is None:
        raise NotFound("no such account")
    return str(r[0])


def _is_group_name(name: str) -> bool:
    return "@" in name and not name.startswith("@")


def _members_of(rows: Iterable[tuple[object, object]]) -> dict[str, set[str]]:
    """For each target of the given alias rows, the aliases (groups) that name it."""
    parents: dict[str, set[str]] = {}
    for src, targets in rows:
        if _is_group_name(str(src)):
            for t in as_list(targets):
                parents.setdefault(t.lower(), set()).add(str(src))
    return parents


def _containing(parents: dict[str, set[str]], address: str) -> set[str]:
    """Every group that holds `address` directly or through nested groups, at most
    MAX_GROUP_DEPTH levels up; a cycle stops at groups already found."""
    found: set[str] = set()
    frontier = {address}
    for _ in range(MAX_GROUP_DEPTH):
        above = {g for m in frontier for g in parents.get(m, ())} - found - {address}
        if not above:
            break
        found |= above
        frontier = above
    return found


async def groups_of(tx: Tx, address: str, candidates: Sequence[str] | None = None) -> set[str]:
    """The aliases (groups) that hold `address`, directly or through nested groups (at most
    MAX_GROUP_DEPTH levels), among `candidates` if given.

    With candidates (the identifiers of one ACL), only the aliases reachable from them are
    read, level by level, at most MAX_GROUP_ALIASES of them."""
    if candidates is None:
        return _containing(_members_of(await tx.rows("SELECT source, targets FROM aliases")),
                           address)
    frontier = {c for c in candidates if _is_group_name(c)}
    read: set[str] = set()
    rows: list[tuple[object, object]] = []
    for _ in range(MAX_GROUP_DEPTH):
        frontier -= read
        if not frontier or len(read) >= MAX_GROUP_ALIASES:
            break
        names = sorted(frontier)[: MAX_GROUP_ALIASES - len(read)]
        read.update(names)
        sql, params = tx.values(names)
        level = await tx.rows(f"SELECT source, targets FROM aliases WHERE source IN {sql}", params)
        rows.extend((src, targets) for src, targets in level)
        frontier = {
            t.lower() for _, targets in level for t in as_list(targets) if _is_group_name(t)
        } - {address}
    return _containing(_members_of(rows), address) & set(candidates)


def effective(entries: Iterable[tuple[str, str]], mine: set[str]) -> str:
    """Rights granted to any identifier in `mine`, minus those denied to any (RFC 4314 2)."""
    grant: set[str] = set()
    deny: set[str] = set()
    for ident, rights in entries:
        if ident.startswith("-"):
            if ident[1:] in mine:
                deny.update(rights)
        elif ident in mine:
            grant.update(rights)
    return ordered(grant - deny)


async def rights_on(
    tx: Tx, actor: int, mailbox_id: int, *, hide: bool = True
) -> tuple[Mailbox, str]:
    """The mailbox and the actor's rights on it; NotFound when it does not exist or, with
    `hide`, when the actor has no right on it (RFC 4314 6: its existence is not revealed)."""
    r = await tx.row(f"SELECT {MB_COLS} FROM {MB_FROM} WHERE m.id = ?", (mailbox_id,))
    if r is None:
        raise NotFound("no such mailbox")
    mb = mailbox(r)
    if mb.account_id == actor:
        return mb, ALL_RIGHTS
    address = await actor_address(tx, actor)
    entries = [
        (str(i), str(g)) for i, g in await tx.rows(
            "SELECT identifier, rights FROM mailbox_acl WHERE mailbox_id = ?", (mailbox_id,)
        )
    ]
    idents = [i.removeprefix("-") for i, _ in entries]
    mine = {address, *EVERYONE} | await groups_of(tx, address, idents)
    rights = effective(entries, mine)
    if not rights and hide:
        # RFC 4314 6: no right at all, and the mailbox is not even said to exist
        raise NotFound("no such mailbox")
    return mb, rights


async def require(tx: Tx, actor: int, mailbox_id: int, needed: str) -> Mailbox:
    """The mailbox when the actor holds `needed`, else AccessDenied: an operation by id comes
    from a client that found the mailbox by name (`acl_rights`, which hides it) before, so a
    revoked share is refused as such, not made to vanish mid-command."""
    mb, rights = await rights_on(tx, actor, mailbox_id, hide=False)
    missing = ordered(set(needed) - set(rights))
    if missing:
        raise AccessDenied(missing)
    return mb


def _demand(rights: str, needed: str) -> None:
    missing = ordered(set(needed) - set(rights))
    if missing:
        raise AccessDenied(missing)


async def locked_rights(tx: Tx, actor: int, mailbox_ids: Sequence[int]) -> dict[int, str]:
    """The actor's rights on each mailbox, read after its row is locked (ascending id): a
    SETACL/DELETEACL, which locks the row too, commits wholly before or after the unit of
    work this runs in. NotFound when a mailbox does not exist."""
    ids = sorted(set(mailbox_ids))
    sql, params = tx.values(ids)
    owners = {
        int(i): int(a) for i, a in await tx.rows(
            f"SELECT id, account_id FROM mailboxes WHERE id IN {sql} ORDER BY id FOR UPDATE",
            params,
        )
    }
    out: dict[int, str] = {}
    for mailbox_id in ids:
        if mailbox_id not in owners:
            raise NotFound("no such mailbox")
        if owners[mailbox_id] == actor:
            out[mailbox_id] = ALL_RIGHTS
        else:
            out[mailbox_id] = (await rights_on(tx, actor, mailbox_id, hide=False))[1]
    return out


def guard_rights(actor: int, mailbox_id: int, needed: str, *, flags_on: bool = False) -> Guard:
    """A guard that demands `needed` on one mailbox; with `flags_on`, it answers the flags
    the actor may set there (APPEND, RFC 4314 4)."""

    async def guard(tx: Tx) -> FlagFilter | None:
        rights = (await locked_rights(tx, actor, [mailbox_id]))[mailbox_id]
        _demand(rights, needed)
        return may_set(rights) if flags_on else None

    return guard


def guard_store(actor: int, mailbox_id: int, op: FlagOp, flags: Sequence[str]) -> Guard:
    """RFC 4314 4 (STORE): refused only when the actor may change none of the flags the
    STORE names (a replace: none at all); otherwise the flags they may not change are left
    as they are ("SHOULD NOT fail if the user has rights to modify at least one flag")."""
    involved = flag_rights(op, flags)

    async def guard(tx: Tx) -> FlagFilter | None:
        rights = (await locked_rights(tx, actor, [mailbox_id]))[mailbox_id]
        if involved and not set(involved) & set(rights):
            raise AccessDenied(involved)
        return may_set(rights)

    return guard


def guard_transfer(actor: int, src: int, dst: int, source_needs: str) -> Guard:
    """COPY/MOVE: `source_needs` on the source, ``i`` on the target, and the flags the actor
    may set on the target (RFC 4314 4: the copies lose the others, e.g. \\Deleted without
    t)."""

    async def guard(tx: Tx) -> FlagFilter | None:
        rights = await locked_rights(tx, actor, [src, dst])
        _demand(rights[src], source_needs)
        _demand(rights[dst], "i")
        return may_set(rights[dst])

    return guard


async def check_identifier(tx: Tx, identifier: str) -> None:
    """An identifier must name something: everyone, an account, or a group (RFC 4314 3.1
    lets a server refuse identifiers it does not know)."""
    ident = identifier.removeprefix("-")
    if ident in EVERYONE:
        return
    if await tx.row("SELECT 1 FROM accounts WHERE address = ?", (ident,)) is not None:
        return
    if not ident.startswith("@") and await tx.row(
        "SELECT 1 FROM aliases WHERE source = ?", (ident,)
    ) is not None:
        return
    raise InvalidOperation(f"unknown identifier {identifier}")


async def lock_mailbox(tx: Tx, mailbox_id: int) -> None:
    """Lock a mailbox's row before its ACL changes: operations in it lock it before they
    read the ACL (`locked_rights`), so they see the change entirely or not at all."""
    await tx.row("SELECT id FROM mailboxes WHERE id = ? FOR UPDATE", (mailbox_id,))


class AccessControl(CoreBase):
    """The ACL rules of `store.api.AccessControl`; the message operations are the backend's."""

    def _acl_store(self) -> Store:
        return cast("Store", self)

    def _guarded(self) -> GuardedMessages:
        return cast("GuardedMessages", self)

    async def acl_rights(self, actor: int, mailbox_id: int) -> str:
        """The actor's effective rights; NotFound."""

        async def op(tx: Tx) -> str:
            return (await rights_on(tx, actor, mailbox_id))[1]

        return await self._view(op)

    async def acl_require(self, actor: int, mailbox_id: int, needed: str) -> Mailbox:
        """The mailbox if the actor holds `needed`; AccessDenied, NotFound."""
        return await self._view(lambda tx: require(tx, actor, mailbox_id, needed))

    async def acl_get(self, actor: int, mailbox_id: int) -> list[tuple[str, str]]:
        """The ACL (RFC 4314 3.3), the owner's implicit entry first; needs ``a``."""

        async def op(tx: Tx) -> list[tuple[str, str]]:
            mb = await require(tx, actor, mailbox_id, "a")
            owner = await actor_address(tx, mb.account_id)
            rows = await tx.rows(
                "SELECT identifier, rights FROM mailbox_acl WHERE mailbox_id = ?"
                " ORDER BY identifier", (mailbox_id,),
            )
            return [(owner, ALL_RIGHTS)] + [(str(i), str(g)) for i, g in rows]

        return await self._view(op)

    async def acl_set(self, actor: int, mailbox_id: int, identifier: str, rights: str) -> None:
        """RFC 4314 3.1 SETACL; needs ``a``."""
        ident = normalize_identifier(identifier)
        if not rights.startswith(("+", "-")):
            parse_rights(rights)  # ValueError before anything changes

        async def op(tx: Tx) -> None:
            await lock_mailbox(tx, mailbox_id)
            mb = await require(tx, actor, mailbox_id, "a")
            if ident.removeprefix("-") == await actor_address(tx, mb.account_id):
                raise InvalidOperation("the owner's rights cannot be changed")
            await check_identifier(tx, ident)
            r = await tx.row(
                "SELECT rights FROM mailbox_acl WHERE mailbox_id = ? AND identifier = ?"
                " FOR UPDATE", (mailbox_id, ident),
            )
            new = modify("" if r is None else str(r[0]), rights)
            if not new:
                await tx.run(
                    "DELETE FROM mailbox_acl WHERE mailbox_id = ? AND identifier = ?",
                    (mailbox_id, ident),
                )
                return
            await tx.run(
                "INSERT INTO mailbox_acl(mailbox_id, identifier, rights) VALUES (?, ?, ?)"
                " ON CONFLICT (mailbox_id, identifier) DO UPDATE SET rights = excluded.rights",
                (mailbox_id, ident, new),
            )

        await self._unit(op)

    async def acl_delete(self, actor: int, mailbox_id: int, identifier: str) -> None:
        """RFC 4314 3.2 DELETEACL; needs ``a``."""
        ident = normalize_identifier(identifier)

        async def op(tx: Tx) -> None:
            await lock_mailbox(tx, mailbox_id)
            mb = await require(tx, actor, mailbox_id, "a")
            if ident.removeprefix("-") == await actor_address(tx, mb.account_id):
                raise InvalidOperation("the owner's rights cannot be changed")
            await tx.run(
                "DELETE FROM mailbox_acl WHERE mailbox_id = ? AND identifier = ?",
                (mailbox_id, ident),
            )

        await self._unit(op)

    async def shared_mailboxes(self, actor: int) -> list[SharedMailbox]:
        """Other accounts' mailboxes the actor may look up, by owner address and name."""

        async def op(tx: Tx) -> list[SharedMailbox]:
            address = await actor_address(tx, actor)
            mine = {address, *EVERYONE} | await groups_of(tx, address)
            idents = sorted(mine | {"-" + i for i in mine})
            sql, params = tx.values(idents)
            rows = await tx.rows(
                f"SELECT a.mailbox_id, a.identifier, a.rights FROM mailbox_acl a"
                f" JOIN mailboxes m ON m.id = a.mailbox_id"
                f" WHERE a.identifier IN {sql} AND m.account_id <> ?",
                [*params, actor],
            )
            by_mailbox: dict[int, list[tuple[str, str]]] = {}
            for mb_id, ident, rights in rows:
                by_mailbox.setdefault(int(mb_id), []).append((str(ident), str(rights)))
            out: list[SharedMailbox] = []
            for mb_id, entries in by_mailbox.items():
                rights = effective(entries, mine)
                if "l" not in rights:
                    continue
                r = await tx.row(
                    f"SELECT {MB_COLS}, o.address FROM {MB_FROM}"
                    f" JOIN accounts o ON o.id = m.account_id WHERE m.id = ?", (mb_id,),
                )
                if r is not None:
                    out.append(SharedMailbox(str(r[-1]), mailbox(r[:-1]), rights))
            out.sort(key=lambda s: (s.owner, s.mailbox.name))
            return out

        return await self._view(op)

    async def create_mailbox_as(
        self, actor: int, owner_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """CREATE: ``k`` on the parent unless the actor owns the tree; the parent's ACL is
        inherited (RFC 4314 leaves the initial ACL to the server)."""
        name = canonical_mailbox_name(name)
        parent = name.rpartition("/")[0]

        async def op(tx: Tx) -> Mailbox:
            parent_id: int | None = None
            if parent:
                r = await tx.row(
                    "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?",
                    (owner_id, parent),
                )
                parent_id = None if r is None else int(r[0])
            if actor != owner_id:
                if parent_id is None:
                    # only the owner makes top-level mailboxes (or a hole in the tree)
                    raise AccessDenied("k", "no right to create mailboxes here")
                await require(tx, actor, parent_id, "k")
            new_id = await create_mailbox_row(tx, owner_id, name, special_use)
            if parent_id is not None:
                await tx.run(
                    "INSERT INTO mailbox_acl(mailbox_id, identifier, rights)"
                    " SELECT ?, identifier, rights FROM mailbox_acl WHERE mailbox_id = ?",
                    (new_id, parent_id),
                )
            r2 = await tx.row(f"SELECT {MB_COLS} FROM {MB_FROM} WHERE m.id = ?", (new_id,))
            assert r2 is not None
            return mailbox(r2)

        try:
            return await self._unit(op)
        except AlreadyExists:
            raise AlreadyExists(f"mailbox {name} already exists") from None

    async def delete_mailbox_as(self, actor: int, mailbox_id: int) -> None:
        """DELETE with ``x`` (RFC 4314 4), checked in the deletion's own transaction."""
        await self._guarded().delete_mailbox(
            mailbox_id, guard=guard_rights(actor, mailbox_id, "x"))

    async def list_messages_as(self, actor: int, mailbox_id: int) -> list[MessageRecord]:
        """SELECT/EXAMINE with ``r`` (checked in a read just before the listing's)."""
        await self.acl_require(actor, mailbox_id, "r")
        return await self._acl_store().list_messages(mailbox_id)

    async def listing_as(self, actor: int, mailbox_id: int) -> MessageListing:
        """SELECT/EXAMINE's shared listing with ``r``."""
        await self.acl_require(actor, mailbox_id, "r")
        return await self._acl_store().listing(mailbox_id)

    async def mailbox_status_as(self, actor: int, mailbox_id: int) -> MailboxStatus:
        """STATUS with ``r`` (RFC 4314 4)."""
        await self.acl_require(actor, mailbox_id, "r")
        return await self._acl_store().mailbox_status(mailbox_id)

    async def append_as(
        self, actor: int, mailbox_id: int, items: Sequence[AppendItem]
    ) -> list[MessageRecord]:
        """APPEND with ``i``; flags the actor may not set are left off (RFC 4314 4)."""
        return await self._guarded().append_many(
            mailbox_id, items, guard=guard_rights(actor, mailbox_id, "i", flags_on=True))

    async def store_flags_as(
        self,
        actor: int,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult:
        """STORE: only the flags the actor has the right for change (`guard_store`)."""
        flags = list(flags)
        return await self._guarded().store_flags(
            mailbox_id, uids, op, flags, unchangedsince,
            guard=guard_store(actor, mailbox_id, op, flags),
        )

    async def expunge_as(self, actor: int, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """EXPUNGE with ``e``."""
        return await self._guarded().expunge(
            mailbox_id, uids, guard=guard_rights(actor, mailbox_id, "e"))

    async def copy_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """COPY: ``r`` on the source, ``i`` on the target; flags per the target's rights."""
        return await self._guarded().copy(
            src_mailbox_id, uids, dst_mailbox_id,
            guard=guard_transfer(actor, src_mailbox_id, dst_mailbox_id, "r"),
        )

    async def move_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """MOVE: ``r``, ``t`` and ``e`` on the source, ``i`` on the target."""
        return await self._guarded().move(
            src_mailbox_id, uids, dst_mailbox_id,
            guard=guard_transfer(actor, src_mailbox_id, dst_mailbox_id, "rte"),
        )
