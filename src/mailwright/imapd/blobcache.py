"""A process-wide cache of message blobs and their parse-once metadata, for FETCH and SEARCH.

Blobs are content-addressed (the id is the SHA-256 of the bytes) and immutable, and the meta
is a pure function of the bytes, so a cache keyed by blob id can never be stale and can be
shared by every session (and every store) of the process.  It plays the part of Dovecot's
in-memory index cache: the second SEARCH or FETCH over the same messages costs no thread hop
to the file system or the database.

:class:`CachingStore` wraps a ``BlobStore`` for the pure FETCH/SEARCH/SORT/THREAD functions: it
answers ``read_blob`` and ``get_meta`` from the cache and delegates everything else.
:meth:`CachingStore.prefetch` loads many messages concurrently before a pass over them, so
that even a cold search waits for the disk in parallel rather than message by message.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable

from mailwright.store.api import BlobStore, BlobWriter, StagedBlob


class LRUBytes:
    """Least-recently-used map of id -> bytes, bounded by total size."""

    __slots__ = ("_items", "hits", "max_bytes", "max_item", "misses", "size")

    def __init__(self, max_bytes: int, max_item: int) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self.max_bytes = max_bytes
        self.max_item = max_item
        self.size = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> bytes | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_item or self.max_bytes <= 0:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._items[key] = value
        self.size += len(value)
        while self.size > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def clear(self) -> None:
        self._items.clear()
        self.size = 0


#: Shared by every session of the process (blob ids are content hashes).
BLOBS = LRUBytes(max_bytes=64 << 20, max_item=1 << 20)
METAS = LRUBytes(max_bytes=16 << 20, max_item=256 << 10)


class CachingStore:
    """A ``BlobStore`` whose ``read_blob``/``get_meta`` go through the shared cache."""

    def __init__(self, store: BlobStore, blobs: LRUBytes = BLOBS, metas: LRUBytes = METAS) -> None:
        self._store = store
        self._blobs = blobs
        self._metas = metas

    # The rest of the BlobStore role, passed through by name (no __getattr__: the role's type
    # is what a holder may call, and mypy checks it).
    def blob_writer(self, *, exact: bool = False) -> BlobWriter:
        return self._store.blob_writer(exact=exact)

    async def read_staged(self, blob: StagedBlob, *, limit: int | None = None) -> bytes:
        return await self._store.read_staged(blob, limit=limit)

    def discard_staged(self, blob: StagedBlob) -> None:
        self._store.discard_staged(blob)

    async def read_blob(self, blob_id: str) -> bytes:
        data = self._blobs.get(blob_id)
        if data is None:
            data = await self._store.read_blob(blob_id)
            self._blobs.put(blob_id, data)
        return data

    async def get_meta(self, blob_id: str) -> bytes:
        data = self._metas.get(blob_id)
        if data is None:
            data = await self._store.get_meta(blob_id)
            self._metas.put(blob_id, data)
        return data

    async def prefetch(
        self, blob_ids: Iterable[str], *, meta: bool, raw: bool, concurrency: int = 16
    ) -> None:
        """Load what is missing, *concurrency* at a time (errors are left for the real
        read to report)."""
        want: list[tuple[bool, str]] = []
        seen: set[str] = set()
        for b in blob_ids:
            if b in seen:
                continue
            seen.add(b)
            if meta and b not in self._metas:
                want.append((True, b))
            if raw and b not in self._blobs:
                want.append((False, b))
        if not want:
            return
        sem = asyncio.Semaphore(concurrency)

        async def one(is_meta: bool, blob_id: str) -> None:
            async with sem:
                try:
                    if is_meta:
                        await self.get_meta(blob_id)
                    else:
                        await self.read_blob(blob_id)
                except Exception:  # noqa: BLE001 - reported by the read that needs it
                    pass

        await asyncio.gather(*(one(m, b) for m, b in want))
