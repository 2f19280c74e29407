"""IMAP URLAUTH (RFC 4467): the mailbox access keys that authorize URLs.

A key is a random secret per account and mailbox (RFC 4467 3 "mailbox access key"). It is
created by the first GENURLAUTH for the mailbox and dropped by RESETKEY, which invalidates
every URL authorized with it (RFC 4467 4: "RESETKEY ... invalidates all URLAUTH-authorized
URLs"); the next GENURLAUTH creates a fresh key.  The HMAC that turns a key and a URL into a
token is the protocol's business (imapd/urlauth.py); the store only keeps the secrets.
"""

from __future__ import annotations

import secrets

from mailwright.store.api import NotFound
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx

#: RFC 4467 7: "at least 128 bits"; HMAC-SHA1 takes keys of any length, 256 bits is cheap.
ACCESS_KEY_BYTES = 32


class UrlAuthKeys(CoreBase):
    async def urlauth_key(self, account_id: int, mailbox_id: int) -> bytes | None:
        """The mailbox access key of the account's mailbox, or None when it has none."""

        async def op(tx: Tx) -> bytes | None:
            r = await tx.row(
                "SELECT key FROM urlauth_keys WHERE mailbox_id = ? AND account_id = ?",
                (mailbox_id, account_id),
            )
            return bytes(r[0]) if r else None

        return await self._view(op)

    async def urlauth_key_ensure(self, account_id: int, mailbox_id: int) -> bytes:
        """The mailbox access key, created when the mailbox has none (GENURLAUTH, RFC 4467
        6.2); NotFound when the mailbox is not the account's."""
        fresh = secrets.token_bytes(ACCESS_KEY_BYTES)

        async def op(tx: Tx) -> bytes:
            if await tx.row(
                "SELECT 1 FROM mailboxes WHERE id = ? AND account_id = ?", (mailbox_id, account_id)
            ) is None:
                raise NotFound("no such mailbox")
            # two sessions generating at once agree on the first key written
            await tx.run(
                "INSERT INTO urlauth_keys(mailbox_id, account_id, key) VALUES (?, ?, ?)"
                " ON CONFLICT (mailbox_id) DO NOTHING",
                (mailbox_id, account_id, fresh),
            )
            r = await tx.row("SELECT key FROM urlauth_keys WHERE mailbox_id = ?", (mailbox_id,))
            assert r is not None
            return bytes(r[0])

        return await self._unit(op)

    async def urlauth_reset(self, account_id: int, mailbox_id: int | None) -> int:
        """Drop the access key of one mailbox, or of every mailbox of the account (None):
        RESETKEY (RFC 4467 6.1); how many keys were dropped."""

        async def op(tx: Tx) -> int:
            if mailbox_id is None:
                return await tx.run(
                    "DELETE FROM urlauth_keys WHERE account_id = ?", (account_id,)
                )
            return await tx.run(
                "DELETE FROM urlauth_keys WHERE account_id = ? AND mailbox_id = ?",
                (account_id, mailbox_id),
            )

        return await self._unit(op)
