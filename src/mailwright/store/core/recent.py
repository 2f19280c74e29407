"""IMAP \\Recent (RFC 3501 2.3.2), kept per mailbox as Dovecot does: a message is recent to the
first session that sees it. The mailbox keeps its first recent UID; a session that claims moves
it past what it has seen, so no later session sees those messages as recent."""

from __future__ import annotations

from mailwright.store.api import NotFound
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx


async def _first_recent(tx: Tx, mailbox_id: int, lock: bool) -> int:
    r = await tx.row(
        "SELECT first_recent_uid FROM mailboxes WHERE id = ?" + (" FOR UPDATE" if lock else ""),
        (mailbox_id,),
    )
    if r is None:
        raise NotFound("no such mailbox")
    return int(r[0])


class RecentMarks(CoreBase):
    async def claim_recent(self, mailbox_id: int, upto_uid: int, claim: bool) -> int:
        """The mailbox's first recent UID; with `claim`, moved past `upto_uid` in the same
        unit, so two sessions claiming at once see each message recent once. NotFound."""
        first = await self._view(lambda tx: _first_recent(tx, mailbox_id, False))
        if not claim or upto_uid < first:
            return first  # nothing to take: no write transaction

        async def op(tx: Tx) -> int:
            first = await _first_recent(tx, mailbox_id, True)
            if upto_uid >= first:
                await tx.run(
                    "UPDATE mailboxes SET first_recent_uid = ? WHERE id = ?",
                    (upto_uid + 1, mailbox_id),
                )
            return first

        return await self._unit(op)

    async def count_recent(self, mailbox_id: int) -> int:
        """Messages no session has claimed yet (STATUS RECENT)."""

        async def op(tx: Tx) -> int:
            r = await tx.row(
                "SELECT COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                " WHERE b.id = ? AND m.uid >= b.first_recent_uid",
                (mailbox_id,),
            )
            return int(r[0]) if r else 0

        return await self._view(op)
