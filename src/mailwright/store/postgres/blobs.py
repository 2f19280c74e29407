"""Message content in PostgreSQL `bytea`: the `data` column of the blob's row.

The remote half of `[storage] blobs = "database"` (the default on PostgreSQL, for nodes that
share no file system); `store.blobstore.CachedBlobs` puts the node-local file cache in
front of it. The bytes go up in a short transaction of their own before the unit that
references them (a row with refs = 0; see the house rules of `store.py`), so that a large
message holds no mailbox lock while it travels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from psycopg import AsyncConnection

from mailwright.store.api import StagedBlob

T = TypeVar("T")
Conn = AsyncConnection[Any]
Runner = Callable[[Callable[[Conn], Awaitable[Any]]], Awaitable[Any]]


class DatabaseBlobs:
    """`blobstore.RemoteBlobs` on the `blobs` table; `run` is the store's pooled runner
    (one retry on a broken connection)."""

    def __init__(self, run: Runner) -> None:
        self._run = run

    async def put(self, blob: StagedBlob, data: bytes) -> None:
        """Idempotent upload (ON CONFLICT DO NOTHING). It commits without waiting for its WAL
        flush: it is referenced only by a later transaction that commits synchronously, and
        that flush covers every earlier WAL record, so a crash can lose the upload only
        together with the reference that needed it."""

        async def run(conn: Conn) -> None:
            cur = await conn.execute("SELECT 1 FROM blobs WHERE id = %s", (blob.blob_id,))
            if await cur.fetchone() is not None:
                return
            async with conn.pipeline(), conn.transaction():  # one round trip
                await conn.execute("SET LOCAL synchronous_commit TO OFF")
                await conn.execute(
                    "INSERT INTO blobs(id, size, refs, meta, data)"
                    " VALUES (%s, %s, 0, %s, %s) ON CONFLICT (id) DO NOTHING",
                    (blob.blob_id, blob.size, blob.meta, data),
                )

        await self._run(run)

    async def get(self, blob_id: str) -> bytes | None:
        async def fetch(conn: Conn) -> Any:
            cur = conn.cursor(binary=True)
            await cur.execute("SELECT data FROM blobs WHERE id = %s", (blob_id,))
            return await cur.fetchone()

        row = await self._run(fetch)
        return None if row is None or row[0] is None else bytes(row[0])
