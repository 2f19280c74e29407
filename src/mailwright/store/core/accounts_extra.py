"""What an account keeps besides its mail: send-as grants, Sieve scripts and the memory of
vacation replies.

Send-as: addresses an administrator lets an account use in From:/Sender: (RFC 6409 8.1 leaves
the MSA's rules to local policy). Sieve: an account's scripts, at most one of them active
(RFC 5804 storage), and keys remembered for a while (vacation's :days, RFC 5230 4.6; the
duplicate test, RFC 7352 3).
"""

from __future__ import annotations

from mailwright.store.api import AlreadyExists, InvalidOperation, NotFound, SieveScriptInfo
from mailwright.store.changes import DIRECTORY
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx


async def _account_exists(tx: Tx, account_id: int) -> None:
    if await tx.row("SELECT 1 FROM accounts WHERE id = ?", (account_id,)) is None:
        raise NotFound("no such account")


class SendAs(CoreBase):
    async def grant_send_as(self, account_id: int, address: str) -> None:
        """Let the account send as `address` (granting twice is one grant). NotFound when the
        account does not exist."""

        async def op(tx: Tx) -> None:
            await _account_exists(tx, account_id)
            await tx.run(
                "INSERT INTO send_as(account_id, address) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (account_id, address),
            )

        await self._unit(op)

    async def revoke_send_as(self, account_id: int, address: str) -> bool:
        """Take a grant back; False if there was none."""

        async def op(tx: Tx) -> bool:
            n = await tx.run(
                "DELETE FROM send_as WHERE account_id = ? AND address = ?", (account_id, address)
            )
            return n > 0

        return await self._unit(op)

    async def list_send_as(self, account_id: int | None = None) -> list[tuple[int, str]]:
        """(account id, address) grants, of one account or all, ordered."""

        async def op(tx: Tx) -> list[tuple[int, str]]:
            if account_id is None:
                rows = await tx.rows("SELECT account_id, address FROM send_as ORDER BY 1, 2")
            else:
                rows = await tx.rows(
                    "SELECT account_id, address FROM send_as WHERE account_id = ? ORDER BY 2",
                    (account_id,),
                )
            return [(int(r[0]), str(r[1])) for r in rows]

        return await self._view(op)


class SieveScripts(CoreBase):
    async def sieve_put(self, account_id: int, name: str, content: str) -> None:
        """Create or replace a script (its active state is kept). NotFound: no such account."""

        async def op(tx: Tx) -> None:
            await _account_exists(tx, account_id)
            await tx.run(
                "INSERT INTO sieve_scripts(account_id, name, content, updated)"
                " VALUES (?, ?, ?, mw_clock()) ON CONFLICT (account_id, name) DO UPDATE"
                " SET content = excluded.content, updated = excluded.updated",
                (account_id, name, content),
            )
            tx.changed(DIRECTORY, 0)  # the active script may have changed: nodes forget it

        await self._unit(op)

    async def sieve_get(self, account_id: int, name: str) -> str | None:
        """A script's text, or None."""

        async def op(tx: Tx) -> str | None:
            r = await tx.row(
                "SELECT content FROM sieve_scripts WHERE account_id = ? AND name = ?",
                (account_id, name),
            )
            return None if r is None else str(r[0])

        return await self._view(op)

    async def sieve_list(self, account_id: int) -> list[SieveScriptInfo]:
        """The account's scripts by name, with their size in octets (RFC 5804 2.7)."""

        async def op(tx: Tx) -> list[SieveScriptInfo]:
            rows = await tx.rows(
                "SELECT name, active, content FROM sieve_scripts WHERE account_id = ?"
                " ORDER BY name",
                (account_id,),
            )
            return [SieveScriptInfo(str(r[0]), bool(r[1]), len(str(r[2]).encode())) for r in rows]

        return await self._view(op)

    async def sieve_delete(self, account_id: int, name: str) -> None:
        """Delete a script: NotFound if there is none, InvalidOperation if it is the active one
        (RFC 5804 2.10)."""

        async def op(tx: Tx) -> None:
            r = await tx.row(
                "SELECT active FROM sieve_scripts WHERE account_id = ? AND name = ? FOR UPDATE",
                (account_id, name),
            )
            if r is None:
                raise NotFound(f"no script {name!r}")
            if r[0]:
                raise InvalidOperation("the active script cannot be deleted")  # RFC 5804 2.10
            await tx.run(
                "DELETE FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, name)
            )

        await self._unit(op)

    async def sieve_rename(self, account_id: int, old: str, new: str) -> None:
        """Rename a script, keeping its active state: NotFound if `old` does not exist,
        AlreadyExists if `new` does (RFC 5804 2.11.1)."""

        async def op(tx: Tx) -> None:
            if await tx.row(
                "SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?", (account_id, new)
            ):
                raise AlreadyExists(f"script {new!r} exists")
            n = await tx.run(
                "UPDATE sieve_scripts SET name = ? WHERE account_id = ? AND name = ?",
                (new, account_id, old),
            )
            if n == 0:
                raise NotFound(f"no script {old!r}")
            tx.changed(DIRECTORY, 0)

        await self._unit(op)

    async def sieve_activate(self, account_id: int, name: str | None) -> None:
        """Make `name` the one active script (None: no script active). NotFound if there is no
        such script. Two activations at once still leave one active script."""

        async def op(tx: Tx) -> None:
            # the account row's lock makes concurrent activations take turns
            await tx.row("SELECT 1 FROM accounts WHERE id = ? FOR UPDATE", (account_id,))
            if name is not None and await tx.row(
                "SELECT 1 FROM sieve_scripts WHERE account_id = ? AND name = ?",
                (account_id, name),
            ) is None:
                raise NotFound(f"no script {name!r}")
            await tx.run(
                "UPDATE sieve_scripts SET active = (name = ?) WHERE account_id = ?"
                " AND (active OR name = ?)",
                (name or "", account_id, name or ""),
            )
            tx.changed(DIRECTORY, 0)

        await self._unit(op)

    async def sieve_active(self, account_id: int) -> tuple[str, str] | None:
        """The active script's (name, text), or None."""

        async def op(tx: Tx) -> tuple[str, str] | None:
            r = await tx.row(
                "SELECT name, content FROM sieve_scripts WHERE account_id = ? AND active = ?",
                (account_id, True),
            )
            return None if r is None else (str(r[0]), str(r[1]))

        return await self._view(op)

    async def sieve_remember(self, account_id: int, key: str, seconds: float) -> bool:
        """Remember `key` for `seconds` from now; True if it was not remembered already (the
        vacation reply or the duplicate may go). Expired keys are forgotten, 100 at a time."""

        async def op(tx: Tx) -> bool:
            r = await tx.row(
                "SELECT expires > mw_clock() FROM sieve_memory WHERE account_id = ? AND key = ?"
                " FOR UPDATE",
                (account_id, key),
            )
            await tx.run(
                "INSERT INTO sieve_memory(account_id, key, expires)"
                " VALUES (?, ?, mw_clock_after(?))"
                " ON CONFLICT (account_id, key) DO UPDATE SET expires = excluded.expires",
                (account_id, key, float(seconds)),
            )
            await tx.run(
                "DELETE FROM sieve_memory WHERE (account_id, key) IN (SELECT account_id, key"
                " FROM sieve_memory WHERE expires <= mw_clock() LIMIT 100)"
            )
            return r is None or not r[0]

        return await self._unit(op)

    async def sieve_seen(self, account_id: int, key: str) -> bool:
        """Whether `key` is remembered (and not expired)."""

        async def op(tx: Tx) -> bool:
            r = await tx.row(
                "SELECT 1 FROM sieve_memory WHERE account_id = ? AND key = ?"
                " AND expires > mw_clock()",
                (account_id, key),
            )
            return r is not None

        return await self._view(op)
