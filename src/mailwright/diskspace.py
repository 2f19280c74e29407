"""Free space of the file system that holds a directory, read at most about once a second.

Both the SMTP session (at MAIL, `[storage] min_free`) and the blob store (before a staged
message is made durable) ask whether some more bytes fit above the reserve. Asking the kernel
each time (`statvfs`) was a tenth of the event loop's busy time on SMTP ingest: on a busy disk
the call waits for the file system. `FreeSpace` keeps the last reading for `interval` seconds,
or until this process has written a quarter of the reserve since, so the estimate errs at most
by what was written meanwhile besides (other processes, the database's journal), which the
reserve is there to absorb; a refusal is never decided on an old
reading (the kernel is asked again first), so space that comes back is seen at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

_SHARED: dict[str, FreeSpace] = {}
_SHARED_LOCK = threading.Lock()


class FreeSpace:
    def __init__(
        self, path: Path | str, *, interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.path = os.fspath(path)
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._free = 0  # at the last reading
        self._spent = 0  # bytes written by this process since then
        self._read_at = float("-inf")
        self.readings = 0  # statvfs calls (for tests)

    def _read(self) -> int:
        st = os.statvfs(self.path)
        free = st.f_bavail * st.f_frsize
        with self._lock:
            self._free, self._spent, self._read_at = free, 0, self._clock()
            self.readings += 1
        return free

    def room_for(self, reserve: int, size: int, *, spend: bool = False) -> bool:
        """Whether `size` more bytes leave at least `reserve` free (OSError when the kernel
        cannot say); with `spend`, count them as written when they fit."""
        with self._lock:
            fresh = self._clock() - self._read_at < self.interval
            # at most a quarter of the reserve written on the old reading: the file system
            # spends more than the bytes counted here (journals, indexes, block rounding)
            if (fresh and self._spent + size <= reserve // 4
                    and self._free - self._spent >= reserve + size):  # fmt: skip
                if spend:
                    self._spent += size
                return True
        free = self._read()
        if free < reserve + size:
            return False
        if spend:
            with self._lock:
                self._spent += size
        return True


def free_space(path: Path | str) -> FreeSpace:
    """The process's one `FreeSpace` for `path` (the session and the store share it)."""
    given = os.fspath(path)
    found = _SHARED.get(given)
    if found is not None:
        return found
    real = os.path.realpath(given)
    with _SHARED_LOCK:
        found = _SHARED.get(real)
        if found is None:
            found = FreeSpace(real)
        _SHARED[given] = _SHARED[real] = found
        return found
