"""The C heap of a server process: large blocks go back to the system when freed.

glibc's malloc serves a block of 128 KiB or more with its own mmap, and unmaps it on free; but
after such a block is freed it raises that threshold to the block's size (up to 32 MiB), so
the next ones of that size come from the heap, where freed memory stays with the process. A
burst of logins is such a pattern: each argon2id check works in a block of its memory cost
(RFC 9106; 4 MiB for the benchmark's cheap hashes, 64 MiB by default) in a worker thread, and
after the first, each thread's heap kept what its checks had used. With 1,000 IDLE sessions
that was 8 MiB of a server that held about 3 MiB for the sessions themselves
(docs/benchmarks.md). Setting the threshold once turns the adjustment off (mallopt(3),
M_MMAP_THRESHOLD), as the MALLOC_MMAP_THRESHOLD_ environment variable would.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # <malloc.h>
#: glibc's own starting value, kept: blocks from 128 KiB on (an argon2 work area, the 256 KiB
#: TLS read buffer of each connection, a zlib compressor) are fresh pages of their own, resident
#: only as far as they are used, and go back to the system when freed
MMAP_THRESHOLD = 128 * 1024


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Pin malloc's mmap threshold at *size* (glibc only); True when it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # another C library (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, size))
