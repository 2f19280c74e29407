"""Deliver one staged message to the local recipients of a transaction.

Recipients resolve through the directory (accounts, aliases, catch-alls, plus-addressing);
several recipients that reach one account deliver once. All local targets are committed in one
store transaction, so a message is either in every local mailbox it was accepted for or in none.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mailwright.accounts.directory import Directory
from mailwright.store.api import (
    DeliveryTarget,
    LocalCopies,
    MessageRecord,
    QueueAddition,
    StagedBlob,
    Store,
)

log = logging.getLogger("mailwright.delivery")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    records: tuple[MessageRecord, ...]
    remote: tuple[str, ...]  # alias expansions that point outside our domains
    unknown: tuple[str, ...]  # recipients that resolved to nothing


class LocalDelivery:
    def __init__(self, store: Store, directory: Directory) -> None:
        self.store = store
        self.directory = directory

    async def deliver(
        self,
        blob: StagedBlob,
        recipients: Sequence[str],
        *,
        mailbox: str = "INBOX",
        flags: frozenset[str] = frozenset(),
    ) -> DeliveryReport:
        report, _ = await self.deliver_and_queue(blob, recipients, None, mailbox=mailbox,
                                                 flags=flags)  # fmt: skip
        return report

    async def deliver_and_queue(
        self,
        blob: StagedBlob | None,
        recipients: Sequence[str],
        queued: QueueAddition | None,
        *,
        mailbox: str = "INBOX",
        flags: frozenset[str] = frozenset(),
    ) -> tuple[DeliveryReport, list[int]]:
        """Deliver to the local recipients and add the queue entries in one store transaction:
        either every local copy and every queue entry is committed, or none is, so a client
        that retries after a 4xx cannot get a second local copy."""
        targets: dict[int, DeliveryTarget] = {}
        remote: list[str] = []
        unknown: list[str] = []
        for rcpt in recipients if blob is not None else ():
            res = await self.directory.resolve(rcpt)
            if not res.local_domain or not res.deliverable:
                unknown.append(rcpt)
                continue
            for acc in res.accounts:
                targets.setdefault(acc.id, DeliveryTarget(acc.id, mailbox, flags))
            remote.extend(res.remote)
        local = LocalCopies(blob, tuple(targets.values())) if blob and targets else None
        records: list[MessageRecord] = []
        ids: list[int] = []
        if local is not None or queued is not None:
            records, ids = await self.store.deliver_and_queue(local, queued)
        if blob is not None:
            log.info(
                "delivered blob=%s size=%d mailboxes=%d remote=%d unknown=%d",
                blob.blob_id[:12], blob.size, len(records), len(remote), len(unknown),
            )
        if ids and queued is not None:
            log.info("queued ids=%s sender=<%s> domains=%s size=%d", ids, queued.sender,
                     ",".join(queued.by_domain), queued.blob.size)  # fmt: skip
        report = DeliveryReport(tuple(records), tuple(dict.fromkeys(remote)), tuple(unknown))
        return report, ids
