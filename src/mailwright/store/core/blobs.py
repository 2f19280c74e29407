"""Message content as sessions see it, and its garbage collection, once for every backend
and every blob storage (`store.blobstore`): a staged blob is read or dropped through the
storage that owns it, a stored one read by id, and no session ever sees where it lives.

Garbage collection.

What goes: blob rows released (no reference left) longer ago than the grace period, with
their content; content no row names (a crash between storing it and the COMMIT that would
have referenced it, or a cache file whose row went); staging files nobody finished. A
released blob stays readable for the grace period so that a session still showing an
expunged message can fetch it until it synchronises (RFC 2180 4.1), and identical content
arriving meanwhile simply takes it back.

House rules: the candidates are found by reads and a walk of the storage, outside any write
transaction (a delivery never waits for the walk); they are removed in units of at most
`BATCH`, each checking its candidates again under `Tx.guard_blob`, because a delivery may have
taken a blob back or stored the same content since the look. Times are the database's
(`mw_clock_after`), as the release time is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from mailwright.store.api import StagedBlob
from mailwright.store.core.base import CoreBase
from mailwright.store.core.tx import Tx

BATCH = 50  # blobs per unit of work: a delivery waits for one batch at most
_LOOK = 500  # ids compared with the rows per read


class BlobRules(CoreBase):
    """`api.BlobStore` (but `blob_writer` and `get_meta`, the backend's) and
    `api.Maintenance.collect_garbage`."""

    async def read_staged(self, blob: StagedBlob, *, limit: int | None = None) -> bytes:
        return await self._blob_storage().read_staged(blob, limit)

    def discard_staged(self, blob: StagedBlob) -> None:
        self._blob_storage().discard_staged(blob)

    async def read_blob(self, blob_id: str) -> bytes:
        return await self._blob_storage().read(blob_id)

    async def collect_garbage(
        self, min_age: float = 3600.0, *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Remove released blobs past the grace period `min_age` (seconds), content no row
        names that is older than that, and stale staging files; how many went.
        `progress(files walked)` is called from the walking thread every 1000 files."""
        storage = self._blob_storage()
        age = -float(min_age)
        removed = 0

        # 1. released blobs: row and content go together, in one unit
        released = sorted(str(r[0]) for r in await self._view(lambda tx: tx.rows(
            "SELECT id FROM blobs WHERE refs <= 0 AND created <= mw_clock_after(?)", (age,)
        )))

        async def drop_released(tx: Tx, batch: list[str]) -> int:
            n = 0
            for blob_id in batch:
                await tx.guard_blob(blob_id)
                if await tx.run(
                    "DELETE FROM blobs WHERE id = ? AND refs <= 0"
                    " AND created <= mw_clock_after(?)", (blob_id, age),
                ):
                    await tx.drop_blob(blob_id)
                    n += 1
            return n

        for start in range(0, len(released), BATCH):
            batch = released[start : start + BATCH]
            removed += await self._unit(functools.partial(drop_released, batch=batch))

        # 2. content no row names, older than the grace period
        held = await storage.candidates(min_age, progress)

        async def drop_unnamed(tx: Tx, batch: list[str]) -> int:
            n = 0
            for blob_id in batch:
                await tx.guard_blob(blob_id)
                if await tx.row("SELECT 1 FROM blobs WHERE id = ?", (blob_id,)) is None:
                    await tx.drop_blob(blob_id)
                    n += 1
            return n

        for start in range(0, len(held), _LOOK):
            chunk = held[start : start + _LOOK]

            async def known(tx: Tx, chunk: list[str] = chunk) -> set[str]:
                sql, params = tx.values(chunk)
                return {str(r[0]) for r in await tx.rows(
                    f"SELECT id FROM blobs WHERE id IN {sql}", params)}

            names = await self._view(known)
            unnamed = sorted(b for b in chunk if b not in names)
            for k in range(0, len(unnamed), BATCH):
                batch = unnamed[k : k + BATCH]
                removed += await self._unit(functools.partial(drop_unnamed, batch=batch))

        # 3. staging files nobody finished (no row can name them), and the cache's size
        return removed + await storage.tidy(min_age)
