"""IMAP METADATA (RFC 5464): annotations of a mailbox, or of the server for one account, and
the account's limit on their number (RFC 5464 4.3: NO [METADATA TOOMANY])."""

from __future__ import annotations

from collections.abc import Sequence

from mailwright.store.api import MetadataLimit, NotFound
from mailwright.store.changes import ANNOTATIONS, account_channel
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx


class Metadata(CoreBase):
    async def metadata_get(self, account_id: int, mailbox_id: int | None) -> dict[str, bytes]:
        """The entries of a mailbox of the account (`mailbox_id`), or of the server for the
        account (None)."""

        async def op(tx: Tx) -> dict[str, bytes]:
            if mailbox_id is None:
                rows = await tx.rows(
                    "SELECT entry, value FROM server_metadata WHERE account_id = ?", (account_id,)
                )
            else:
                rows = await tx.rows(
                    "SELECT m.entry, m.value FROM mailbox_metadata m JOIN mailboxes b"
                    " ON b.id = m.mailbox_id WHERE m.mailbox_id = ? AND b.account_id = ?",
                    (mailbox_id, account_id),
                )
            return {str(e): bytes(v) for e, v in rows}

        return await self._view(op)

    async def metadata_set(
        self,
        account_id: int,
        mailbox_id: int | None,
        changes: Sequence[tuple[str, bytes | None]],
        max_entries: int,
    ) -> None:
        """Set (value) or remove (None) entries, all or none: MetadataLimit when the account
        would hold more than `max_entries` entries in all, NotFound (account or mailbox)."""

        async def op(tx: Tx) -> None:
            # the account row serialises concurrent changes of its annotation count
            if await tx.row("SELECT 1 FROM accounts WHERE id = ? FOR UPDATE", (account_id,)) is None:
                raise NotFound("no such account")
            if mailbox_id is not None and await tx.row(
                "SELECT 1 FROM mailboxes WHERE id = ? AND account_id = ?", (mailbox_id, account_id)
            ) is None:
                raise NotFound("no such mailbox")
            table, key = (
                ("server_metadata", account_id) if mailbox_id is None
                else ("mailbox_metadata", mailbox_id)
            )
            col = "account_id" if mailbox_id is None else "mailbox_id"
            tx.changed(account_channel(account_id, ANNOTATIONS), 0)  # IMAP NOTIFY
            for entry, value in changes:
                if value is None:
                    await tx.run(f"DELETE FROM {table} WHERE {col} = ? AND entry = ?", (key, entry))
                else:
                    await tx.run(
                        f"INSERT INTO {table}({col}, entry, value) VALUES (?, ?, ?)"
                        f" ON CONFLICT ({col}, entry) DO UPDATE SET value = excluded.value",
                        (key, entry, value),
                    )
            r = await tx.row(
                "SELECT (SELECT COUNT(*) FROM server_metadata WHERE account_id = ?)"
                " + (SELECT COUNT(*) FROM mailbox_metadata m JOIN mailboxes b"
                " ON b.id = m.mailbox_id WHERE b.account_id = ?)",
                (account_id, account_id),
            )
            total = int(r[0]) if r else 0
            if any(v is not None for _, v in changes) and total > max_entries:
                raise MetadataLimit(f"more than {max_entries} annotations")

        await self._unit(op)

    async def set_message_quota(self, account_id: int, limit: int) -> None:
        """The account's limit on its number of messages (0 = none, RFC 9208 5.2); NotFound."""

        async def op(tx: Tx) -> None:
            n = await tx.run(
                "UPDATE accounts SET quota_messages = ? WHERE id = ?", (max(limit, 0), account_id)
            )
            if n == 0:
                raise NotFound("no such account")

        await self._unit(op)

    async def message_quota(self, account_id: int) -> int:
        """The account's message limit (0 = none); NotFound."""

        async def op(tx: Tx) -> int:
            r = await tx.row("SELECT quota_messages FROM accounts WHERE id = ?", (account_id,))
            if r is None:
                raise NotFound("no such account")
            return int(r[0])

        return await self._view(op)

    async def metadata_digests(self, account_id: int) -> dict[tuple[int | None, str], bytes]:
        """Every annotation of the account, mailboxes' and server's, as a 16-octet digest of
        its value keyed by (mailbox id or None, entry): one query for IMAP NOTIFY to tell
        which entries changed (RFC 5465 5.8, 5.9) without keeping the values."""
        from hashlib import blake2b

        async def op(tx: Tx) -> dict[tuple[int | None, str], bytes]:
            out: dict[tuple[int | None, str], bytes] = {}
            rows = await tx.rows(
                "SELECT NULL, entry, value FROM server_metadata WHERE account_id = ?"
                " UNION ALL SELECT m.mailbox_id, m.entry, m.value FROM mailbox_metadata m"
                " JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = ?",
                (account_id, account_id),
            )
            for mb, entry, value in rows:
                key = (None if mb is None else int(mb), str(entry))
                out[key] = blake2b(bytes(value), digest_size=16).digest()
            return out

        return await self._view(op)
