"""Mailboxes as a hierarchy of names: create, delete, rename, subscribe, retention.

Names use "/" as the separator, and INBOX is case-insensitive (`canonical_mailbox_name`).
INBOX cannot be deleted; renaming INBOX moves its messages to a new mailbox and leaves INBOX
empty, its children staying where they are (RFC 9051 6.3.6); renaming any other mailbox
renames its inferiors too, matched by exact prefix (`rename.rename_plan`), and a collision
anywhere in the renamed subtree refuses the whole rename. Deleting a mailbox removes its
messages, uncharges the account's quota and releases the blobs. Every mailbox gets a fresh
UIDVALIDITY, so a name created again is a new mailbox to clients (RFC 9051 2.3.1.1).
"""

from __future__ import annotations

from mailwright.store.api import (
    AlreadyExists,
    InvalidOperation,
    Mailbox,
    NotFound,
    canonical_mailbox_name,
)
from mailwright.store.changes import MAILBOX_LIST, SUBSCRIPTIONS, account_channel
from mailwright.store.core.accounts import create_mailbox_row, drop_messages
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Guard, Row, Tx
from mailwright.store.rename import collisions, rename_plan

MB_COLS = (
    "m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, m.special_use,"
    " m.retention_days, (s.name IS NOT NULL)"
)
MB_FROM = "mailboxes m LEFT JOIN subscriptions s ON s.account_id = m.account_id AND s.name = m.name"


def mailbox(r: Row) -> Mailbox:
    return Mailbox(
        int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]),
        None if r[6] is None else str(r[6]), bool(r[8]), int(r[7]),
    )  # fmt: skip


async def find_mailbox(tx: Tx, account_id: int, name: str) -> Mailbox | None:
    r = await tx.row(
        f"SELECT {MB_COLS} FROM {MB_FROM} WHERE m.account_id = ? AND m.name = ?",
        (account_id, canonical_mailbox_name(name)),
    )
    return None if r is None else mailbox(r)


class Mailboxes(CoreBase):
    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        """The account's mailboxes, by name."""

        async def op(tx: Tx) -> list[Mailbox]:
            rows = await tx.rows(
                f"SELECT {MB_COLS} FROM {MB_FROM} WHERE m.account_id = ? ORDER BY m.name",
                (account_id,),
            )
            return [mailbox(r) for r in rows]

        return await self._view(op)

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        """The account's mailbox of that name (INBOX in any case), or None."""
        return await self._view(lambda tx: find_mailbox(tx, account_id, name))

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        """The mailbox, or None."""

        async def op(tx: Tx) -> Mailbox | None:
            r = await tx.row(f"SELECT {MB_COLS} FROM {MB_FROM} WHERE m.id = ?", (mailbox_id,))
            return None if r is None else mailbox(r)

        return await self._view(op)

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """A new empty mailbox: AlreadyExists, NotFound (no such account)."""
        name = canonical_mailbox_name(name)

        async def op(tx: Tx) -> Mailbox:
            await create_mailbox_row(tx, account_id, name, special_use)
            mb = await find_mailbox(tx, account_id, name)
            assert mb is not None
            return mb

        return await self._unit(op)

    async def delete_mailbox(self, mailbox_id: int, *, guard: Guard | None = None) -> None:
        """Delete a mailbox and its messages (quota uncharged, blobs released): NotFound,
        InvalidOperation for INBOX. Atomic; sessions that have it selected wake. A `guard`
        (store.core.acl) runs first in the same transaction."""

        async def op(tx: Tx) -> None:
            if guard is not None:
                await guard(tx)
            r = await tx.row(
                "SELECT name, highestmodseq, account_id FROM mailboxes WHERE id = ? FOR UPDATE",
                (mailbox_id,),
            )
            if r is None:
                raise NotFound("no such mailbox")
            if r[0] == "INBOX":
                raise InvalidOperation("INBOX cannot be deleted")
            size, count = await drop_messages(tx, [mailbox_id])
            if count:
                await tx.charge(int(r[2]), -size, -count)
            await tx.run("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))
            tx.changed(mailbox_id, int(r[1]) + 1)
            tx.changed(account_channel(int(r[2]), MAILBOX_LIST), 0)

        await self._unit(op)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its inferiors (INBOX: move its messages, see the module).
        NotFound (no `old`), AlreadyExists (`new` or a renamed inferior exists),
        InvalidOperation (into itself). Atomic."""
        old = canonical_mailbox_name(old)
        new = canonical_mailbox_name(new)

        async def op(tx: Tx) -> None:
            src = await tx.row(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = ? FOR UPDATE",
                (account_id, old),
            )
            if src is None:
                raise NotFound(f"no such mailbox: {old}")
            if await find_mailbox(tx, account_id, new) is not None:
                raise AlreadyExists(f"mailbox {new} already exists")
            tx.changed(account_channel(account_id, MAILBOX_LIST), 0)
            if new == old or new.startswith(old + "/"):
                raise InvalidOperation("cannot rename a mailbox into itself")
            if old == "INBOX":
                # RFC 9051 6.3.6: renaming INBOX moves its messages to a new mailbox and
                # leaves INBOX empty; INBOX's children are not renamed.
                from mailwright.store.core.messages import move_all  # imports acl, which imports us

                dst = await create_mailbox_row(tx, account_id, new, None)
                await move_all(tx, int(src[0]), dst)
                return
            # RFC 9051 6.3.6: the inferior names move too. Matched by exact prefix, never LIKE:
            # `_`, `%` and `\\` are ordinary characters in a mailbox name.
            children = await tx.rows(
                "SELECT id, name FROM mailboxes WHERE account_id = ?"
                " AND (name = ? OR substr(name, 1, ?) = ?) ORDER BY id FOR UPDATE",
                (account_id, old, len(old) + 1, old + "/"),
            )
            plan = rename_plan(old, new, [(int(i), str(n)) for i, n in children])
            names = await tx.rows("SELECT name FROM mailboxes WHERE account_id = ?", (account_id,))
            taken = collisions(plan, (str(r[0]) for r in names))
            if taken:
                raise AlreadyExists(f"mailbox {taken[0]} already exists")
            for mb_id, name, renamed in plan:
                try:
                    await tx.run("UPDATE mailboxes SET name = ? WHERE id = ?", (renamed, mb_id))
                except AlreadyExists:
                    # a mailbox created by another node since our look
                    raise AlreadyExists(f"mailbox {renamed} already exists") from None
                await tx.run(
                    "UPDATE subscriptions SET name = ? WHERE account_id = ? AND name = ?",
                    (renamed, account_id, name),
                )

        await self._unit(op)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Subscribe or unsubscribe a name (which need not exist, RFC 9051 6.3.7); NotFound
        when the account does not exist."""
        name = canonical_mailbox_name(name)

        async def op(tx: Tx) -> None:
            tx.changed(account_channel(account_id, SUBSCRIPTIONS), 0)
            if subscribed:
                await tx.run(
                    "INSERT INTO subscriptions(account_id, name) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (account_id, name),
                )
            else:
                await tx.run(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                    (account_id, name),
                )

        try:
            await self._unit(op)
        except NotFound:
            raise NotFound("no such account") from None

    async def list_subscriptions(self, account_id: int) -> list[str]:
        """The account's subscribed names, sorted."""

        async def op(tx: Tx) -> list[str]:
            rows = await tx.rows(
                "SELECT name FROM subscriptions WHERE account_id = ? ORDER BY name", (account_id,)
            )
            return [str(r[0]) for r in rows]

        return await self._view(op)

    async def set_retention(self, mailbox_id: int, days: int) -> None:
        """Keep the mailbox's messages `days` days (0: forever); the retention sweep applies it."""

        async def op(tx: Tx) -> None:
            await tx.run(
                "UPDATE mailboxes SET retention_days = ? WHERE id = ?", (days, mailbox_id)
            )

        await self._unit(op)

    async def message_counts(self, account_id: int) -> dict[int, tuple[int, int, int, int]]:
        """Per mailbox of the account: (messages, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ), from
        one statement (one snapshot). IMAP NOTIFY SET STATUS (RFC 5465 3) answers for every
        mailbox at once with it, rather than one status query per mailbox."""

        async def op(tx: Tx) -> dict[int, tuple[int, int, int, int]]:
            rows = await tx.rows(
                "SELECT m.id, (SELECT COUNT(*) FROM messages x WHERE x.mailbox_id = m.id),"
                " m.uidnext, m.uidvalidity, m.highestmodseq FROM mailboxes m"
                " WHERE m.account_id = ?",
                (account_id,),
            )
            return {int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

        return await self._view(op)
