"""Messages in mailboxes: append, flags, expunge, copy and move, and the reads IMAP syncs with.

House rules of this module (RFC 9051 2.3.1, RFC 7162 3.1, RFC 3502, RFC 6851):

- Every change to a mailbox takes its row first (``FOR UPDATE``; several mailboxes in
  ascending id), then the accounts whose usage it changes, then blob rows: the house lock
  order of every write path (`fanout` too), so units never deadlock on each other.
- New UIDs and the new MODSEQ come from one ``UPDATE mailboxes ... RETURNING`` per mailbox and
  unit (`allocate`): a client that saw UID n never later sees a new message below n, and the
  mailbox's HIGHESTMODSEQ strictly increases (RFC 7162 3.1.1). One unit stamps every row it
  changes in one mailbox with that one MODSEQ. A unit that locked the mailbox row with a
  read takes the MODSEQ from that read instead (HIGHESTMODSEQ + 1: nobody else changes the
  row before COMMIT) and advances it without waiting for an answer (`advance_modseq`), and
  sends its lock and its first read of messages together (`Tx.rows_batch`): a STORE or an
  EXPUNGE is one round trip and the unit's end where the backend pipelines.
- Statements are per batch, never per message: the rows of an APPEND, a COPY or a STORE are
  read, inserted or updated as one statement (`Tx.insert_messages`, `Tx.set_flags`), their
  blob references changed as one (`Tx.change_refs`).
- An expunge removes the row, remembers its UID with the new MODSEQ (`expunged`, for
  VANISHED: RFC 7162 3.2.10), uncharges the account and releases the blob, which stays
  readable for the grace period (RFC 2180 4.1).
- Quotas (RFC 9208) count octets and messages; an APPEND or COPY that would exceed them fails
  whole; a MOVE inside one account changes no usage and is never refused for quota.
- MULTIAPPEND (RFC 3502 3), COPY and MOVE (RFC 6851 3.3) are all or nothing: one unit each.
- A `Guard` (store.core.acl) runs first in the unit, so the rights checked are the rights in
  force when the change commits; it answers which flags the actor may set (RFC 4314 4).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from typing import Any

from mailwright.store.api import (
    AppendItem,
    ChangeSet,
    FlagOp,
    MailboxStatus,
    MessageListing,
    MessageRecord,
    NotFound,
    StagedBlob,
    StoreFlagsResult,
)
from mailwright.store.core.acl import new_flags
from mailwright.store.core.base import CoreBase
from mailwright.store.core.listing import ListingCache, by_uid
from mailwright.store.core.tx import FlagFilter, Guard, Tx


async def lock_mailboxes(tx: Tx, mailbox_ids: Iterable[int]) -> dict[int, int]:
    """Lock the mailbox rows (ascending id): mailbox id -> owning account, for those that
    exist."""
    sql, params = tx.values(sorted(set(mailbox_ids)))
    rows = await tx.rows(
        f"SELECT id, account_id FROM mailboxes WHERE id IN {sql} ORDER BY id FOR UPDATE", params
    )
    return {int(r[0]): int(r[1]) for r in rows}


async def allocate(tx: Tx, mailbox_id: int, n: int) -> tuple[int, int, int]:
    """`n` new UIDs and one new MODSEQ of the mailbox (its row stays locked until the unit
    ends): the first UID, the MODSEQ and the owning account; NotFound."""
    r = await tx.row(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1"
        " WHERE id = ? RETURNING uidnext - ?, highestmodseq, account_id",
        (n, mailbox_id, n),
    )
    if r is None:
        raise NotFound("no such mailbox")
    return int(r[0]), int(r[1]), int(r[2])


def advance_modseq(tx: Tx, mailbox_id: int, highest: int) -> Awaitable[None]:
    """The MODSEQ after `highest`, read from the mailbox row this unit locked, made the
    mailbox's HIGHESTMODSEQ; nothing waits for the answer (`Tx.run_many`)."""
    return tx.run_many("UPDATE mailboxes SET highestmodseq = ? WHERE id = ?",
                       [(highest + 1, mailbox_id)])  # fmt: skip


def _by_uid_sql(tx: Tx, mailbox_id: int, wanted: Sequence[int]) -> tuple[str, list[Any]]:
    sql, params = tx.values(wanted)
    return (f"SELECT {tx.message_columns} FROM messages WHERE mailbox_id = ? AND uid IN {sql}"
            " ORDER BY uid", [mailbox_id, *params])  # fmt: skip


async def messages_by_uid(tx: Tx, mailbox_id: int, uids: Iterable[int]) -> list[MessageRecord]:
    """The messages of those UIDs that exist, by UID, in one read."""
    wanted = sorted({int(u) for u in uids})
    if not wanted:
        return []
    sql, params = tx.values(wanted)
    return tx.records(await tx.rows(
        f"SELECT {tx.message_columns} FROM messages WHERE mailbox_id = ? AND uid IN {sql}"
        " ORDER BY uid",
        (mailbox_id, *params),
    ))


def _counts(blob_ids: Iterable[str], sign: int = 1) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in blob_ids:
        out[b] = out.get(b, 0) + sign
    return out


async def add_messages(
    tx: Tx, mailbox_id: int, items: Sequence[AppendItem], allowed: FlagFilter | None,
    now: float,
) -> list[MessageRecord]:
    """APPEND of `items` (staged blobs) into a mailbox: UIDs, the charge, the rows and the
    blob references; NotFound, QuotaExceeded."""
    first, modseq, account_id = await allocate(tx, mailbox_id, len(items))
    await tx.charge(account_id, sum(it.blob.size for it in items), len(items))
    records = []
    for i, it in enumerate(items):
        # RFC 4314 4: only the flags the actor may set
        flags = frozenset(it.flags if allowed is None else filter(allowed, it.flags))
        when = now if it.internaldate is None else it.internaldate.timestamp()
        records.append(MessageRecord(mailbox_id, first + i, modseq, flags, when, it.blob.size,
                                     it.blob.blob_id))  # fmt: skip
    await tx.insert_messages(records)
    # identical content is one blob: referenced once with the count
    blobs: dict[str, StagedBlob] = {}
    for it in items:
        blobs.setdefault(it.blob.blob_id, it.blob)
    counts = _counts(it.blob.blob_id for it in items)
    for blob_id in sorted(blobs):  # blobs last, in id order (the lock order)
        await tx.ref_blob(blobs[blob_id], counts[blob_id])
    for it in items:
        if it.blob is not blobs[it.blob.blob_id]:
            await tx.ref_blob(it.blob, 0)  # no reference: lets the backend drop the copy
    tx.changed(mailbox_id, modseq)
    return records


async def expunge_uids(
    tx: Tx, mailbox_id: int, uids: Iterable[int], *, charge: bool = True
) -> tuple[list[int], int]:
    """Remove these messages (those that exist): the UIDs removed, ascending, and the new
    MODSEQ (0 when nothing was removed). With `charge` false the account's usage stays (a
    MOVE inside one account)."""
    wanted = sorted({int(u) for u in uids})
    if not wanted:
        return [], 0
    sql, params = tx.values(wanted)
    # the lock, then the delete, sent together (the delete runs once the lock is held)
    owners, rows = await tx.rows_batch([
        ("SELECT account_id, highestmodseq FROM mailboxes WHERE id = ? FOR UPDATE",
         (mailbox_id,)),
        (f"DELETE FROM messages WHERE mailbox_id = ? AND uid IN {sql}"
         " RETURNING uid, size, blob_id", (mailbox_id, *params)),
    ])  # fmt: skip
    if not owners or not rows:
        return [], 0
    owner = owners[0]
    modseq = int(owner[1]) + 1
    await advance_modseq(tx, mailbox_id, int(owner[1]))
    gone = sorted(int(r[0]) for r in rows)
    await tx.record_expunged(mailbox_id, modseq, gone)  # RFC 7162 3.2.10: for VANISHED
    if charge:
        await tx.charge(int(owner[0]), -sum(int(r[1]) for r in rows), -len(rows))
    await tx.change_refs(_counts((str(r[2]) for r in rows), -1))
    tx.changed(mailbox_id, modseq)
    return gone, modseq


async def transfer(
    tx: Tx, src: int, uids: Iterable[int], dst: int, *, move: bool,
    allowed: FlagFilter | None = None,
) -> list[tuple[int, int]]:
    """COPY (RFC 9051 6.4.7) or MOVE (RFC 6851): (source UID, new UID) pairs by source UID.
    The copies keep their flags (only those `allowed`, RFC 4314 4) and internal dates;
    NotFound when either mailbox does not exist, QuotaExceeded."""
    owners = await lock_mailboxes(tx, (src, dst))
    if src not in owners or dst not in owners:
        raise NotFound("no such mailbox")
    recs = await messages_by_uid(tx, src, uids)
    if not recs:
        return []
    same_account = owners[src] == owners[dst]
    if not same_account:
        acc_sql, acc_params = tx.values(sorted({owners[src], owners[dst]}))
        await tx.rows(f"SELECT id FROM accounts WHERE id IN {acc_sql} ORDER BY id FOR UPDATE",
                      acc_params)  # fmt: skip
    if not (move and same_account):
        await tx.charge(owners[dst], sum(r.size for r in recs), len(recs))
    first, modseq, _ = await allocate(tx, dst, len(recs))
    copies = [
        MessageRecord(dst, first + i, modseq,
                      r.flags if allowed is None else frozenset(filter(allowed, r.flags)),
                      r.timestamp, r.size, r.blob_id)
        for i, r in enumerate(recs)
    ]  # fmt: skip
    await tx.insert_messages(copies)
    await tx.change_refs(_counts(r.blob_id for r in recs))
    tx.changed(dst, modseq)
    if move:
        await expunge_uids(tx, src, [r.uid for r in recs], charge=not same_account)
    return [(r.uid, c.uid) for r, c in zip(recs, copies, strict=True)]


async def move_all(tx: Tx, src: int, dst: int) -> None:
    """Move every message of one mailbox to another (RENAME of INBOX, RFC 9051 6.3.6)."""
    rows = await tx.rows("SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (src,))
    if rows:
        await transfer(tx, src, [int(r[0]) for r in rows], dst, move=True)


async def change_flags(
    tx: Tx, mailbox_id: int, uids: Sequence[int], op: FlagOp, given: set[str],
    unchangedsince: int | None, allowed: FlagFilter | None,
) -> StoreFlagsResult:
    """STORE (RFC 9051 6.4.6): one new MODSEQ for every message whose flags change."""
    wanted = sorted({int(u) for u in uids})
    # the lock, then the messages, sent together (the read runs once the lock is held)
    locked, rows = await tx.rows_batch([
        ("SELECT highestmodseq FROM mailboxes WHERE id = ? FOR UPDATE", (mailbox_id,)),
        _by_uid_sql(tx, mailbox_id, wanted),
    ])
    if not locked:
        return StoreFlagsResult((), (), ())
    changed: list[tuple[MessageRecord, frozenset[str]]] = []
    unchanged: list[MessageRecord] = []
    failed: list[int] = []
    interned: dict[frozenset[str], frozenset[str]] = {}
    for r in tx.records(rows):
        # RFC 7162 3.1.3: UNCHANGEDSINCE compares against the message's MODSEQ
        if unchangedsince is not None and r.modseq > unchangedsince:
            failed.append(r.uid)
            continue
        new = frozenset(new_flags(r.flags, op, given, allowed))
        if new == r.flags:
            unchanged.append(r)
        else:
            changed.append((r, interned.setdefault(new, new)))
    if not changed:
        return StoreFlagsResult((), tuple(unchanged), tuple(failed))
    modseq = int(locked[0][0]) + 1
    await advance_modseq(tx, mailbox_id, int(locked[0][0]))
    await tx.set_flags(mailbox_id, modseq, [(r.uid, f) for r, f in changed])
    tx.changed(mailbox_id, modseq)
    updated = tuple(r._replace(modseq=modseq, flags=f) for r, f in changed)
    return StoreFlagsResult(updated, tuple(unchanged), tuple(failed))


#: What changed in a mailbox above a MODSEQ: its HIGHESTMODSEQ and UIDNEXT, the changed rows
#: and the expunged (UID, MODSEQ)s, both by UID.
Changes = tuple[int, int, tuple[MessageRecord, ...], tuple[tuple[int, int], ...]]


async def read_changes(tx: Tx, mailbox_id: int, modseq: int) -> Changes:
    """`changes_since` as read from the database, from one snapshot; the expunged UIDs
    carry their MODSEQ, so that a backend that shares answers (PostgreSQL's changelog) can
    cut one for a later MODSEQ. NotFound."""
    mb, rows, gone = await tx.rows_batch([
        ("SELECT highestmodseq, uidnext FROM mailboxes WHERE id = ?", (mailbox_id,)),
        # no ORDER BY: the MODSEQ indexes find the changes, where an order by UID would
        # walk the whole mailbox (or all its expunge records); sorted here
        (f"SELECT {tx.message_columns} FROM messages WHERE mailbox_id = ? AND modseq > ?",
         (mailbox_id, modseq)),
        ("SELECT uid, modseq FROM expunged WHERE mailbox_id = ? AND modseq > ?",
         (mailbox_id, modseq)),
    ])
    if not mb:
        raise NotFound("no such mailbox")
    return (int(mb[0][0]), int(mb[0][1]), tuple(sorted(tx.records(rows), key=by_uid)),
            tuple(sorted((int(g[0]), int(g[1])) for g in gone)))


class MessageRules(CoreBase):
    """The `store.api.Messages` role. A backend sets `_listing` (a `ListingCache`)."""

    _listing: ListingCache

    async def _staged(self, blobs: Iterable[StagedBlob]) -> None:
        for blob in {b.blob_id: b for b in blobs}.values():
            await self._stage(blob)

    async def append(
        self,
        mailbox_id: int,
        blob: StagedBlob,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> MessageRecord:
        """Store one message; NotFound, QuotaExceeded, StorageFull."""
        return (await self.append_many(
            mailbox_id, [AppendItem(blob, tuple(flags), internaldate)]))[0]

    async def append_many(
        self, mailbox_id: int, items: Sequence[AppendItem], *, guard: Guard | None = None
    ) -> list[MessageRecord]:
        """Every message of one APPEND in one unit (RFC 3502 3): a failure of any (quota,
        mailbox gone, rights) stores none of them."""
        if not items:
            return []
        await self._staged(it.blob for it in items)
        now = time.time()

        async def op(tx: Tx) -> list[MessageRecord]:
            allowed = None if guard is None else await guard(tx)
            return await add_messages(tx, mailbox_id, items, allowed, now)

        return await self._unit(op)

    async def replace_message(
        self, mailbox_id: int, uid: int, dst_mailbox_id: int, item: AppendItem
    ) -> tuple[MessageRecord, list[int]]:
        """IMAP REPLACE (RFC 8508 3): the expunge first, so that the quota counts the message
        being replaced as gone; NotFound (nothing stored) when it is gone already."""
        await self._staged([item.blob])
        now = time.time()

        async def op(tx: Tx) -> tuple[MessageRecord, list[int]]:
            await lock_mailboxes(tx, (mailbox_id, dst_mailbox_id))
            gone, _ = await expunge_uids(tx, mailbox_id, [uid])
            if not gone:
                raise NotFound("the message to replace was expunged")
            (rec,) = await add_messages(tx, dst_mailbox_id, [item], None, now)
            return rec, gone

        return await self._unit(op)

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
        *,
        guard: Guard | None = None,
    ) -> StoreFlagsResult:
        """Change flags; UNCHANGEDSINCE refusals in `failed` (RFC 7162 3.1.3)."""
        given = set(flags)

        async def unit(tx: Tx) -> StoreFlagsResult:
            allowed = None if guard is None else await guard(tx)
            return await change_flags(tx, mailbox_id, uids, op, given, unchangedsince, allowed)

        return await self._unit(unit)

    async def expunge(
        self, mailbox_id: int, uids: Sequence[int], *, guard: Guard | None = None
    ) -> list[int]:
        """Remove messages; the UIDs removed."""
        if not uids and guard is None:
            return []

        async def op(tx: Tx) -> list[int]:
            if guard is not None:
                await guard(tx)
            return (await expunge_uids(tx, mailbox_id, uids))[0]

        return await self._unit(op)

    async def expunge_older_than(self, mailbox_id: int, cutoff: datetime) -> list[int]:
        """Retention: expunge the messages whose internal date is before `cutoff`."""
        rows = await self._view(lambda tx: tx.rows(
            "SELECT uid FROM messages WHERE mailbox_id = ? AND internaldate < ?",
            (mailbox_id, cutoff)))
        return await self.expunge(mailbox_id, [int(r[0]) for r in rows]) if rows else []

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        """COPY: (old UID, new UID) pairs; NotFound, QuotaExceeded; atomic."""
        return await self._transfer(src_mailbox_id, uids, dst_mailbox_id, False, guard)

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        """MOVE (RFC 6851 3.3): the copy and the expunge in one unit."""
        return await self._transfer(src_mailbox_id, uids, dst_mailbox_id, True, guard)

    async def _transfer(
        self, src: int, uids: Sequence[int], dst: int, move: bool, guard: Guard | None
    ) -> list[tuple[int, int]]:
        async def op(tx: Tx) -> list[tuple[int, int]]:
            allowed = None if guard is None else await guard(tx)
            return await transfer(tx, src, uids, dst, move=move, allowed=allowed)

        return await self._unit(op)

    # -- reads

    async def listing(self, mailbox_id: int) -> MessageListing:
        """Every message of the mailbox by UID, at one HIGHESTMODSEQ (`store.core.listing`)."""
        return await self._view(lambda tx: self._listing.get(tx, mailbox_id))

    async def list_messages(self, mailbox_id: int) -> list[MessageRecord]:
        """Every message of the mailbox, by UID."""
        return list((await self.listing(mailbox_id)).records.values())

    async def get_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]:
        """The messages of those UIDs that exist, by UID."""
        if not uids:
            return []
        return await self._view(lambda tx: messages_by_uid(tx, mailbox_id, uids))

    async def changes_since(self, mailbox_id: int, modseq: int) -> ChangeSet:
        """What changed after `modseq`, from one snapshot (RFC 7162 sync; IDLE)."""
        top, uidnext, records, gone = await self._view(
            lambda tx: read_changes(tx, mailbox_id, modseq))
        return ChangeSet(top, uidnext, records, tuple(uid for uid, _ in gone))

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        """Counts and identity of a mailbox (RFC 9051 6.3.11): from one statement, or from a
        kept listing's aggregates, with UIDNEXT and HIGHESTMODSEQ never older than them."""

        async def op(tx: Tx) -> MailboxStatus:
            if self._listing.has(mailbox_id):
                return await self._status_from_listing(tx, mailbox_id)
            seen, seen_params = tx.has_flag("m.flags", "\\Seen")
            deleted, deleted_params = tx.has_flag("m.flags", "\\Deleted")
            # one statement, so one snapshot; an aggregate without GROUP BY answers one row
            # (of NULLs when there is no such mailbox)
            r = await tx.row(
                "SELECT MAX(b.uidnext), MAX(b.uidvalidity), MAX(b.highestmodseq), COUNT(m.uid),"
                " COALESCE(SUM(m.size), 0),"
                f" COALESCE(SUM(CASE WHEN m.uid IS NULL OR {seen} THEN 0 ELSE 1 END), 0),"
                f" COALESCE(SUM(CASE WHEN m.uid IS NOT NULL AND {deleted} THEN 1 ELSE 0 END), 0)"
                " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id WHERE b.id = ?",
                (*seen_params, *deleted_params, mailbox_id),
            )
            if r is None or r[0] is None:
                raise NotFound("no such mailbox")
            return MailboxStatus(mailbox_id, int(r[3]), int(r[5]), int(r[6]), int(r[4]),
                                 int(r[0]), int(r[1]), int(r[2]))  # fmt: skip

        return await self._view(op)

    async def _status_from_listing(self, tx: Tx, mailbox_id: int) -> MailboxStatus:
        """STATUS of a mailbox whose listing is kept: from the listing's aggregates, brought
        up to date by its delta, with no pass over the mailbox's rows."""
        mb = await tx.row(
            "SELECT uidnext, uidvalidity, highestmodseq FROM mailboxes WHERE id = ?",
            (mailbox_id,),
        )
        if mb is None:
            raise NotFound("no such mailbox")
        listing = await self._listing.get(tx, mailbox_id)
        unseen, deleted, size = listing.counts
        # the listing may hold a change newer than the row read just before it
        uidnext = max(int(mb[0]), listing.uids[-1] + 1 if listing.uids else 0)
        return MailboxStatus(mailbox_id, len(listing), unseen, deleted, size, uidnext,
                             int(mb[1]), max(int(mb[2]), listing.modseq))  # fmt: skip

    async def save_dates(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, float | None]:
        """IMAP SAVEDATE (RFC 8514): when each message was saved into its mailbox."""
        wanted = sorted({int(u) for u in uids})
        if not wanted:
            return {}

        async def op(tx: Tx) -> dict[int, float | None]:
            sql, params = tx.values(wanted)
            rows = await tx.rows(
                f"SELECT uid, savedate FROM messages WHERE mailbox_id = ? AND uid IN {sql}",
                (mailbox_id, *params),
            )
            return {int(r[0]): None if r[1] is None else float(r[1]) for r in rows}

        return await self._view(op)
