"""COMPRESS=DEFLATE (RFC 4978): the session's codec once the command succeeded.

The session keeps its transport (so the listener's guards still see the real connection)
and passes its bytes through this codec: what the client sends is inflated, what we send is
deflated and flushed (Z_SYNC_FLUSH) at every drain so that no response is held back.
Inflation is bounded per call (``unconsumed_tail``), so a small compressed input cannot
expand into unbounded memory at once.
"""

from __future__ import annotations

import zlib

_CHUNK = 64 * 1024


class DeflateError(Exception):
    """The client's stream is not valid DEFLATE."""


class DeflateCodec:
    __slots__ = ("_dirty", "_in", "_out")

    def __init__(self, level: int = 6) -> None:
        # RFC 4978 4: raw deflate (RFC 1951), no zlib header
        self._out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15)
        self._dirty = False

    def compress(self, data: bytes) -> bytes:
        self._dirty = True
        return self._out.compress(data)

    def flush(self) -> bytes:
        """Everything written so far, decodable by the client now."""
        if not self._dirty:
            return b""
        self._dirty = False
        return self._out.flush(zlib.Z_SYNC_FLUSH)

    @property
    def pending(self) -> bool:
        """Compressed input is waiting to be inflated (call ``decompress(b"")``)."""
        return bool(self._in.unconsumed_tail)

    def decompress(self, data: bytes) -> bytes:
        try:
            return self._in.decompress(self._in.unconsumed_tail + data, _CHUNK)
        except zlib.error:
            raise DeflateError("invalid DEFLATE data from client") from None
