"""The two exception families of the IMAP core.

:class:`ProtocolError` is the peer's fault: it carries the response to send (usually a tagged
``BAD``) and, after it is raised from :meth:`ImapConnection.next_event`, the connection is already
resynchronised on the next command, so the session sends the response and carries on (unless
``fatal`` is set, after which the connection must be closed).

:class:`ImapInternalError` is ours: a bug or an impossible state; the session logs it and
answers ``NO [SERVERBUG]`` without showing details to the peer.
"""

from __future__ import annotations

from mailwright.proto.imap.response import Tagged, Untagged, encode


class ProtocolError(Exception):
    """The peer sent something we cannot accept; ``response`` says so."""

    def __init__(
        self,
        text: str,
        *,
        tag: str | None = None,
        status: str = "BAD",
        code: str | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(text)
        self.text = text
        self.tag = tag
        self.status = status
        self.code = code
        self.fatal = fatal

    @property
    def response(self) -> Tagged | Untagged:
        """Tagged if we know the tag, ``* BAD`` otherwise (RFC 9051 7.1.5)."""
        if self.tag is not None:
            return Tagged(self.tag, self.status, self.text, self.code)
        return Untagged.status(self.status, self.text, self.code)

    def to_bytes(self) -> bytes:
        return encode(self.response)

    def with_tag(self, tag: str) -> ProtocolError:
        return ProtocolError(
            self.text, tag=tag, status=self.status, code=self.code, fatal=self.fatal
        )


class ImapInternalError(Exception):
    """Our own failure (never the peer's fault)."""
