"""Server side of SASL mechanisms (RFC 4422), shared by SMTP AUTH, IMAP and POP3.

Sans-I/O: a mechanism object takes the client's decoded responses and returns the next step.
Base64, cancellation ("*") and line limits belong to the protocol that carries SASL (RFC 4954 4
for SMTP), so this module sees raw octets only. PLAIN (RFC 4616) and LOGIN
(draft-murchison-sasl-login) end in a password to check; the caller checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# RFC 4616 2: each of authzid, authcid and passwd is at most 255 octets of UTF-8.
MAX_FIELD = 255


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send `data` to the client and wait for its response."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Credentials:
    """The exchange is complete: check `password` for `authcid`, acting as `authzid`."""

    authzid: str
    authcid: str
    password: str


@dataclass(frozen=True, slots=True)
class SaslFailure:
    """The client's response was malformed; the exchange ends with a failure."""

    reason: str


SaslStep = Challenge | Credentials | SaslFailure


class ServerMechanism(Protocol):
    name: str

    def start(self, initial: bytes | None) -> SaslStep:
        """Begin; `initial` is the initial response (RFC 4422 3.3), None if none was sent."""
        ...

    def step(self, response: bytes) -> SaslStep:
        """Continue with the client's response to the last challenge."""
        ...


def _utf8(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text


class PlainMechanism:
    """RFC 4616: one message, `[authzid] NUL authcid NUL passwd`."""

    name = "PLAIN"

    def start(self, initial: bytes | None) -> SaslStep:
        if initial is None:
            # RFC 4616 2: the server sends an empty challenge when there is no initial response.
            return Challenge(b"")
        return self.step(initial)

    def step(self, response: bytes) -> SaslStep:
        parts = response.split(b"\x00")
        if len(parts) != 3:
            return SaslFailure("PLAIN message needs exactly two NUL separators")
        if any(len(p) > MAX_FIELD for p in parts):
            return SaslFailure("PLAIN field too long")
        authzid, authcid, password = (_utf8(p) for p in parts)
        if authzid is None or authcid is None or password is None:
            return SaslFailure("PLAIN message is not UTF-8")
        if not authcid or not password:
            return SaslFailure("PLAIN needs an authentication identity and a password")
        return Credentials(authzid, authcid, password)


class LoginMechanism:
    """The obsolete LOGIN mechanism, still used by many clients: username, then password."""

    name = "LOGIN"

    def __init__(self) -> None:
        self._user: str | None = None

    def start(self, initial: bytes | None) -> SaslStep:
        if initial is None:
            return Challenge(b"Username:")
        # Widely implemented: the initial response carries the username.
        return self.step(initial)

    def step(self, response: bytes) -> SaslStep:
        text = _utf8(response)
        if text is None or len(response) > MAX_FIELD or "\x00" in text:
            return SaslFailure("LOGIN response is not a valid UTF-8 string")
        if self._user is None:
            if not text:
                return SaslFailure("empty username")
            self._user = text
            return Challenge(b"Password:")
        return Credentials("", self._user, text)


_MECHANISMS: dict[str, type[PlainMechanism] | type[LoginMechanism]] = {
    "PLAIN": PlainMechanism,
    "LOGIN": LoginMechanism,
}

#: Mechanisms this module implements, in the order servers should advertise them.
SUPPORTED = tuple(_MECHANISMS)


def server_mechanism(name: str) -> ServerMechanism | None:
    """A fresh mechanism for one exchange, or None if `name` is not implemented."""
    cls = _MECHANISMS.get(name.upper())
    return cls() if cls is not None else None
