"""COMPRESS=DEFLATE (RFC 4978): a Transport wrapper that inflates what the client sends and
deflates what we send, flushing (Z_SYNC_FLUSH) at every drain so responses are never held
back.  Inflation is bounded per read (``unconsumed_tail``), so a small compressed input
cannot expand into unbounded memory at once."""

from __future__ import annotations

import zlib

from mailwright.imapd.session import Transport

_CHUNK = 64 * 1024


class DeflateTransport:
    """Wraps the session's transport once COMPRESS DEFLATE succeeded."""

    def __init__(self, inner: Transport, level: int = 6) -> None:
        self.inner = inner
        self.peer_ip = inner.peer_ip
        # RFC 4978 4: raw deflate (RFC 1951), no zlib header
        self._out = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._in = zlib.decompressobj(-15)
        self._dirty = False

    @property
    def tls(self) -> bool:
        return self.inner.tls

    @property
    def tls_available(self) -> bool:
        return False

    @property
    def is_loopback(self) -> bool:
        return self.inner.is_loopback

    async def read(self) -> bytes:
        while True:
            tail = self._in.unconsumed_tail
            if tail:
                out = self._in.decompress(tail, _CHUNK)
            else:
                data = await self.inner.read()
                if not data:
                    return b""
                try:
                    out = self._in.decompress(data, _CHUNK)
                except zlib.error:
                    raise ConnectionError("invalid DEFLATE data from client") from None
            if out:
                return out
            if self._in.eof:
                return b""

    def write(self, data: bytes) -> None:
        chunk = self._out.compress(data)
        if chunk:
            self.inner.write(chunk)
        self._dirty = True

    async def drain(self) -> None:
        if self._dirty:
            self.inner.write(self._out.flush(zlib.Z_SYNC_FLUSH))
            self._dirty = False
        await self.inner.drain()

    async def start_tls(self, response: bytes) -> None:
        raise RuntimeError("STARTTLS after COMPRESS")
