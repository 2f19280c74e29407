"""A message while it is being received: bounded memory, the event loop never blocked.

SMTP hands the session message content in chunks of at most one socket read. The spool keeps
small messages in memory and spills larger ones to an unlinked temporary file (nothing to clean
up after a crash), normalising bare LF to CRLF (the stored form) on the way. Every operation on
more than one bounded chunk runs in a worker thread: normalisation, writing, reading back and
copying into the final blobs (a message kept in memory and under `INLINE_COPY` is copied on
the event loop: the writes only fill the file object's buffer until `finish`). What the session holds for one message is therefore at most
`memory_limit` bytes of pending input plus the first `head_limit` bytes, kept so that header
work (From: policy, Date:/Message-ID:, forged Authentication-Results) needs no read-back.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mailwright.store.api import BlobStore, BlobWriter, StagedBlob
from mailwright.store.blobs import CrlfNormalizer

MEMORY_LIMIT = 1024 * 1024  # pending input, and the largest message kept in memory
HEAD_LIMIT = 256 * 1024  # the header section must end within this (Postfix: 100 KiB)
COPY_CHUNK = 1024 * 1024
# Staged from memory on the event loop up to this size (most mail): normalising, hashing and
# buffering 64 KiB costs less than handing the copy to a worker thread and back.
INLINE_COPY = 64 * 1024


class MessageSpool:
    def __init__(
        self,
        directory: Path | None,
        *,
        memory_limit: int | None = None,
        head_limit: int | None = None,
    ) -> None:
        self._dir = directory
        self.memory_limit = MEMORY_LIMIT if memory_limit is None else memory_limit
        self.head_limit = HEAD_LIMIT if head_limit is None else head_limit
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._crlf = CrlfNormalizer()
        self._first = bytearray()  # the first head_limit normalised bytes
        self._file: BinaryIO | None = None
        self._memory: bytes | None = None  # the whole message when it never spilled
        self.size = 0  # normalised bytes so far
        self.closed = False

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> bool:
        """Take one chunk; True when `flush()` should be awaited before the next one."""
        if data:
            self._pending.append(data)
            self._pending_size += len(data)
        return self._pending_size >= self.memory_limit

    async def flush(self) -> None:
        """Write what is pending to the spool file (created on first use), off the loop."""
        if not self._pending:
            return
        chunks, self._pending, self._pending_size = self._pending, [], 0
        await asyncio.to_thread(self._write, chunks)

    def _write(self, chunks: list[bytes]) -> None:
        if self._file is None:
            directory = self._dir if self._dir is not None and self._dir.is_dir() else None
            self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed in close()
        data = self._normalise(chunks)
        self._file.write(data)

    def _normalise(self, chunks: list[bytes]) -> bytes:
        data = self._crlf.feed(b"".join(chunks))
        if len(self._first) < self.head_limit:
            self._first += data[: self.head_limit - len(self._first)]
        self.size += len(data)
        return data

    async def end(self) -> None:
        """The message is complete: small ones stay in memory, larger ones are flushed."""
        if self._file is None and self._pending_size < self.memory_limit:
            chunks, self._pending, self._pending_size = self._pending, [], 0
            self._memory = self._normalise(chunks)
        else:
            await self.flush()
            assert self._file is not None
            await asyncio.to_thread(self._file.flush)

    # ------------------------------------------------------------------ output

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def head(self) -> bytes | None:
        """The header section with its blank line (RFC 5322 2.1), or the whole message when it
        has no body; None when the header section does not end within `head_limit`."""
        first = bytes(self._first)
        if first.startswith(b"\r\n"):
            return b"\r\n"
        idx = first.find(b"\r\n\r\n")
        if idx >= 0:
            return first[: idx + 4]
        if len(first) == self.size:
            return first
        return None

    def chunks(self, skip: int = 0) -> Iterator[bytes]:
        """The normalised content from offset `skip`, in bounded chunks (blocking: threads)."""
        if self._memory is not None:
            if skip < len(self._memory):
                yield self._memory[skip:]
            return
        assert self._file is not None
        fd = self._file.fileno()
        pos = skip
        while True:
            chunk = os.pread(fd, COPY_CHUNK, pos)
            if not chunk:
                return
            pos += len(chunk)
            yield chunk

    async def read_all(self) -> bytes:
        """The whole message in memory (for DKIM, which needs it so); the caller bounds how
        many large messages are read at once."""
        if self._memory is not None:
            return self._memory
        return await asyncio.to_thread(lambda: b"".join(self.chunks()))

    async def stage(
        self, store: BlobStore, prefix: bytes, *, head: bytes | None = None, skip: int = 0
    ) -> StagedBlob:
        """A staged blob of `prefix` + `head` + the content from `skip` on, copied off the loop
        (the head replaces the first `skip` bytes: cleaned or completed header fields)."""
        writer: BlobWriter = store.blob_writer()

        def copy() -> None:
            writer.write(prefix)
            if head is not None:
                writer.write(head)
            for chunk in self.chunks(skip):
                writer.write(chunk)

        try:
            if self._memory is not None and len(prefix) + self.size <= INLINE_COPY:
                copy()  # a few buffered writes and a hash: less than a hand-off to a thread
            else:
                await asyncio.to_thread(copy)
            return await writer.finish()
        except BaseException:
            writer.abort()
            raise

    def close(self) -> None:
        self.closed = True
        self._pending = []
        self._memory = None
        if self._file is not None:
            self._file.close()
            self._file = None
