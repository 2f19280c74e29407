"""The embedded store: SQLite (WAL) for metadata, content-addressed files for message blobs."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from mailwright.filemodes import close_to_others
from mailwright.store.api import (
    AppendItem,
    ChangeSet,
    DeliveryTarget,
    FlagOp,
    LocalCopies,
    Mailbox,
    MailboxStatus,
    MessageListing,
    MessageRecord,
    NotFound,
    QueueAddition,
    QuotaExceeded,
    StagedBlob,
    StoreFlagsResult,
    TraceEvent,
    canonical_mailbox_name,
)
from mailwright.store.blobs import BlobFiles, FileBlobWriter, MetaParser
from mailwright.store.blobstore import BlobStorage, FileBlobs
from mailwright.store.changes import ChangeHub
from mailwright.store.core import CoreStore
from mailwright.store.core.acl import new_flags
from mailwright.store.core.tx import FlagFilter, Guard, Tx, drive
from mailwright.store.sqlite.db import Database, WriteContext
from mailwright.store.sqlite.listing import ListingCache
from mailwright.store.sqlite.schema import migrate
from mailwright.store.sqlite.tx import SQLiteTx

T = TypeVar("T")

_MB_COLS = "id, account_id, name, uidvalidity, uidnext, highestmodseq, special_use, retention_days"
_MSG_COLS = "mailbox_id, uid, modseq, flags, internaldate, size, blob_id"


def _ts(dt: datetime | None) -> float:
    return time.time() if dt is None else dt.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _known_blobs(c: sqlite3.Connection, ids: list[str]) -> set[str]:
    rows = c.execute(f"SELECT id FROM blobs WHERE id IN ({','.join('?' * len(ids))})", ids)
    return {str(r[0]) for r in rows}



class _FlagCache:
    """Interns flag sets: a 100k-message mailbox has few distinct flag combinations."""

    def __init__(self) -> None:
        self._cache: dict[str, frozenset[str]] = {"": frozenset()}

    def parse(self, text: str) -> frozenset[str]:
        fs = self._cache.get(text)
        if fs is None:
            fs = frozenset(text.split())
            if len(self._cache) < 10000:
                self._cache[text] = fs
        return fs


def _flags_text(flags: Iterable[str]) -> str:
    return " ".join(sorted(set(flags)))


class SQLiteStore(CoreStore):
    def __init__(
        self,
        data_dir: Path,
        *,
        fsync: bool = True,
        meta_parser: MetaParser | None = None,
        max_message_size: int | None = None,
        min_free: int = 0,
    ) -> None:
        self.data_dir = data_dir
        self.files = BlobFiles(data_dir, fsync=fsync, min_free=min_free)
        self.blobs = FileBlobs(self.files)
        self.db = Database(data_dir / "mailwright.db", fsync=fsync)
        self.db.sync_dirs = self.files.sync_dirs
        self.changes = ChangeHub()
        self.meta_parser = meta_parser
        self.max_message_size = max_message_size
        self._flags = _FlagCache()
        self._listing = ListingCache()
        self._opened = False

    # -- lifecycle

    async def open(self) -> None:
        self.open_sync()
        try:
            import asyncio

            self.changes._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

    def open_sync(self) -> None:
        if self._opened:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        close_to_others(self.data_dir)  # messages and password hashes are not for other users
        self.db.start(migrate)
        self._opened = True

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        if self._opened:
            self.db.stop()
            self._opened = False

    # -- the core's hooks (store.core.tx.Backend)

    def _tx(self, ctx: WriteContext, notify: dict[int, int] | None = None) -> SQLiteTx:
        return SQLiteTx(ctx.conn, ctx, self, {} if notify is None else notify)

    async def _unit(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        notify: dict[int, int] = {}
        result = await self.db.write(lambda ctx: drive(fn(self._tx(ctx, notify))))
        for mailbox_id, modseq in notify.items():
            self.changes.publish(mailbox_id, modseq)
        return result

    async def _view(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        return await self.db.read(lambda c: drive(fn(SQLiteTx(c))))

    async def _check_backend(self, tx: Tx) -> list[str]:
        problems = []
        ic = await tx.row("PRAGMA quick_check")
        if ic is None or ic[0] != "ok":
            problems.append(f"sqlite integrity: {ic[0] if ic else 'no answer'}")
        ids = [str(r[0]) for r in await tx.rows("SELECT id FROM blobs")]
        problems.extend(f"blob {blob_id}: file missing" for blob_id in self.blobs.missing(ids))
        return problems

    def _blob_storage(self) -> BlobStorage:
        return self.blobs

    async def _stage(self, blob: StagedBlob) -> None:
        return None  # the blob's file is linked into place by the unit itself

    # -- row helpers

    def _mailbox(self, row: Any, subscribed: bool) -> Mailbox:
        return Mailbox(
            int(row[0]),
            int(row[1]),
            str(row[2]),
            int(row[3]),
            int(row[4]),
            int(row[5]),
            row[6] if row[6] is None else str(row[6]),
            subscribed,
            int(row[7]),
        )

    def _message(self, row: tuple[int, int, int, str, float, int, str]) -> MessageRecord:
        return MessageRecord(row[0], row[1], row[2], self._flags.parse(row[3]), *row[4:])

    # -- mailboxes

    def _new_uidvalidity(self, c: sqlite3.Connection) -> int:
        row = c.execute("SELECT value FROM settings WHERE key = 'last_uidvalidity'").fetchone()
        last = int(row[0]) if row else 0
        value = max(int(time.time()), last + 1) & 0xFFFFFFFF or 1
        c.execute(
            "INSERT INTO settings(key, value) VALUES ('last_uidvalidity', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(value),),
        )
        return value

    def _get_mailbox(self, c: sqlite3.Connection, account_id: int, name: str) -> Mailbox | None:
        name = canonical_mailbox_name(name)
        row = c.execute(
            f"SELECT {_MB_COLS} FROM mailboxes WHERE account_id = ? AND name = ?",
            (account_id, name),
        ).fetchone()
        if row is None:
            return None
        sub = c.execute(
            "SELECT 1 FROM subscriptions WHERE account_id = ? AND name = ?", (account_id, name)
        ).fetchone()
        return self._mailbox(row, sub is not None)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        def op(c: sqlite3.Connection) -> MailboxStatus:
            mb = c.execute(
                "SELECT uidnext, uidvalidity, highestmodseq FROM mailboxes WHERE id = ?",
                (mailbox_id,),
            ).fetchone()
            if mb is None:
                raise NotFound("no such mailbox")
            if self._listing.has(mailbox_id):
                # a kept listing answers from its aggregates (brought up to date by its
                # delta): no pass over the mailbox's rows
                listing = self._listing.get(c, mailbox_id, self._message, self._flags.parse)
                unseen, deleted, size = listing.counts
                # the listing may be a change newer than the row read just before it
                uidnext = max(mb[0], listing.uids[-1] + 1 if listing.uids else 0)
                return MailboxStatus(mailbox_id, len(listing), unseen, deleted, size,
                                     uidnext, mb[1], max(mb[2], listing.modseq))
            row = c.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0),"
                " SUM(CASE WHEN instr(' ' || flags || ' ', ' \\Seen ') = 0 THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN instr(' ' || flags || ' ', ' \\Deleted ') > 0 THEN 1 ELSE 0 END)"
                " FROM messages WHERE mailbox_id = ?",
                (mailbox_id,),
            ).fetchone()
            return MailboxStatus(
                mailbox_id, row[0], row[2] or 0, row[3] or 0, row[1], mb[0], mb[1], mb[2]
            )

        return await self.db.read(op)

    # -- blobs

    def blob_writer(self, *, exact: bool = False) -> FileBlobWriter:
        return self.blobs.writer(self.meta_parser, self.max_message_size, exact=exact)

    def _ref_blob(self, ctx: WriteContext, blob: StagedBlob, n: int) -> None:
        c = ctx.conn
        row = c.execute("SELECT refs FROM blobs WHERE id = ?", (blob.blob_id,)).fetchone()
        if row is None:
            self.blobs.keep(blob, ctx.dirty_dirs)
            c.execute(
                "INSERT INTO blobs(id, size, refs, meta, created) VALUES (?, ?, ?, ?, ?)",
                (blob.blob_id, blob.size, n, blob.meta, time.time()),
            )
            return
        if row[0] <= 0:
            # A released blob waiting for the collector: make sure its file is (still) there.
            self.blobs.keep(blob, ctx.dirty_dirs)
        c.execute("UPDATE blobs SET refs = refs + ? WHERE id = ?", (n, blob.blob_id))
        ctx.after_commit.append(functools.partial(self.blobs.settle, blob))

    def _unref_blob(self, ctx: WriteContext, blob_id: str, n: int) -> None:
        """Drop references; a blob nobody references is released, not deleted.

        Its row and file stay until the collector's grace period has passed (`created` then
        holds the release time): another IMAP session that still shows the expunged message
        can fetch it until it synchronises (RFC 2180 4.1), and identical content arriving
        meanwhile simply takes the blob back.
        """
        c = ctx.conn
        c.execute(
            "UPDATE blobs SET refs = refs - ?,"
            " created = CASE WHEN refs - ? <= 0 THEN ? ELSE created END WHERE id = ?",
            (n, n, time.time(), blob_id),
        )

    async def get_meta(self, blob_id: str) -> bytes:
        row = await self.db.read(
            lambda c: c.execute("SELECT meta FROM blobs WHERE id = ?", (blob_id,)).fetchone()
        )
        if row is None:
            raise NotFound(f"no such blob: {blob_id}")
        return bytes(row[0])

    # -- messages

    def _bump_modseq(self, c: sqlite3.Connection, mailbox_id: int) -> int:
        row = c.execute(
            "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 WHERE id = ?"
            " RETURNING highestmodseq",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise NotFound("no such mailbox")
        return int(row[0])

    def _charge(self, c: sqlite3.Connection, account_id: int, size: int, count: int) -> None:
        row = c.execute(
            "SELECT quota_bytes, used_bytes, quota_messages, used_messages FROM accounts"
            " WHERE id = ?", (account_id,)
        ).fetchone()
        if row is None:
            raise NotFound("no such account")
        quota, used, quota_messages, used_messages = row
        if size > 0 and quota and used + size > quota:
            raise QuotaExceeded(f"quota of account {account_id} exceeded")
        if count > 0 and quota_messages and used_messages + count > quota_messages:
            # RFC 9208 5.2: the MESSAGE resource
            raise QuotaExceeded(f"message quota of account {account_id} exceeded")
        c.execute(
            "UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ?"
            " WHERE id = ?",
            (size, count, account_id),
        )

    def _insert_message(
        self,
        ctx: WriteContext,
        mailbox_id: int,
        blob: StagedBlob,
        flags: str,
        internaldate: float,
        modseq: int,
    ) -> tuple[int, int, int, str, float, int, str]:
        c = ctx.conn
        uid = int(c.execute(
            "UPDATE mailboxes SET uidnext = uidnext + 1 WHERE id = ? RETURNING uidnext - 1",
            (mailbox_id,),
        ).fetchone()[0])
        c.execute(
            f"INSERT INTO messages({_MSG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (mailbox_id, uid, modseq, flags, internaldate, blob.size, blob.blob_id),
        )
        return (mailbox_id, uid, modseq, flags, internaldate, blob.size, blob.blob_id)

    async def append(
        self,
        mailbox_id: int,
        blob: StagedBlob,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> MessageRecord:
        ftext = _flags_text(flags)
        ts = _ts(internaldate)

        def op(ctx: WriteContext) -> tuple[int, int, int, str, float, int, str]:
            c = ctx.conn
            row = c.execute("SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            self._charge(c, row[0], blob.size, 1)
            modseq = self._bump_modseq(c, mailbox_id)
            self._ref_blob(ctx, blob, 1)
            return self._insert_message(ctx, mailbox_id, blob, ftext, ts, modseq)

        rec = self._message(await self.db.write(op))
        self.changes.publish(mailbox_id, rec.modseq)
        return rec

    async def deliver(
        self, blob: StagedBlob, targets: Sequence[DeliveryTarget]
    ) -> list[MessageRecord]:
        # the rule is the core's (store.core.fanout), all or nothing here
        return list((await self.deliver_each(LocalCopies(blob, tuple(targets)), None)).records)

    async def list_messages(self, mailbox_id: int) -> list[MessageRecord]:
        return list((await self.listing(mailbox_id)).records.values())

    def _get_messages(
        self, c: sqlite3.Connection, mailbox_id: int, uids: Sequence[int]
    ) -> list[tuple[int, int, int, str, float, int, str]]:
        out: list[tuple[int, int, int, str, float, int, str]] = []
        uids = sorted(set(uids))
        for i in range(0, len(uids), 500):
            chunk = uids[i : i + 500]
            out.extend(
                c.execute(
                    f"SELECT {_MSG_COLS} FROM messages WHERE mailbox_id = ? AND uid IN"
                    f" ({','.join('?' * len(chunk))}) ORDER BY uid",
                    (mailbox_id, *chunk),
                ).fetchall()
            )
        return out

    async def get_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]:
        rows = await self.db.read(lambda c: self._get_messages(c, mailbox_id, uids))
        return [self._message(r) for r in rows]

    async def changes_since(self, mailbox_id: int, modseq: int) -> ChangeSet:
        def op(c: sqlite3.Connection) -> ChangeSet:
            mb = c.execute(
                "SELECT highestmodseq, uidnext FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if mb is None:
                raise NotFound("no such mailbox")
            rows = c.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE mailbox_id = ? AND modseq > ?"
                " ORDER BY uid",
                (mailbox_id, modseq),
            ).fetchall()
            gone = c.execute(
                "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                (mailbox_id, modseq),
            ).fetchall()
            return ChangeSet(
                int(mb[0]),
                int(mb[1]),
                tuple(self._message(r) for r in rows),
                tuple(int(g[0]) for g in gone),
            )

        return await self.db.read(op)

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
        given = set(flags)

        def wop(ctx: WriteContext) -> tuple[list[tuple], list[tuple], list[int], int]:  # type: ignore[type-arg]
            c = ctx.conn
            # RFC 4314 4: the rights, read in this same write, say which flags may change
            allowed = None if guard is None else drive(guard(self._tx(ctx)))
            rows = self._get_messages(c, mailbox_id, uids)
            changed: list[tuple[int, str]] = []
            unchanged: list[tuple] = []  # type: ignore[type-arg]
            failed: list[int] = []
            for r in rows:
                # RFC 7162 3.1.3: UNCHANGEDSINCE compares against the message's MODSEQ.
                if unchangedsince is not None and r[2] > unchangedsince:
                    failed.append(r[1])
                    continue
                cur = set(r[3].split())
                new = new_flags(cur, op, given, allowed)
                if new == cur:
                    unchanged.append(r)
                else:
                    changed.append((r[1], _flags_text(new)))
            if not changed:
                return [], unchanged, failed, 0
            modseq = self._bump_modseq(c, mailbox_id)
            c.executemany(
                "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?",
                [(f, modseq, mailbox_id, uid) for uid, f in changed],
            )
            updated = self._get_messages(c, mailbox_id, [u for u, _ in changed])
            return updated, unchanged, failed, modseq

        updated, unchanged, failed, modseq = await self.db.write(wop)
        if modseq:
            self.changes.publish(mailbox_id, modseq)
        return StoreFlagsResult(
            tuple(self._message(r) for r in updated),
            tuple(self._message(r) for r in unchanged),
            tuple(failed),
        )

    def _expunge(self, ctx: WriteContext, mailbox_id: int, uids: Sequence[int]) -> tuple[list[int], int]:
        c = ctx.conn
        rows = self._get_messages(c, mailbox_id, uids)
        if not rows:
            return [], 0
        modseq = self._bump_modseq(c, mailbox_id)
        account_id = c.execute(
            "SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)
        ).fetchone()[0]
        gone = [r[1] for r in rows]
        for i in range(0, len(gone), 500):
            chunk = gone[i : i + 500]
            c.execute(
                f"DELETE FROM messages WHERE mailbox_id = ? AND uid IN ({','.join('?' * len(chunk))})",
                (mailbox_id, *chunk),
            )
        c.executemany(
            "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            [(mailbox_id, uid, modseq) for uid in gone],
        )
        self._charge(c, account_id, -sum(r[5] for r in rows), -len(rows))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r[6]] = counts.get(r[6], 0) + 1
        for blob_id, n in counts.items():
            self._unref_blob(ctx, blob_id, n)
        return gone, modseq

    async def expunge(
        self, mailbox_id: int, uids: Sequence[int], *, guard: Guard | None = None
    ) -> list[int]:
        def op(ctx: WriteContext) -> tuple[list[int], int]:
            if guard is not None:
                drive(guard(self._tx(ctx)))
            return self._expunge(ctx, mailbox_id, uids)

        gone, modseq = await self.db.write(op)
        if modseq:
            self.changes.publish(mailbox_id, modseq)
        return gone

    def _copy(
        self,
        ctx: WriteContext,
        src: int,
        uids: Sequence[int],
        dst: int,
        *,
        move: bool,
        touched: list[tuple[int, int]],
        guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        c = ctx.conn
        allowed: FlagFilter | None = None
        if guard is not None:
            allowed = drive(guard(self._tx(ctx)))
        rows = self._get_messages(c, src, uids)
        if not rows:
            return []
        dst_row = c.execute("SELECT account_id FROM mailboxes WHERE id = ?", (dst,)).fetchone()
        src_row = c.execute("SELECT account_id FROM mailboxes WHERE id = ?", (src,)).fetchone()
        if dst_row is None or src_row is None:
            raise NotFound("no such mailbox")
        size = sum(r[5] for r in rows)
        if not (move and dst_row[0] == src_row[0]):
            self._charge(c, dst_row[0], size, len(rows))
        modseq = self._bump_modseq(c, dst)
        mapping = []
        for r in rows:
            staged = StagedBlob(r[6], r[5], self.files.path_for(r[6]), b"")
            # RFC 4314 4: a copy keeps only the flags the actor may set in the target
            ftext = r[3] if allowed is None else _flags_text(filter(allowed, r[3].split()))
            new = self._insert_message(ctx, dst, staged, ftext, r[4], modseq)
            c.execute("UPDATE blobs SET refs = refs + 1 WHERE id = ?", (r[6],))
            mapping.append((r[1], new[1]))
        touched.append((dst, modseq))
        if move:
            if dst_row[0] == src_row[0]:
                # a move inside one account changes no usage; _expunge will subtract this again
                c.execute(
                    "UPDATE accounts SET used_bytes = used_bytes + ?,"
                    " used_messages = used_messages + ? WHERE id = ?",
                    (size, len(rows), src_row[0]),
                )
            _gone, smodseq = self._expunge(ctx, src, [m[0] for m in mapping])
            touched.append((src, smodseq))
        return mapping

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        touched: list[tuple[int, int]] = []
        mapping = await self.db.write(
            lambda ctx: self._copy(
                ctx, src_mailbox_id, uids, dst_mailbox_id, move=False, touched=touched,
                guard=guard,
            )
        )
        for mb, ms in touched:
            self.changes.publish(mb, ms)
        return mapping

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int,
        *, guard: Guard | None = None,
    ) -> list[tuple[int, int]]:
        touched: list[tuple[int, int]] = []
        mapping = await self.db.write(
            lambda ctx: self._copy(
                ctx, src_mailbox_id, uids, dst_mailbox_id, move=True, touched=touched,
                guard=guard,
            )
        )
        for mb, ms in touched:
            self.changes.publish(mb, ms)
        return mapping

    async def expunge_older_than(self, mailbox_id: int, cutoff: datetime) -> list[int]:
        uids = await self.db.read(
            lambda c: [r[0] for r in c.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? AND internaldate < ?",
                (mailbox_id, cutoff.timestamp()),
            )]
        )
        return await self.expunge(mailbox_id, uids) if uids else []

    # -- MULTIAPPEND (RFC 3502): all or nothing

    async def append_many(
        self, mailbox_id: int, items: Sequence[AppendItem], *, guard: Guard | None = None
    ) -> list[MessageRecord]:
        """Every message of one APPEND in one write operation (its own SAVEPOINT in the
        batch): a failure of any (quota, mailbox gone) rolls all of them back."""
        if not items:
            return []
        prepared = [(it.blob, _flags_text(it.flags), _ts(it.internaldate)) for it in items]
        total = sum(it.blob.size for it in items)

        def op(ctx: WriteContext) -> list[tuple[int, int, int, str, float, int, str]]:
            c = ctx.conn
            # RFC 4314 4: the rights, read in this same write, say which flags may be set
            allowed = None if guard is None else drive(guard(self._tx(ctx)))
            row = c.execute("SELECT account_id FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            self._charge(c, row[0], total, len(prepared))
            modseq = self._bump_modseq(c, mailbox_id)
            out = [
                self._insert_message(
                    ctx, mailbox_id, blob,
                    ftext if allowed is None else _flags_text(filter(allowed, ftext.split())),
                    ts, modseq,
                )
                for blob, ftext, ts in prepared
            ]
            # identical content is one blob: reference it once with the count, drop the
            # other staging copies after the commit
            first: dict[str, StagedBlob] = {}
            counts: dict[str, int] = {}
            for it in items:
                if it.blob.blob_id in first:
                    if it.blob is not first[it.blob.blob_id]:
                        extra = functools.partial(self.blobs.discard_staged, it.blob)
                        ctx.after_commit.append(extra)
                else:
                    first[it.blob.blob_id] = it.blob
                counts[it.blob.blob_id] = counts.get(it.blob.blob_id, 0) + 1
            for blob_id in sorted(first):
                self._ref_blob(ctx, first[blob_id], counts[blob_id])
            return out

        rows = await self.db.write(op)
        recs = [self._message(r) for r in rows]
        self.changes.publish(mailbox_id, recs[-1].modseq)
        return recs

    # -- one message accepted: local copies and queue entries in one transaction

    async def deliver_and_queue(
        self, local: LocalCopies | None, queued: QueueAddition | None,
        trace: Sequence[TraceEvent] = (),
    ) -> tuple[list[MessageRecord], list[int]]:
        done = await self.deliver_each(local, queued, trace=trace)  # store.core.fanout
        return list(done.records), list(done.queue_ids)

    # -- IMAP REPLACE (RFC 8508) and SAVEDATE (RFC 8514)

    async def replace_message(
        self, mailbox_id: int, uid: int, dst_mailbox_id: int, item: AppendItem
    ) -> tuple[MessageRecord, list[int]]:
        blob = item.blob
        ftext = _flags_text(item.flags)
        ts = _ts(item.internaldate)

        def op(ctx: WriteContext) -> tuple[tuple[int, int, int, str, float, int, str],
                                           list[int], int]:
            c = ctx.conn
            # the expunge first, so the quota counts the message being replaced as gone
            gone, smodseq = self._expunge(ctx, mailbox_id, [uid])
            if not gone:
                raise NotFound("the message to replace was expunged")
            row = c.execute(
                "SELECT account_id FROM mailboxes WHERE id = ?", (dst_mailbox_id,)
            ).fetchone()
            if row is None:
                raise NotFound("no such mailbox")
            self._charge(c, row[0], blob.size, 1)
            modseq = self._bump_modseq(c, dst_mailbox_id)
            self._ref_blob(ctx, blob, 1)
            return self._insert_message(ctx, dst_mailbox_id, blob, ftext, ts, modseq), gone, smodseq

        new, gone, smodseq = await self.db.write(op)
        rec = self._message(new)
        self.changes.publish(mailbox_id, smodseq)
        self.changes.publish(dst_mailbox_id, rec.modseq)
        return rec, gone

    async def save_dates(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, float | None]:
        wanted = sorted({int(u) for u in uids})

        def op(c: sqlite3.Connection) -> dict[int, float | None]:
            out: dict[int, float | None] = {}
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                for u, d in c.execute(
                    "SELECT uid, savedate FROM messages WHERE mailbox_id = ? AND uid IN"
                    f" ({','.join('?' * len(chunk))})", (mailbox_id, *chunk),
                ):
                    out[int(u)] = None if d is None else float(d)
            return out

        return await self.db.read(op)

    async def listing(self, mailbox_id: int) -> MessageListing:
        return await self.db.read(
            lambda c: self._listing.get(c, mailbox_id, self._message, self._flags.parse)
        )
