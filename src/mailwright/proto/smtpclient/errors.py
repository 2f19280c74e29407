"""The two exception families of the SMTP client core (style.md, after h11).

``RemoteProtocolError``: the server broke the protocol (a malformed or oversized reply line, a
reply nobody asked for). The connection cannot go on; the delivery attempt is a temporary failure.

``LocalProtocolError``: we called the core out of turn (MAIL before EHLO, data outside DATA).
A bug in the driver, never the peer's doing.

``DeliveryRefused`` is neither: a pre-flight check found that this message cannot go to this peer
at all (too big for its SIZE, needs SMTPUTF8 it lacks). It carries the RFC 3463 status and text
for the bounce.
"""

from __future__ import annotations


class RemoteProtocolError(Exception):
    """The server's bytes do not follow RFC 5321 4.2."""


class LocalProtocolError(Exception):
    """The caller used the client core in a way its state does not allow."""


class DeliveryRefused(Exception):
    """This message cannot be handed to this server; ``permanent`` decides bounce or retry."""

    def __init__(self, status: str, text: str, *, permanent: bool = True) -> None:
        super().__init__(f"{status} {text}")
        self.status = status
        self.text = text
        self.permanent = permanent
