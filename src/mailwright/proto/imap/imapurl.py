"""IMAP URLs (RFC 5092) naming a message or a part of one, and URLAUTH (RFC 4467) tokens.

Only what CATENATE (RFC 4469), URLFETCH/GENURLAUTH (RFC 4467) and BURL (RFC 4468) need is
accepted: a URL that names one message by UID, optionally a section and a partial range, and
optionally an expiry and a URLAUTH access identifier with its verifier:

    imap://[enc-user[;AUTH=...]@]host[:port]/enc-mailbox[;UIDVALIDITY=n]/;UID=n
        [/;SECTION=enc-section][/;PARTIAL=offset[.length]]
        [;EXPIRE=date-time][;URLAUTH=access[:mechanism:token]]

A relative URL (``/enc-mailbox...``, RFC 4469 3: relative to the session's own server and
user) is accepted where the caller allows it.  Pure functions: no store, no I/O.

The "INTERNAL" mechanism (RFC 4467 7) is HMAC-SHA1 of the URL rump (everything up to and
including the access identifier) keyed with the mailbox access key, in lower-case hex.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_to_bytes

from mailwright.proto.imap import ast
from mailwright.proto.imap.grammar import GrammarError, parse_section_spec

#: the one authorization mechanism this server implements (RFC 4467 7)
MECHANISM = "INTERNAL"
#: bound on any URL we parse: RFC 5092 sets none; a URL names one message part
MAX_URL = 8192


class UrlError(ValueError):
    """Not a URL this server can resolve (answered ``[BADURL url]`` / NIL / 554)."""


@dataclass(frozen=True, slots=True)
class ImapUrl:
    """One parsed message URL.  ``user`` and ``host`` are None for a relative URL."""

    text: str
    user: str | None
    host: str | None
    mailbox: str
    uidvalidity: int | None
    uid: int
    section: ast.Section | None
    partial: tuple[int, int | None] | None
    expire: datetime | None
    #: RFC 4467 3: "submit+user", "user+user", "authuser", "anonymous" (lower case)
    access: str | None
    mechanism: str | None
    token: str | None
    #: the URL up to and including the access identifier: what the token signs
    rump: str

    @property
    def authorized(self) -> bool:
        """The URL carries a URLAUTH verifier (``;URLAUTH=access:mech:token``)."""
        return self.token is not None


_SCHEME = re.compile(r"imap://", re.IGNORECASE)
_NZ = re.compile(r"[1-9][0-9]{0,9}\Z")
_NUM = re.compile(r"(0|[1-9][0-9]{0,9})\Z")
_HEX = re.compile(r"[0-9A-Fa-f]{32,}\Z")
# RFC 5092 9 "achar"/"bchar": unreserved, sub-delims but ";" "/" separate parameters here
_SAFE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@%]*\Z")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def _decode(part: str, what: str) -> str:
    if not _SAFE.match(part):
        raise UrlError(f"invalid character in {what}")
    try:
        return unquote_to_bytes(part).decode("utf-8")
    except UnicodeDecodeError:
        raise UrlError(f"{what} is not UTF-8") from None


def _u32(value: str, what: str, *, nz: bool = True) -> int:
    if not (_NZ if nz else _NUM).match(value) or int(value) > 0xFFFFFFFF:
        raise UrlError(f"invalid {what}")
    return int(value)


def _datetime(value: str) -> datetime:
    """RFC 4467 3 / RFC 3339 date-time (the time zone is required)."""
    m = _DATETIME.match(value)
    if m is None:
        raise UrlError("invalid EXPIRE date-time")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise UrlError("invalid EXPIRE date-time") from None


def parse_url(text: str, *, relative: bool = False) -> ImapUrl:
    """Parse *text*; ``relative`` allows ``/mailbox/;UID=...`` (CATENATE, RFC 4469 3).

    Raises :class:`UrlError` for anything that is not a message URL."""
    if len(text) > MAX_URL:
        raise UrlError("URL too long")
    user: str | None = None
    host: str | None = None
    if _SCHEME.match(text):
        rest = text[7:]
        slash = rest.find("/")
        if slash < 0:
            raise UrlError("URL names no mailbox")
        server, path = rest[:slash], rest[slash + 1 :]
        if "@" in server:
            userinfo, server = server.rsplit("@", 1)
            enc_user = userinfo.split(";", 1)[0]  # RFC 5092 3.2: ";AUTH=" is not ours
            if enc_user:
                user = _decode(enc_user, "user")
        host = server.split(":", 1)[0].lower()
        if not host:
            raise UrlError("URL names no host")
    elif relative and text.startswith("/") and not text.startswith("//"):
        path = text[1:]
    else:
        raise UrlError("not an IMAP URL")
    # the rump ends after ";URLAUTH=access" (RFC 4467 3); the verifier follows it
    rump = text
    access = mechanism = token = None
    expire: datetime | None = None
    low = path.lower()
    at = low.find(";urlauth=")
    if at >= 0:
        auth = path[at + 9 :]
        path = path[:at]
        pieces = auth.split(":")
        if len(pieces) not in (1, 3):
            raise UrlError("invalid URLAUTH")
        access = pieces[0].lower()
        if access.startswith(("submit+", "user+")):
            who, enc = pieces[0].split("+", 1)
            access = f"{who.lower()}+{_decode(enc, 'access user')}"
        elif access not in ("authuser", "anonymous"):
            raise UrlError("unknown URLAUTH access identifier")
        if len(pieces) == 3:
            mechanism = pieces[1].upper()
            token = pieces[2]
            if not _HEX.match(token):
                raise UrlError("invalid URLAUTH token")
            rump = text[: len(text) - len(pieces[1]) - len(pieces[2]) - 2]
        low = path.lower()
        ex = low.find(";expire=")
        if ex >= 0:
            expire = _datetime(path[ex + 8 :])
            path = path[:ex]
    segments = path.split("/")
    first = segments[0]
    uidvalidity: int | None = None
    if ";" in first:
        enc_mailbox, param = first.split(";", 1)
        if not param.upper().startswith("UIDVALIDITY="):
            raise UrlError("unknown mailbox parameter")
        uidvalidity = _u32(param[12:], "UIDVALIDITY")
    else:
        enc_mailbox = first
    mailbox = _decode(enc_mailbox, "mailbox")
    if not mailbox:
        raise UrlError("URL names no mailbox")
    uid: int | None = None
    section: ast.Section | None = None
    partial: tuple[int, int | None] | None = None
    for seg in segments[1:]:
        name, _, value = seg.partition("=")
        key = name.upper()
        if key == ";UID" and uid is None and section is None and partial is None:
            uid = _u32(value, "UID")
        elif key == ";SECTION" and uid is not None and section is None and partial is None:
            try:
                section = parse_section_spec(_decode(value, "section").encode("utf-8"))
            except GrammarError:
                raise UrlError("invalid SECTION") from None
        elif key == ";PARTIAL" and uid is not None and partial is None:
            off, dot, length = value.partition(".")
            partial = (_u32(off, "PARTIAL", nz=False), _u32(length, "PARTIAL") if dot else None)
        else:
            raise UrlError("URL does not name a message")
    if uid is None:
        raise UrlError("URL names no message (;UID=)")
    return ImapUrl(text, user, host, mailbox, uidvalidity, uid, section, partial, expire,
                   access, mechanism, token, rump)


def urlauth_token(key: bytes, rump: str) -> str:
    """RFC 4467 7 "INTERNAL": HMAC-SHA1 of the rump with the mailbox access key, in hex."""
    return hmac.new(key, rump.encode("utf-8"), hashlib.sha1).hexdigest()


def token_matches(key: bytes, url: ImapUrl) -> bool:
    """Whether *url*'s verifier was made with *key* (constant time)."""
    if url.token is None or url.mechanism != MECHANISM:
        return False
    return hmac.compare_digest(urlauth_token(key, url.rump), url.token.lower())


def may_access(url: ImapUrl, *, user: str | None, submit: bool) -> bool:
    """RFC 4467 3: whether the access identifier lets this accessor use the URL.  ``user``
    is the authenticated user (None: anonymous), ``submit`` whether the accessor is the
    submit server acting for ``user`` (BURL, RFC 4468)."""
    a = url.access
    if a == "anonymous":
        return True
    if user is None or a is None:
        return False
    if a == "authuser":
        return not submit
    who, _, name = a.partition("+")
    if name.lower() != user.lower():
        return False
    return (who == "submit") == submit
