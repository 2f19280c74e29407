"""Message slicing for TOP (RFC 1939 7)."""

from __future__ import annotations


def top(message: bytes, lines: int) -> bytes:
    """The header block, the blank line after it and the first ``lines`` body lines.

    Lines end at LF (a stored message is CRLF throughout; bare LF is tolerated so the
    slice never cuts a line in half).  A message without a blank line is all header, so
    it is returned whole.  ``lines`` beyond the end simply yields the whole message.
    """
    if lines < 0:
        raise ValueError("lines must be >= 0")
    body_start = _body_start(message)
    if body_start is None:
        return message
    pos = body_start
    for _ in range(lines):
        nl = message.find(b"\n", pos)
        if nl < 0:
            return message
        pos = nl + 1
    return message[:pos]


def _body_start(message: bytes) -> int | None:
    # RFC 5322 2.1: the header section ends at the first empty line.
    if message.startswith(b"\r\n"):
        return 2
    if message.startswith(b"\n"):
        return 1
    pos = 0
    while True:
        nl = message.find(b"\n", pos)
        if nl < 0:
            return None
        nxt = nl + 1
        if message.startswith(b"\r\n", nxt):
            return nxt + 2
        if message.startswith(b"\n", nxt):
            return nxt + 1
        pos = nxt
