"""`check`: the store's invariants, verified from one consistent snapshot.

Every blob's reference count equals the rows that reference it (messages and queue entries);
no message references an unknown blob; every UID is below its mailbox's UIDNEXT and every
MODSEQ at most its HIGHESTMODSEQ (RFC 9051 2.3.1.1, RFC 7162 3.1.1); each account's usage is
the sum of its messages. What only one backend can check (SQLite's own integrity and the blob
files; PostgreSQL's schema version) comes from its `_check_backend`.
"""

from __future__ import annotations

from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx


async def invariants(tx: Tx) -> list[str]:
    problems: list[str] = []
    for blob_id, refs, actual in await tx.rows(
        "SELECT b.id, b.refs, (SELECT COUNT(*) FROM messages m WHERE m.blob_id = b.id)"
        " + (SELECT COUNT(*) FROM queue q WHERE q.blob_id = b.id) FROM blobs b"
    ):
        if refs != actual:
            problems.append(f"blob {blob_id}: refcount {refs} but {actual} references")
    for (blob_id,) in await tx.rows(
        "SELECT DISTINCT blob_id FROM messages m"
        " WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = m.blob_id)"
    ):
        problems.append(f"message references unknown blob {blob_id}")
    for mb, uid, nxt in await tx.rows(
        "SELECT m.mailbox_id, MAX(m.uid), b.uidnext FROM messages m"
        " JOIN mailboxes b ON b.id = m.mailbox_id GROUP BY m.mailbox_id, b.uidnext"
        " HAVING MAX(m.uid) >= b.uidnext"
    ):
        problems.append(f"mailbox {mb}: uid {uid} not below uidnext {nxt}")
    for mb, modseq, highest in await tx.rows(
        "SELECT m.mailbox_id, MAX(m.modseq), b.highestmodseq FROM messages m"
        " JOIN mailboxes b ON b.id = m.mailbox_id GROUP BY m.mailbox_id, b.highestmodseq"
        " HAVING MAX(m.modseq) > b.highestmodseq"
    ):
        problems.append(f"mailbox {mb}: modseq {modseq} above highestmodseq {highest}")
    for acc, used, actual, count, messages in await tx.rows(
        "SELECT a.id, a.used_bytes, COALESCE(SUM(m.size), 0), a.used_messages, COUNT(m.uid)"
        " FROM accounts a LEFT JOIN mailboxes b ON b.account_id = a.id"
        " LEFT JOIN messages m ON m.mailbox_id = b.id"
        " GROUP BY a.id, a.used_bytes, a.used_messages"
    ):
        if used != actual:
            problems.append(f"account {acc}: usage {used} but messages total {actual}")
        if count != messages:
            problems.append(f"account {acc}: {count} messages counted but {messages} stored")
    return problems


class Checks(CoreBase):
    async def _check_backend(self, tx: Tx) -> list[str]:
        """What only this backend can check (its own integrity, its files)."""
        return []

    async def check(self) -> list[str]:
        """Consistency problems, one line each; empty when the store is sound. Reads only,
        from one snapshot."""

        async def op(tx: Tx) -> list[str]:
            return [*await self._check_backend(tx), *await invariants(tx)]

        return await self._consistent_view(op)
