"""Progress bars for long operator commands (import, export, check).

A bar is drawn on standard error only when standard error is a terminal; piped or redirected
output gets nothing extra, so scripts and logs see exactly the lines they saw before.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO


class Progress:
    """A counter that may draw a bar; a no-op when its stream is not a terminal."""

    def __init__(self, total: int | None, desc: str, unit: str, stream: TextIO) -> None:
        self._bar: Any = None
        if stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=stream, leave=True,
                             dynamic_ncols=True, mininterval=0.2)

    @property
    def drawing(self) -> bool:
        return self._bar is not None

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def add_total(self, n: int) -> None:
        """Grow the total when more work is discovered on the way (IMAP mailboxes)."""
        if self._bar is not None:
            self._bar.total = (self._bar.total or 0) + n
            self._bar.refresh()

    def write(self, line: str) -> None:
        """A warning line that does not tear the bar."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def progress(total: int | None, desc: str, unit: str = "msg") -> Progress:
    return Progress(total, desc, unit, sys.stderr)
