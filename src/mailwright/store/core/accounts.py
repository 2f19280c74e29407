"""Domains, accounts, aliases and the POP3 maildrop lock.

A domain can be deleted only once it holds no account; its aliases go with it. An account is
created with the default mailboxes (INBOX and the special-use ones, RFC 6154), all subscribed;
deleting it releases its messages' blobs and everything it owns. An alias may not shadow an
account. Addresses are matched to a domain literally: `_` and `%` in a domain are ordinary
characters (no LIKE), and the match is case-sensitive, as addresses are kept canonical.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwright.store.api import (
    DEFAULT_MAILBOXES,
    Account,
    Alias,
    AlreadyExists,
    Domain,
    InvalidOperation,
    NotFound,
    Usage,
)
from mailwright.store.changes import DIRECTORY, MAILBOX_LIST, account_channel
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Row, Tx, as_list, as_time

ACC_COLS = "id, address, password_hash, quota_bytes, pop3_keep, disabled, created"
# the address is in `domain`: its last length(domain) + 1 characters are "@" + domain
IN_DOMAIN = "(length(address) > length(?) AND substr(address, length(address) - length(?)) = ?)"


def _in_domain(domain: str) -> tuple[str, str, str]:
    return domain, domain, "@" + domain


def account(r: Row) -> Account:
    return Account(
        int(r[0]), str(r[1]), str(r[2]), int(r[3]), bool(r[4]), bool(r[5]), as_time(r[6])
    )


async def create_mailbox_row(tx: Tx, account_id: int, name: str, special_use: str | None) -> int:
    """A new, empty mailbox with a fresh UIDVALIDITY (RFC 9051 2.3.1.1); AlreadyExists."""
    try:
        row = await tx.row(
            "INSERT INTO mailboxes(account_id, name, uidvalidity, special_use)"
            " VALUES (?, ?, ?, ?) RETURNING id",
            (account_id, name, await tx.new_uidvalidity(), special_use),
        )
    except AlreadyExists:
        raise AlreadyExists(f"mailbox {name} already exists") from None
    except NotFound:
        raise NotFound("no such account") from None
    assert row is not None
    tx.changed(account_channel(account_id, MAILBOX_LIST), 0)  # IMAP NOTIFY MailboxName
    return int(row[0])


async def drop_messages(tx: Tx, mailbox_ids: Sequence[int]) -> tuple[int, int]:
    """Remove every message (and expunge record) of the mailboxes, releasing their blobs; the
    octets and messages removed, for the caller to uncharge. The mailbox rows must be locked."""
    if not mailbox_ids:
        return 0, 0
    ids, params = tx.values(list(mailbox_ids))
    counts = await tx.rows(
        f"SELECT blob_id, COUNT(*), COALESCE(SUM(size), 0) FROM messages"
        f" WHERE mailbox_id IN {ids} GROUP BY blob_id ORDER BY blob_id",
        params,
    )
    await tx.run(f"DELETE FROM messages WHERE mailbox_id IN {ids}", params)
    await tx.run(f"DELETE FROM expunged WHERE mailbox_id IN {ids}", params)
    for blob_id, n, _ in counts:
        await tx.unref_blob(str(blob_id), int(n))
    return sum(int(r[2]) for r in counts), sum(int(r[1]) for r in counts)


class Accounts(CoreBase):
    # -- domains

    async def add_domain(self, name: str) -> Domain:
        """A new local domain; AlreadyExists."""

        async def op(tx: Tx) -> Domain:
            try:
                r = await tx.row(
                    "INSERT INTO domains(name, created) VALUES (?, mw_clock()) RETURNING created",
                    (name,),
                )
            except AlreadyExists:
                raise AlreadyExists(f"domain {name} already exists") from None
            assert r is not None
            tx.changed(DIRECTORY, 0)  # every node forgets its cached look-ups at COMMIT
            return Domain(name, as_time(r[0]))

        return await self._unit(op)

    async def delete_domain(self, name: str) -> None:
        """Delete a domain and its aliases: InvalidOperation while it has accounts, NotFound."""

        async def op(tx: Tx) -> None:
            r = await tx.row(f"SELECT COUNT(*) FROM accounts WHERE {IN_DOMAIN}", _in_domain(name))
            n = int(r[0]) if r else 0
            if n:
                raise InvalidOperation(f"domain {name} still has {n} account(s)")
            if await tx.run("DELETE FROM domains WHERE name = ?", (name,)) == 0:
                raise NotFound(f"no such domain: {name}")
            await tx.run(
                "DELETE FROM aliases WHERE source = ? OR"
                " (length(source) > length(?) AND substr(source, length(source) - length(?)) = ?)",
                ("@" + name, *_in_domain(name)),
            )
            tx.changed(DIRECTORY, 0)

        await self._unit(op)

    async def list_domains(self) -> list[Domain]:
        """Every domain, by name."""

        async def op(tx: Tx) -> list[Domain]:
            rows = await tx.rows("SELECT name, created FROM domains ORDER BY name")
            return [Domain(str(r[0]), as_time(r[1])) for r in rows]

        return await self._view(op)

    async def has_domain(self, name: str) -> bool:
        """Whether `name` is a local domain (exact, canonical name)."""

        async def op(tx: Tx) -> bool:
            return await tx.row("SELECT 1 FROM domains WHERE name = ?", (name,)) is not None

        return await self._view(op)

    # -- accounts

    async def add_account(self, address: str, password_hash: str, quota_bytes: int = 0) -> Account:
        """A new account with the default mailboxes, subscribed. NotFound when the domain is
        not local, AlreadyExists when the address is taken. Atomic."""
        domain = address.rpartition("@")[2]

        async def op(tx: Tx) -> Account:
            if await tx.row("SELECT 1 FROM domains WHERE name = ?", (domain,)) is None:
                raise NotFound(f"unknown domain: {domain}")
            try:
                r = await tx.row(
                    f"INSERT INTO accounts(address, password_hash, quota_bytes, created)"
                    f" VALUES (?, ?, ?, mw_clock()) RETURNING {ACC_COLS}",
                    (address, password_hash, quota_bytes),
                )
            except AlreadyExists:
                raise AlreadyExists(f"account {address} already exists") from None
            assert r is not None
            acc = account(r)
            tx.changed(DIRECTORY, 0)
            for name, special in DEFAULT_MAILBOXES:
                await create_mailbox_row(tx, acc.id, name, special)
            await tx.run_many(
                "INSERT INTO subscriptions(account_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(acc.id, name) for name, _ in DEFAULT_MAILBOXES],
            )
            return acc

        return await self._unit(op)

    async def get_account(self, account_id: int) -> Account | None:
        """The account, or None."""

        async def op(tx: Tx) -> Account | None:
            r = await tx.row(f"SELECT {ACC_COLS} FROM accounts WHERE id = ?", (account_id,))
            return None if r is None else account(r)

        return await self._view(op)

    async def find_account(self, address: str) -> Account | None:
        """The account whose canonical address is `address`, or None."""

        async def op(tx: Tx) -> Account | None:
            r = await tx.row(f"SELECT {ACC_COLS} FROM accounts WHERE address = ?", (address,))
            return None if r is None else account(r)

        return await self._view(op)

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        """Every account (of one domain), by address."""

        async def op(tx: Tx) -> list[Account]:
            if domain is None:
                rows = await tx.rows(f"SELECT {ACC_COLS} FROM accounts ORDER BY address")
            else:
                rows = await tx.rows(
                    f"SELECT {ACC_COLS} FROM accounts WHERE {IN_DOMAIN} ORDER BY address",
                    _in_domain(domain),
                )
            return [account(r) for r in rows]

        return await self._view(op)

    async def set_password(self, account_id: int, password_hash: str) -> None:
        """Replace the password hash; NotFound."""

        async def op(tx: Tx) -> None:
            n = await tx.run(
                "UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id)
            )
            if n == 0:
                raise NotFound("no such account")
            tx.changed(DIRECTORY, 0)

        await self._unit(op)

    async def update_account(
        self,
        account_id: int,
        *,
        quota_bytes: int | None = None,
        pop3_keep: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Change the settings given (None keeps one); the account as it now is. NotFound."""

        async def op(tx: Tx) -> Account:
            r = await tx.row(
                f"UPDATE accounts SET quota_bytes = COALESCE(?, quota_bytes),"
                f" pop3_keep = COALESCE(?, pop3_keep), disabled = COALESCE(?, disabled)"
                f" WHERE id = ? RETURNING {ACC_COLS}",
                (quota_bytes, pop3_keep, disabled, account_id),
            )
            if r is None:
                raise NotFound("no such account")
            tx.changed(DIRECTORY, 0)
            return account(r)

        return await self._unit(op)

    async def delete_account(self, account_id: int) -> None:
        """Delete the account, its mailboxes and messages (their blobs are released), its
        scripts, grants and maildrop lock. NotFound. Atomic; sessions on its mailboxes wake."""

        async def op(tx: Tx) -> None:
            boxes = [int(r[0]) for r in await tx.rows(
                "SELECT id FROM mailboxes WHERE account_id = ? ORDER BY id FOR UPDATE",
                (account_id,))]  # fmt: skip
            if await tx.row(
                "SELECT 1 FROM accounts WHERE id = ? FOR UPDATE", (account_id,)
            ) is None:
                raise NotFound("no such account")
            await drop_messages(tx, boxes)
            # what others shared with this address must not pass to a later account of the
            # same address (RFC 4314 rights are by identifier)
            await tx.run(
                "DELETE FROM mailbox_acl WHERE identifier IN"
                " (SELECT address FROM accounts WHERE id = ?"
                " UNION SELECT '-' || address FROM accounts WHERE id = ?)",
                (account_id, account_id),
            )
            await tx.run("DELETE FROM accounts WHERE id = ?", (account_id,))
            await tx.run("DELETE FROM maildrop_locks WHERE account_id = ?", (account_id,))
            tx.changed(DIRECTORY, 0)
            for mb in boxes:
                tx.changed(mb, 0)

        await self._unit(op)

    async def usage(self, account_id: int) -> Usage:
        """Octets and messages the account's mailboxes hold; NotFound."""

        async def op(tx: Tx) -> Usage:
            r = await tx.row(
                "SELECT used_bytes, used_messages FROM accounts WHERE id = ?", (account_id,)
            )
            if r is None:
                raise NotFound("no such account")
            return Usage(int(r[0]), int(r[1]))

        return await self._view(op)

    # -- aliases

    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        """An alias (or "@domain" catch-all) of a local domain: NotFound when the domain is not
        local; AlreadyExists when the source is an account or an alias already."""
        domain = source.rpartition("@")[2]

        async def op(tx: Tx) -> Alias:
            if await tx.row("SELECT 1 FROM domains WHERE name = ?", (domain,)) is None:
                raise NotFound(f"unknown domain: {domain}")
            if await tx.row("SELECT 1 FROM accounts WHERE address = ?", (source,)):
                raise AlreadyExists(f"{source} is an account")
            try:
                await tx.run(
                    "INSERT INTO aliases(source, targets) VALUES (?, ?)",
                    (source, tx.text_list(targets)),
                )
            except AlreadyExists:
                raise AlreadyExists(f"alias {source} already exists") from None
            tx.changed(DIRECTORY, 0)
            return Alias(source, tuple(targets))

        return await self._unit(op)

    async def delete_alias(self, source: str) -> None:
        """Delete an alias; NotFound."""

        async def op(tx: Tx) -> None:
            if await tx.run("DELETE FROM aliases WHERE source = ?", (source,)) == 0:
                raise NotFound(f"no such alias: {source}")
            tx.changed(DIRECTORY, 0)

        await self._unit(op)

    async def get_alias(self, source: str) -> Alias | None:
        """The alias, or None."""

        async def op(tx: Tx) -> Alias | None:
            r = await tx.row("SELECT targets FROM aliases WHERE source = ?", (source,))
            return None if r is None else Alias(source, tuple(as_list(r[0])))

        return await self._view(op)

    async def list_aliases(self) -> list[Alias]:
        """Every alias, by source."""

        async def op(tx: Tx) -> list[Alias]:
            rows = await tx.rows("SELECT source, targets FROM aliases ORDER BY source")
            return [Alias(str(r[0]), tuple(as_list(r[1]))) for r in rows]

        return await self._view(op)

    # -- POP3 maildrop lock (RFC 1939 8: exclusive access), shared by every node

    async def lock_maildrop(self, account_id: int, owner: str, ttl: float) -> bool:
        """Take or extend the account's maildrop lock for `ttl` seconds; False while another
        owner holds an unexpired lock."""

        async def op(tx: Tx) -> bool:
            r = await tx.row(
                "INSERT INTO maildrop_locks(account_id, owner, expires)"
                " VALUES (?, ?, mw_clock_after(?)) ON CONFLICT (account_id) DO UPDATE"
                " SET owner = excluded.owner, expires = excluded.expires"
                " WHERE maildrop_locks.owner = excluded.owner"
                " OR maildrop_locks.expires <= mw_clock() RETURNING owner",
                (account_id, owner, float(ttl)),
            )
            return r is not None

        return await self._single(op)

    async def unlock_maildrop(self, account_id: int, owner: str) -> None:
        """Release the lock if `owner` holds it."""

        async def op(tx: Tx) -> None:
            await tx.run(
                "DELETE FROM maildrop_locks WHERE account_id = ? AND owner = ?", (account_id, owner)
            )

        await self._single(op)

    async def list_maildrop_locks(self) -> list[tuple[int, str]]:
        """(account id, owner) of every lock, expired ones included, by account."""

        async def op(tx: Tx) -> list[tuple[int, str]]:
            rows = await tx.rows("SELECT account_id, owner FROM maildrop_locks ORDER BY account_id")
            return [(int(r[0]), str(r[1])) for r in rows]

        return await self._view(op)
