"""COMPRESS=DEFLATE (RFC 4978): the session's codec once the command succeeded.

The session keeps its transport (so the listener's guards still see the real connection)
and passes its bytes through this codec: what the client sends is inflated, what we send is
deflated and flushed (Z_SYNC_FLUSH) at every drain so that no response is held back.
Inflation is bounded per call (``unconsumed_tail``), so a small compressed input cannot
expand into unbounded memory at once.

Hibernation (imapd/hibernate.py): a zlib compressor holds about 256 KiB and a decompressor
about 40 KiB, far more than a waiting session should. Both directions can be rebuilt:

* ours: every drain ends with a sync flush, so the client's inflater is at a block boundary
  and a new compressor's blocks continue the stream (raw DEFLATE has no header, RFC 1951);
  they refer to nothing sent before, which is always allowed.
* the client's: its compressor may refer to anything it sent in the last 32 KiB, so the new
  inflater is given those octets as its dictionary (``zdict``: the window). It must also be
  between two blocks: the last input ended with the empty stored block of a sync flush
  (``00 00 ff ff``, which RFC 4978 4 makes the client send after each command) and was all
  consumed; otherwise the session does not hibernate.
"""

from __future__ import annotations

import zlib

_CHUNK = 64 * 1024
_WINDOW = 32 * 1024  # RFC 1951 2: back-references reach at most 32,768 octets
_SYNC = b"\x00\x00\xff\xff"


class DeflateError(Exception):
    """The client's stream is not valid DEFLATE."""


class DeflateCodec:
    __slots__ = ("_dirty", "_history", "_in", "_out", "_synced")

    def __init__(self, level: int = 6, window: bytes = b"") -> None:
        # RFC 4978 4: raw deflate (RFC 1951), no zlib header
        self._out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15, zdict=window) if window else zlib.decompressobj(-15)
        self._dirty = False
        #: the client's last 32 KiB, inflated: its compressor's window (for `resumable`)
        self._history = window
        self._synced = True

    @classmethod
    def resume(cls, window: bytes) -> DeflateCodec:
        """The codec of a session woken from hibernation (`window` from `window()`)."""
        return cls(window=window)

    def window(self) -> bytes | None:
        """What a resumed codec needs, or None when the streams are not at a point where
        they can be rebuilt (see the module docstring)."""
        if self._dirty or self._in.unconsumed_tail or not self._synced:
            return None
        return self._history

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
            out = self._in.decompress(self._in.unconsumed_tail + data, _CHUNK)
        except zlib.error:
            raise DeflateError("invalid DEFLATE data from client") from None
        if data:
            self._synced = data.endswith(_SYNC)
        if out:
            history = self._history + out
            self._history = history[-_WINDOW:] if len(history) > _WINDOW else history
        return out
