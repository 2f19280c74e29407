"""The two exception families of the POP3 core (h11 style)."""

from __future__ import annotations

from .replies import Err


class Pop3Error(Exception):
    """Base of all errors raised by the POP3 core."""


class PeerError(Pop3Error):
    """The client broke the protocol; ``reply`` is the ``-ERR`` to send it.

    The offending line has been consumed, so the session sends the reply and goes on
    (unless ``fatal`` is set, when it sends the reply and closes).
    """

    def __init__(self, reply: Err, *, fatal: bool = False) -> None:
        super().__init__(reply.text)
        self.reply = reply
        self.fatal = fatal


class LocalProtocolError(Pop3Error):
    """Our own code misused the core (a reply with no command pending, and so on)."""
