"""Content-addressed, immutable message blobs on the file system.

A blob is written to `tmp/` while it streams in, fsync'ed, then renamed to
`blobs/<aa>/<bb>/<sha256>` when the metadata that references it is committed. The rename's
directory entry is fsync'ed before that commit (grouped: one fsync per directory per batch).
A crash anywhere leaves either a staging file or an unreferenced blob, both of which
`BlobFiles.orphans()` finds for the garbage collector; never a reference without its file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mailwright.diskspace import free_space
from mailwright.store.api import NotFound, StagedBlob, StorageFull

MetaParser = Callable[[bytes], bytes]
_BARE_LF = re.compile(rb"(?<!\r)\n")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger("mailwright.store")
_dir_sync_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dirsync")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobFiles:
    def __init__(self, root: Path, *, fsync: bool = True, min_free: int = 0) -> None:
        self.root = root
        self.min_free = min_free
        self.blob_dir = root / "blobs"
        self._blob_root = str(self.blob_dir)
        self.tmp_dir = root / "tmp"
        self.fsync = fsync
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def check_room(self, size: int) -> None:
        """Refuse new data while free space is below the reserve (as Postfix's queue_minfree).

        The reserve is what lets expunges, flag changes and the database's own journal go on
        when the disk is nearly full, so that space can be freed again.
        """
        if self.min_free <= 0:
            return
        if not free_space(self.root).room_for(self.min_free, size, spend=True):
            raise StorageFull("free disk space is below the reserve")

    def path_for(self, blob_id: str) -> Path:
        if not _HEX64.match(blob_id):
            raise ValueError("invalid blob id")
        return self.blob_dir / blob_id[:2] / blob_id[2:4] / blob_id

    def new_tmp(self) -> Path:
        return self.tmp_dir / f"{time.time_ns()}.{secrets.token_hex(6)}.tmp"

    def link(self, staged: StagedBlob, dirty_dirs: set[Path]) -> None:
        """Move a staged file into place (or drop it when the content is already stored).

        Only directories whose entries changed for durability's sake are marked dirty: the
        leaf directory, and its parents only when they were created now. The staging file's
        removal needs no fsync (a leftover is garbage-collected).
        """
        final = self.path_for(staged.blob_id)
        if final.exists():
            if staged._path != final:
                staged._path.unlink(missing_ok=True)
            return
        try:
            parent = final.parent
            if not parent.is_dir():
                if not parent.parent.is_dir():
                    parent.parent.mkdir(exist_ok=True)
                    dirty_dirs.add(self.blob_dir)
                parent.mkdir(exist_ok=True)
                dirty_dirs.add(parent.parent)
            if not staged._path.exists():
                raise FileNotFoundError(staged._path)
            os.link(staged._path, final)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise StorageFull("no space left for message data") from e
            raise
        staged._path.unlink(missing_ok=True)
        dirty_dirs.add(parent)

    def sync_dirs(self, dirs: set[Path]) -> None:
        """fsync every directory of a batch, in parallel: the journal commits them together."""
        if not self.fsync or not dirs:
            return
        if len(dirs) == 1:
            fsync_dir(next(iter(dirs)))
            return
        for _ in _dir_sync_pool.map(fsync_dir, dirs):
            pass

    def read_staged(self, staged: StagedBlob, limit: int | None = None) -> bytes:
        """A staged blob's content (its first `limit` octets): its staging file, or its
        stored file once linked."""
        for path in (staged._path, self.path_for(staged.blob_id)):
            try:
                with path.open("rb") as fh:
                    return fh.read() if limit is None else fh.read(limit)
            except FileNotFoundError:
                continue
        raise NotFound(f"no such blob: {staged.blob_id}")

    def discard_staged(self, staged: StagedBlob) -> None:
        """Remove a staging file (never a stored blob's file)."""
        if staged._path != self.path_for(staged.blob_id):
            staged._path.unlink(missing_ok=True)

    def read(self, blob_id: str) -> bytes:
        return self.path_for(blob_id).read_bytes()

    def read_if_small(self, blob_id: str, limit: int = 256 * 1024) -> bytes | None:
        """The content when it is at most `limit` bytes, else None (read it in a thread).

        Most mail is small and in the page cache: one short blocking read costs less than a
        hop to a worker thread (measured on POP3 RETR: about a third of the server's CPU).
        """
        if not _HEX64.match(blob_id):
            raise ValueError("invalid blob id")
        fd = os.open(f"{self._blob_root}/{blob_id[:2]}/{blob_id[2:4]}/{blob_id}", os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size > limit:
                return None
            chunks = []
            while size > 0:
                chunk = os.read(fd, size)
                if not chunk:
                    break
                chunks.append(chunk)
                size -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def remove(self, blob_id: str) -> None:
        self.path_for(blob_id).unlink(missing_ok=True)

    def all_ids(self) -> Iterator[tuple[str, Path]]:
        for p in self.blob_dir.glob("*/*/*"):
            if _HEX64.match(p.name):
                yield p.name, p

    def stale_tmp(self, min_age: float) -> Iterator[Path]:
        cutoff = time.time() - min_age
        for p in self.tmp_dir.iterdir():
            try:
                if p.stat().st_mtime <= cutoff:
                    yield p
            except FileNotFoundError:
                continue


# Messages above this size are parsed (which needs them whole in memory) one at a time.
LARGE_PARSE = 4 * 1024 * 1024
# A blob up to this size keeps its bytes in memory until `finish`, which parses them from there
# instead of reading the staging file back (an open, a read and a close per message).
KEEP_FOR_PARSE = 64 * 1024
# ... and up to this size it is parsed on the event loop (about 0.4 ms for 4 KiB), the fsync
# alone in a worker thread.
PARSE_ON_LOOP = 16 * 1024
_LARGE_PARSE_SLOTS = threading.BoundedSemaphore(1)


class CrlfNormalizer:
    """Turns bare LF into CRLF in a stream of chunks, across chunk boundaries.

    RFC 5322 2.3 wants CRLF; the canonical stored form is CRLF (see FileBlobWriter). A CR at
    the end of one chunk followed by LF at the start of the next is one CRLF, not a bare LF.
    """

    __slots__ = ("_last_cr",)

    def __init__(self) -> None:
        self._last_cr = False

    def feed(self, data: bytes) -> bytes:
        if not data:
            return data
        # every LF already after a CR (the usual case, and always for what the SMTP spool
        # normalised before): two counts in C instead of a regular-expression substitution
        if b"\n" in data and data.count(b"\n") != data.count(b"\r\n"):
            if data[0:1] == b"\n" and self._last_cr:
                data = b"\n" + _BARE_LF.sub(b"\r\n", data[1:])
            else:
                data = _BARE_LF.sub(b"\r\n", data)
        self._last_cr = data.endswith(b"\r")
        return data


class FileBlobWriter:
    """Streams a message to a staging file, normalising bare LF to CRLF as it goes.

    Stored messages are in canonical CRLF form, so sizes, offsets and BODY[] bytes agree for
    every protocol (Dovecot shows the same: bare LF is served as CRLF).  With *exact* the
    bytes are kept as sent: binary content (an IMAP APPEND of a literal8, RFC 3516 4.4) must
    come back octet for octet.
    """

    def __init__(
        self, files: BlobFiles, meta_parser: MetaParser | None, max_size: int | None = None,
        *, exact: bool = False,
    ) -> None:
        self._exact = exact
        self._files = files
        self._meta_parser = meta_parser
        self._path = files.new_tmp()
        self._fh = open(self._path, "wb")  # noqa: SIM115 - closed in finish/abort
        self._hash = hashlib.sha256()
        self._size = 0
        self._crlf = CrlfNormalizer()
        self._failed: OSError | None = None
        self._done = False
        self._kept: list[bytes] | None = [] if meta_parser is not None else None

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        """Normalise, hash and write one chunk (blocking: callers on the event loop use a
        worker thread for anything but small chunks)."""
        if self._done or not data:
            return
        if not self._exact:
            data = self._crlf.feed(data)
        self._hash.update(data)
        self._size += len(data)
        if self._kept is not None:
            if self._size <= KEEP_FOR_PARSE:
                self._kept.append(bytes(data))  # (a bytes object is not copied)
            else:
                self._kept = None
        if self._failed is None:
            try:
                self._fh.write(data)
            except OSError as e:
                self._failed = e

    def _make_durable(self) -> None:
        """Flush and fsync the staging file (blocking: a worker thread's work)."""
        try:
            if self._failed is not None:
                raise self._failed
            self._files.check_room(self._size)
            self._fh.flush()
            if self._files.fsync:
                os.fsync(self._fh.fileno())
            self._fh.close()
        except StorageFull:
            self.abort()
            raise
        except OSError as e:
            self.abort()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("no space left for message data") from e
            raise

    def _meta(self) -> bytes:
        """The parse-once meta, from the bytes kept in memory or read back from staging."""
        if self._meta_parser is None:
            return b""
        # The parser needs the whole message in memory: large ones take turns, so that
        # many concurrent large messages cost one message's worth of memory, not many.
        slot = _LARGE_PARSE_SLOTS if self._size > LARGE_PARSE else contextlib.nullcontext()
        try:
            with slot:
                kept, self._kept = self._kept, None
                raw = b"".join(kept) if kept is not None else self._path.read_bytes()
                return self._meta_parser(raw)
        except Exception:  # noqa: BLE001 - never refuse mail because it does not parse
            log.warning("message %s did not parse; stored raw", self._hash.hexdigest()[:12])
            return b""

    def _finish_sync(self) -> StagedBlob:
        self._make_durable()
        return StagedBlob(self._hash.hexdigest(), self._size, self._path, self._meta())

    async def finish(self) -> StagedBlob:
        self._done = True
        if self._kept is not None and self._size <= PARSE_ON_LOOP:
            # A small message is parsed here, on the loop, while a thread fsyncs it: a thread
            # that parses holds the GIL against the loop (each switch between them costs
            # wake-ups), one that waits in fsync does not. The parse reads the kept bytes,
            # never the file the thread closes.
            durable = asyncio.get_running_loop().run_in_executor(None, self._make_durable)
            meta = self._meta()
            await durable
            return StagedBlob(self._hash.hexdigest(), self._size, self._path, meta)
        return await asyncio.to_thread(self._finish_sync)

    def finish_sync(self) -> StagedBlob:
        self._done = True
        return self._finish_sync()

    def abort(self) -> None:
        self._done = True
        try:
            self._fh.close()
        finally:
            self._path.unlink(missing_ok=True)
