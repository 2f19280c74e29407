"""The DATA stream: dot-stuffing and line-ending repair (RFC 5321 4.5.2, 2.3.8), and a scan for
what a message needs from the server (8BITMIME, SMTPUTF8).

The encoder streams: it keeps at most one byte of state between chunks, so a message of any size
goes out without being held in memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DotStuffer", "MessageTraits", "scan_message"]

_EOL = re.compile(rb"\r\n|\r|\n")


class DotStuffer:
    """Encodes message bytes for DATA: every line ends in CRLF, a leading "." is doubled."""

    def __init__(self) -> None:
        self._carry = b""
        self._line_start = True
        self._finished = False

    def feed(self, chunk: bytes) -> bytes:
        if self._finished:
            raise ValueError("data already finished")
        data = self._carry + chunk
        # A CR at the end may be the first half of a CRLF split across chunks.
        if data.endswith(b"\r"):
            self._carry, data = b"\r", data[:-1]
        else:
            self._carry = b""
        if not data:
            return b""
        # RFC 5321 2.3.8: bare CR and bare LF are not line endings on the wire; make them CRLF.
        data = _EOL.sub(b"\r\n", data)
        # RFC 5321 4.5.2: a line starting with "." gets one more "." in front.
        if self._line_start and data.startswith(b"."):
            data = b"." + data
        data = data.replace(b"\r\n.", b"\r\n..")
        self._line_start = data.endswith(b"\r\n")
        return data

    def end(self) -> bytes:
        """The remaining bytes and the end-of-data line "." CRLF."""
        tail = b"\r\n" if self._carry else b""
        self._carry = b""
        if tail:
            self._line_start = True
        self._finished = True
        if not self._line_start:
            tail += b"\r\n"
        return tail + b".\r\n"


def stuff(message: bytes) -> bytes:
    """The whole DATA payload for a message held in memory (for tests and small messages)."""
    encoder = DotStuffer()
    return encoder.feed(message) + encoder.end()


@dataclass(frozen=True, slots=True)
class MessageTraits:
    """What a message needs from the server it goes to."""

    eight_bit: bool  # any octet > 127 anywhere (RFC 6152)
    utf8_headers: bool  # non-ASCII in the header section (RFC 6532, needs SMTPUTF8)


def scan_message(message: bytes) -> MessageTraits:
    """Classify a message's bytes; the header ends at the first empty line."""
    split = re.search(rb"\r?\n\r?\n", message)
    header = message if split is None else message[: split.start()]
    return MessageTraits(
        eight_bit=not message.isascii(),
        utf8_headers=not header.isascii(),
    )
