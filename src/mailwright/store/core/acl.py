"""Mailbox sharing: access control lists (RFC 4314), kept and enforced in the store.

Theory of operation. A mailbox belongs to one account, whose rights on it are all of
``lrswipkxtea`` and cannot be changed. Anyone else holds the rights the mailbox's ACL grants
to identifiers that match them:

- their own address;
- a group: an alias whose targets include their address (an alias that expands to several
  accounts is how an operator makes a group; one level, as delivery expands it);
- ``authenticated`` (every account: every actor here is one) and ``anyone``;

minus the rights of the negative entries (``-identifier``, RFC 4314 2) that match. An actor
without any right on a mailbox does not learn that it exists: `acl_rights`, which protocols
use to resolve a name, answers `NotFound` then, as for a mailbox that does not exist (RFC 4314
6, so that names cannot be probed). An operation by mailbox id without the right it needs
(none at all included) raises `AccessDenied`, which names the missing rights.

The message operations (`append_as`, `store_flags_as`, ...) check the rights in a read of
their own, then run the backend's operation: a right revoked while an operation runs takes
effect at the next one, as for a session that has the mailbox selected. Every protocol
(IMAP, webmail, Sieve delivery) goes through these methods for mailboxes a client names.

\\Seen on a shared mailbox is one flag of the message for everybody (RFC 4314 allows both):
a reader without ``s`` cannot change it, and reading does not set it for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

from mailwright.store.api import (
    ALL_RIGHTS,
    AccessDenied,
    AlreadyExists,
    AppendItem,
    FlagOp,
    InvalidOperation,
    Mailbox,
    MailboxStatus,
    MessageRecord,
    NotFound,
    SharedMailbox,
    StoreFlagsResult,
    canonical_mailbox_name,
)
from mailwright.store.core.accounts import create_mailbox_row
from mailwright.store.core.base import CoreBase
from mailwright.store.core.mailboxes import MB_COLS, MB_FROM, mailbox
from mailwright.store.core.tx import Tx, as_list

if TYPE_CHECKING:
    from mailwright.store.api import Store

#: RFC 4314 2.1.1 with RIGHTS=texk: the obsolete "c" is the "create" right (k), "d" the
#: "delete" rights (x, t and e); accepted from clients, never shown
OBSOLETE = {"c": "k", "d": "xte"}
#: identifiers that match every account (RFC 4314 2: "anyone"; "authenticated" as Dovecot)
EVERYONE = ("anyone", "authenticated")
MAX_IDENTIFIER = 320


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


def flag_rights(op: FlagOp, flags: Iterable[str]) -> str:
    """RFC 4314 4 (STORE): \\Seen needs s, \\Deleted needs t, any other flag w. Replacing the
    flags may clear any of them, so it needs all three."""
    if op is FlagOp.REPLACE:
        return "stw"
    need: set[str] = set()
    for f in flags:
        need.add("s" if f == "\\Seen" else "t" if f == "\\Deleted" else "w")
    return ordered(need)


def allowed_flags(rights: str, flags: Iterable[str]) -> tuple[str, ...]:
    """The flags of an APPEND the actor may set (RFC 4314 4: the others are not set)."""
    return tuple(
        f for f in flags
        if ("s" if f == "\\Seen" else "t" if f == "\\Deleted" else "w") in rights
    )


async def actor_address(tx: Tx, actor: int) -> str:
    r = await tx.row("SELECT address FROM accounts WHERE id = ?", (actor,))
    if r is None:
        raise NotFound("no such account")
    return str(r[0])


async def groups_of(tx: Tx, address: str, candidates: Sequence[str] | None = None) -> set[str]:
    """The aliases (groups) whose targets include `address`, among `candidates` if given."""
    if candidates is not None:
        names = [c for c in candidates if "@" in c and not c.startswith("@")]
        if not names:
            return set()
        sql, params = tx.values(names)
        rows = await tx.rows(f"SELECT source, targets FROM aliases WHERE source IN {sql}", params)
    else:
        rows = await tx.rows("SELECT source, targets FROM aliases")
    return {
        str(src) for src, targets in rows
        if not str(src).startswith("@") and address in as_list(targets)
    }


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


class AccessControl(CoreBase):
    """The ACL rules of `store.api.AccessControl`; the message operations are the backend's."""

    def _acl_store(self) -> Store:
        return cast("Store", self)

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
        """DELETE with ``x`` (RFC 4314 4)."""
        await self.acl_require(actor, mailbox_id, "x")
        await self._acl_store().delete_mailbox(mailbox_id)

    async def list_messages_as(self, actor: int, mailbox_id: int) -> list[MessageRecord]:
        """SELECT/EXAMINE with ``r``."""
        await self.acl_require(actor, mailbox_id, "r")
        return await self._acl_store().list_messages(mailbox_id)

    async def mailbox_status_as(self, actor: int, mailbox_id: int) -> MailboxStatus:
        """STATUS with ``r`` (RFC 4314 4)."""
        await self.acl_require(actor, mailbox_id, "r")
        return await self._acl_store().mailbox_status(mailbox_id)

    async def append_as(
        self, actor: int, mailbox_id: int, items: Sequence[AppendItem]
    ) -> list[MessageRecord]:
        """APPEND with ``i``; flags the actor may not set are left off."""
        _, rights = await self._view(lambda tx: rights_on(tx, actor, mailbox_id, hide=False))
        if "i" not in rights:
            raise AccessDenied("i")
        if rights != ALL_RIGHTS:
            items = [
                AppendItem(it.blob, allowed_flags(rights, it.flags), it.internaldate)
                for it in items
            ]
        return await self._acl_store().append_many(mailbox_id, items)

    async def store_flags_as(
        self,
        actor: int,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult:
        """STORE with the rights its flags need (`flag_rights`)."""
        flags = list(flags)
        await self.acl_require(actor, mailbox_id, flag_rights(op, flags))
        return await self._acl_store().store_flags(mailbox_id, uids, op, flags, unchangedsince)

    async def expunge_as(self, actor: int, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """EXPUNGE with ``e``."""
        await self.acl_require(actor, mailbox_id, "e")
        return await self._acl_store().expunge(mailbox_id, uids)

    async def copy_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """COPY: ``r`` on the source, ``i`` on the target."""
        await self.acl_require(actor, src_mailbox_id, "r")
        await self.acl_require(actor, dst_mailbox_id, "i")
        return await self._acl_store().copy(src_mailbox_id, uids, dst_mailbox_id)

    async def move_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """MOVE: ``r``, ``t`` and ``e`` on the source, ``i`` on the target."""
        await self.acl_require(actor, src_mailbox_id, "rte")
        await self.acl_require(actor, dst_mailbox_id, "i")
        return await self._acl_store().move(src_mailbox_id, uids, dst_mailbox_id)
