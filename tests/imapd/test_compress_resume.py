"""COMPRESS=DEFLATE streams survive hibernation (imapd/compress.py): the codec is dropped
and a new one continues both streams, even when the client's compressor refers back to what it
sent before."""

from __future__ import annotations

import zlib

from mailwright.imapd.compress import DeflateCodec


def client() -> tuple[zlib._Compress, zlib._Decompress]:
    return zlib.compressobj(9, zlib.DEFLATED, -15), zlib.decompressobj(-15)


def send(c: zlib._Compress, data: bytes) -> bytes:
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def test_compress_codec_resumes_both_directions() -> None:
    deflate, inflate = client()
    codec = DeflateCodec()
    line = b"a1 UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)\r\n"
    assert codec.decompress(send(deflate, line)) == line
    got = inflate.decompress(codec.compress(b"* 1 EXISTS\r\n") + codec.flush())
    assert got == b"* 1 EXISTS\r\n"
    window = codec.window()
    assert window == line
    resumed = DeflateCodec.resume(window)
    # the same line again: the client's compressor sends it as a back-reference
    again = send(deflate, line)
    assert len(again) < len(line) // 2
    assert resumed.decompress(again) == line
    # and what a new compressor sends continues the client's inflate stream
    assert inflate.decompress(resumed.compress(b"* 2 EXISTS\r\n") + resumed.flush()) == \
        b"* 2 EXISTS\r\n"


def test_compress_codec_keeps_32k_of_the_clients_window() -> None:
    deflate, _ = client()
    codec = DeflateCodec()
    for i in range(2000):
        codec.decompress(send(deflate, b"a%d NOOP %s\r\n" % (i, b"x" * (i % 50))))
    window = codec.window()
    assert window is not None and len(window) == 32 * 1024
    line = b"a1 NOOP " + b"x" * 40 + b"\r\n"
    assert DeflateCodec.resume(window).decompress(send(deflate, line)) == line


def test_compress_codec_not_resumable_inside_a_block() -> None:
    deflate, _ = client()
    codec = DeflateCodec()
    data = send(deflate, b"a1 NOOP\r\n")
    codec.decompress(data[:-2])  # the sync flush's empty block not all here yet
    assert codec.window() is None
    codec.decompress(data[-2:])
    assert codec.window() is None  # the last piece alone does not show the marker: stay awake
    codec.decompress(send(deflate, b"a2 NOOP\r\n"))
    assert codec.window() is not None
    codec.compress(b"* OK\r\n")  # written, not flushed
    assert codec.window() is None
