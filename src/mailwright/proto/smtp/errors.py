"""The two exception families of the SMTP core (style.md, after h11).

`SMTPProtocolError` is the peer's fault and carries the reply to send; the core catches it at
the command boundary, so it never escapes `next_event()`. `LocalProtocolError` is our own
fault: the session called the core's API out of turn, a bug to fix rather than a reply to send.
"""

from __future__ import annotations

from .replies import Reply


class SMTPProtocolError(Exception):
    """The client broke the protocol; `reply` is what it gets."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


class LocalProtocolError(Exception):
    """The session used the core's API in a way the protocol state does not allow."""
