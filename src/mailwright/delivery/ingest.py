"""Getting message bytes into the store: stream, fsync, parse once."""

from __future__ import annotations

from mailwright.store.api import BlobStore, StagedBlob


async def stage_bytes(store: BlobStore, data: bytes, *, prefix: bytes = b"") -> StagedBlob:
    """Stage a message held in memory (APPEND, import, bounces); `prefix` is prepended."""
    w = store.blob_writer()
    try:
        if prefix:
            w.write(prefix)
        w.write(data)
        return await w.finish()
    except BaseException:
        w.abort()
        raise
