"""Where message content lives: the blob storage behind a backend, one small interface.

The rows that reference a blob (its `blobs` row: size, reference count, meta) are the
backend's and its `Tx`'s; the bytes are a `BlobStorage`'s. Three kinds:

- `FileBlobs`: content-addressed files, fsync'ed, their directory entries fsync'ed before the
  COMMIT that references them (`store/blobs.py` does the file work). The SQLite backend's
  only kind; PostgreSQL's `[storage] blobs = "files"` (one node, or nodes sharing the data
  directory).
- a remote storage (`RemoteBlobs`: PostgreSQL `bytea`, `store/postgres/blobs.py`), reached
  by every node, wrapped by
- `CachedBlobs`: the node-local file cache in front of a remote storage; a cache file is
  never the only copy, so it needs no fsync and may be dropped at any time.

House rules. A staged blob (`api.StagedBlob`) is always a node-local staging file under
`tmp/`; its lifetime is the storage's: a unit of work that references it makes it stored
(`keep` inside the unit, `settle` after its COMMIT), `discard_staged` drops it otherwise, and
the collector removes staging files nobody finished. Nothing outside `mailwright.store`
sees a path. A unit that references a blob runs in this order: `upload` (before the unit:
a large message holds no lock while its bytes travel), the row and `keep` inside the unit,
`settle` after COMMIT. The collector (`store/core/garbage.py`) asks for `candidates` outside
any transaction and calls `remove` inside a unit that has checked again, under the backend's
lock, that no row names the blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mailwright.store.api import NotFound, StagedBlob
from mailwright.store.blobs import BlobFiles, FileBlobWriter, MetaParser

Progress = Callable[[int], None]


class BlobStorage(Protocol):
    """The bytes of blobs: staged, stored, read, removed, listed for the collector."""

    files: BlobFiles  # the node-local directory: staging (`tmp/`), stored or cached files

    def writer(
        self, meta_parser: MetaParser | None, max_size: int | None, *, exact: bool
    ) -> FileBlobWriter:
        """A writer into staging (node-local, fsync'ed at `finish` where durability needs it)."""
        ...

    async def read_staged(self, blob: StagedBlob, limit: int | None = None) -> bytes:
        """A staged blob's content (its first `limit` octets): staging file or stored copy;
        NotFound once discarded."""
        ...

    def discard_staged(self, blob: StagedBlob) -> None:
        """Drop a staging file no unit referenced; stored content is never touched."""
        ...

    async def upload(self, blob: StagedBlob) -> None:
        """Before the unit that references it: send the bytes where every node finds them
        (a remote storage, in a transaction of its own); nothing for files."""
        ...

    async def row_data(self, blob: StagedBlob) -> bytes | None:
        """The bytes a new `blobs` row must carry (a database storage keeps them in the
        row), or None when they live elsewhere; NotFound when a remote storage needs them
        and they are gone."""
        ...

    def keep(self, blob: StagedBlob, dirty: set[Path]) -> None:
        """Inside the unit that creates (or revives) the blob's row: make the content
        stored and durable before COMMIT (files: link into place, marking the directories
        to fsync in `dirty`); nothing for a storage whose bytes travel in the row."""
        ...

    def settle(self, blob: StagedBlob) -> None:
        """After the COMMIT that referenced a staged blob: its staging file goes (into the
        node-local cache, or away)."""
        ...

    async def read(self, blob_id: str) -> bytes:
        """A stored blob's content; NotFound."""
        ...

    def remove(self, blob_id: str) -> None:
        """Remove stored content (the collector, inside the unit that deleted its row)."""
        ...

    async def candidates(self, min_age: float, progress: Progress | None = None) -> list[str]:
        """Ids of content held here for at least `min_age` seconds, which the collector
        compares with the rows (found outside any transaction; `progress(n)` from the
        walking thread every 1000 files)."""
        ...

    async def tidy(self, min_age: float) -> int:
        """Remove what no row can name (staging files older than `min_age`) and trim a
        cache; how many files went."""
        ...

    def missing(self, blob_ids: list[str]) -> list[str]:
        """Of these ids, those whose content this storage should hold and does not
        (`check`); a cache holds nothing for sure, so it answers none."""
        ...


class _Staging:
    """Staging in node-local files, shared by every kind of storage."""

    files: BlobFiles

    def writer(
        self, meta_parser: MetaParser | None, max_size: int | None, *, exact: bool
    ) -> FileBlobWriter:
        return FileBlobWriter(self.files, meta_parser, max_size, exact=exact)

    async def read_staged(self, blob: StagedBlob, limit: int | None = None) -> bytes:
        return await asyncio.to_thread(self.files.read_staged, blob, limit)

    def discard_staged(self, blob: StagedBlob) -> None:
        self.files.discard_staged(blob)

    def _staged_bytes(self, blob: StagedBlob) -> bytes | None:
        """The staged content, whole (its staging file, or the stored file once linked)."""
        try:
            data = self.files.read_staged(blob)
        except NotFound:
            return None
        return data if len(data) == blob.size else None

    async def tidy(self, min_age: float) -> int:
        return await asyncio.to_thread(_unlink_all, list(self.files.stale_tmp(min_age)))


class FileBlobs(_Staging):
    """Content-addressed files with fsync and directory fsync: the content is durable
    before the COMMIT that references it, so a crash leaves at worst a file no row knows."""

    def __init__(self, files: BlobFiles) -> None:
        self.files = files

    async def upload(self, blob: StagedBlob) -> None:
        return None

    async def row_data(self, blob: StagedBlob) -> bytes | None:
        return None

    def keep(self, blob: StagedBlob, dirty: set[Path]) -> None:
        self.files.link(blob, dirty)

    def settle(self, blob: StagedBlob) -> None:
        # linked by `keep`, or the content was stored already: the staging file is spare
        self.files.discard_staged(blob)

    async def read(self, blob_id: str) -> bytes:
        try:
            data = self.files.read_if_small(blob_id)
            if data is None:
                data = await asyncio.to_thread(self.files.read, blob_id)
            return data
        except (FileNotFoundError, ValueError):
            raise NotFound(f"no such blob: {blob_id}") from None

    def remove(self, blob_id: str) -> None:
        self.files.remove(blob_id)

    async def candidates(self, min_age: float, progress: Progress | None = None) -> list[str]:
        return await asyncio.to_thread(_walk, self.files, time.time() - min_age, progress)

    def missing(self, blob_ids: list[str]) -> list[str]:
        return [b for b in blob_ids if not self.files.path_for(b).exists()]


class RemoteBlobs(Protocol):
    """Durable content every node reaches (PostgreSQL `bytea`: `store/postgres/blobs.py`)."""

    async def put(self, blob: StagedBlob, data: bytes) -> None:
        """Store the content unless it is there already (an idempotent upload)."""
        ...

    async def get(self, blob_id: str) -> bytes | None:
        """The content, or None."""
        ...


class CachedBlobs(_Staging):
    """A remote storage with a node-local file cache in front (least recently read trimmed
    first, past `max_bytes`). Cache files are written without fsync: a cache file that does
    not match its name (a power loss) is dropped and read again from the remote."""

    def __init__(self, remote: RemoteBlobs, files: BlobFiles, max_bytes: int) -> None:
        self.remote = remote
        self.files = files
        self.max_bytes = max_bytes

    async def upload(self, blob: StagedBlob) -> None:
        data = await asyncio.to_thread(self._staged_bytes, blob)
        if data is not None:  # else the unit reports it if the blob is really unknown
            await self.remote.put(blob, data)

    async def row_data(self, blob: StagedBlob) -> bytes | None:
        data = await asyncio.to_thread(self._staged_bytes, blob)
        if data is None:
            raise NotFound(f"no such blob: {blob.blob_id}")
        return data

    def keep(self, blob: StagedBlob, dirty: set[Path]) -> None:
        return None  # the bytes travel in the row

    def settle(self, blob: StagedBlob) -> None:
        # the staging file becomes this node's cached copy (or goes away)
        files = self.files
        try:
            files.link(blob, set())
        except (OSError, ValueError):
            files.discard_staged(blob)

    async def read(self, blob_id: str) -> bytes:
        try:
            path = self.files.path_for(blob_id)
        except ValueError:
            raise NotFound(f"no such blob: {blob_id}") from None
        data = await asyncio.to_thread(_read_touch, path, blob_id)
        if data is not None:
            return data
        data = await self.remote.get(blob_id)
        if data is None:
            raise NotFound(f"no such blob: {blob_id}")
        await asyncio.to_thread(_cache_put, self.files, blob_id, data)
        return data

    def remove(self, blob_id: str) -> None:
        self.files.remove(blob_id)  # the remote copy went with its row

    async def candidates(self, min_age: float, progress: Progress | None = None) -> list[str]:
        return await asyncio.to_thread(_walk, self.files, time.time() - min_age, progress)

    async def tidy(self, min_age: float) -> int:
        n = await super().tidy(min_age)
        await asyncio.to_thread(_trim_cache, self.files, self.max_bytes)
        return n

    def missing(self, blob_ids: list[str]) -> list[str]:
        return []


# -- file helpers (run in threads) -----------------------------------------------------------


def _walk(files: BlobFiles, cutoff: float, progress: Progress | None) -> list[str]:
    found: list[str] = []
    for n, (blob_id, path) in enumerate(files.all_ids(), 1):
        if progress is not None and n % 1000 == 0:
            progress(n)
        try:
            if path.stat().st_mtime <= cutoff:
                found.append(blob_id)
        except FileNotFoundError:
            continue
    return found


def _unlink_all(paths: list[Path]) -> int:
    n = 0
    for p in paths:
        try:
            p.unlink()
            n += 1
        except FileNotFoundError:
            continue
    return n


def _read_touch(path: Path, blob_id: str) -> bytes | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    # Cache files are written without fsync (the remote holds the durable copy), so after a
    # power loss one may be short or empty: the content must match its name to be served.
    if hashlib.sha256(data).hexdigest() != blob_id:
        path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # least-recently-read trimming
    return data


def _cache_put(files: BlobFiles, blob_id: str, data: bytes) -> None:
    if hashlib.sha256(data).hexdigest() != blob_id:
        return  # never cache what does not match its name
    final = files.path_for(blob_id)
    tmp = files.new_tmp()
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.link(tmp, final)
    except OSError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _trim_cache(files: BlobFiles, max_bytes: int) -> None:
    entries = []
    total = 0
    for _blob_id, p in files.all_ids():
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        entries.append((st.st_mtime, st.st_size, p))
        total += st.st_size
    if total <= max_bytes:
        return
    entries.sort()
    for _mtime, size, p in entries:
        if total <= max_bytes:
            break
        p.unlink(missing_ok=True)
        total -= size
