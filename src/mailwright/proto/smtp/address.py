"""Envelope paths of MAIL and RCPT (RFC 5321 4.1.2, RFC 6531 3.3).

The parser keeps both what the client sent (`raw`) and a normalised reading (`local_part`
unquoted, `domain` lower-cased, source route split off), so that policy decisions are made on
one reading only: the open-relay tricks of issue 3 (percent hack, bang paths, source routes,
quoted local parts holding `@`) all show up as plain characters of `local_part` or as `route`,
never as a second domain the session might act on by accident.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# RFC 5321 4.1.2 atext (RFC 5322 3.2.3); RFC 6531 3.3 adds UTF8-non-ascii.
_ATEXT_ASCII = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_NON_ASCII = "\u0080-\U0010ffff"
_DOT_STRING = re.compile(rf"[{_ATEXT_ASCII}{_NON_ASCII}]+(?:\.[{_ATEXT_ASCII}{_NON_ASCII}]+)*")
_DOT_STRING_ASCII = re.compile(rf"[{_ATEXT_ASCII}]+(?:\.[{_ATEXT_ASCII}]+)*")
# RFC 5321 4.1.2 sub-domain = Let-dig [Ldh-str]; U-labels (RFC 6531 3.3) ride on the same rule.
_LABEL = re.compile(
    rf"[A-Za-z0-9{_NON_ASCII}](?:[A-Za-z0-9\-{_NON_ASCII}]*[A-Za-z0-9{_NON_ASCII}])?"
)
# RFC 5321 4.1.3 General-address-literal: Standardized-tag ":" 1*dcontent.
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")
# RFC 5321 4.1.2 qtextSMTP and quoted-pairSMTP (plus UTF-8 by RFC 6531 3.3).
_QTEXT = re.compile(rf"[\x20\x21\x23-\x5b\x5d-\x7e{_NON_ASCII}]")

# RFC 5321 4.5.3.1.2: a domain name is at most 255 octets, a label 63 (RFC 1035 2.3.4).
MAX_DOMAIN = 255
MAX_LABEL = 63
# RFC 5321 4.5.3.1.3 allows 256 octets for a path; we are lenient up to the command line limit
# (VERP and SRS addresses overrun 64-octet local parts in the wild), so only domains are held.


class PathError(ValueError):
    """The text is not a valid path."""


@dataclass(frozen=True, slots=True)
class Path:
    """A forward- or reverse-path (RFC 5321 4.1.2).

    `local_part` has the quoting removed; `domain` is lower-cased (None only for the bare
    `<postmaster>` of RFC 5321 4.5.1); `route` holds a source route, which RFC 5321 C says to
    ignore; `literal` marks an address literal such as `[192.0.2.1]`.
    """

    raw: str
    local_part: str
    domain: str | None
    route: tuple[str, ...] = ()
    quoted: bool = False
    literal: bool = False

    @property
    def utf8(self) -> bool:
        return not self.raw.isascii()

    @property
    def mailbox(self) -> str:
        """The normalised mailbox: local part (quoted only if it must be) @ domain."""
        local = self.local_part
        if not _DOT_STRING.fullmatch(local):
            local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return local if self.domain is None else f"{local}@{self.domain}"

    def __str__(self) -> str:
        return self.mailbox


def is_domain(text: str) -> bool:
    """True if `text` is an RFC 5321 Domain (U-labels allowed)."""
    if not text or len(text.encode("utf-8")) > MAX_DOMAIN:
        return False
    for label in text.split("."):
        if not _LABEL.fullmatch(label) or len(label.encode("utf-8")) > MAX_LABEL:
            return False
    return True


def is_address_literal(text: str) -> bool:
    """True if `text` is an RFC 5321 4.1.3 address literal, brackets included."""
    if len(text) < 3 or text[0] != "[" or text[-1] != "]":
        return False
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return True
    if ":" in inner:
        return bool(_GENERAL_LITERAL.fullmatch(inner)) and inner[:5].lower() != "ipv6:"
    try:
        ipaddress.IPv4Address(inner)
    except ValueError:
        return False
    return True


def split_path(text: str) -> tuple[str, str]:
    """Split `<path> rest` into the bracketed path and the rest.

    A quoted local part may hold `>`, so the end is found by a scan that honours quotes and
    quoted pairs (RFC 5321 4.1.2 quoted-pairSMTP).
    """
    if not text.startswith("<"):
        raise PathError("path must start with <")
    in_quote = False
    i = 1
    while i < len(text):
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == ">":
            return text[: i + 1], text[i + 1 :]
        i += 1
    raise PathError("path has no closing >")


def _parse_local_part(text: str) -> tuple[str, bool]:
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise PathError("unterminated quoted local part")
        out = []
        i = 1
        end = len(text) - 1
        while i < end:
            c = text[i]
            if c == "\\":
                # RFC 5321 4.1.2: quoted-pairSMTP = %d92 %d32-126
                if i + 1 >= end or not " " <= text[i + 1] <= "~":
                    raise PathError("bad quoted pair")
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"' or not _QTEXT.fullmatch(c):
                raise PathError("bad character in quoted local part")
            out.append(c)
            i += 1
        return "".join(out), True
    if not _DOT_STRING.fullmatch(text):
        raise PathError("bad local part")
    return text, False


def _split_mailbox(text: str) -> tuple[str, str]:
    if text.startswith('"'):
        # The quoted string ends at the first unescaped quote; "@" must follow it.
        i = 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                break
            i += 1
        else:
            raise PathError("unterminated quoted local part")
        if text[i + 1 : i + 2] != "@":
            raise PathError("no @ after quoted local part")
        return text[: i + 1], text[i + 2 :]
    local, at, domain = text.partition("@")
    if not at:
        raise PathError("mailbox has no @")
    return local, domain


def parse_path(text: str, *, allow_postmaster: bool = False) -> Path:
    """Parse a bracketed path `<[@route,...:]local@domain>`; raises PathError."""
    if len(text) < 2 or text[0] != "<" or text[-1] != ">":
        raise PathError("path must be enclosed in <>")
    inner = text[1:-1]
    if allow_postmaster and inner.lower() == "postmaster":
        # RFC 5321 4.5.1: <Postmaster> without a domain must be accepted at RCPT.
        return Path(raw=inner, local_part="postmaster", domain=None)
    route: tuple[str, ...] = ()
    mailbox = inner
    if inner.startswith("@"):
        # RFC 5321 4.1.2 A-d-l; RFC 5321 C: accepted but ignored, never used for routing.
        adl, colon, mailbox = inner.partition(":")
        if not colon:
            raise PathError("source route without :")
        hops = []
        for hop in adl.split(","):
            if not hop.startswith("@") or not is_domain(hop[1:]):
                raise PathError("bad source route")
            hops.append(hop[1:].lower())
        route = tuple(hops)
    local_text, domain_text = _split_mailbox(mailbox)
    local, quoted = _parse_local_part(local_text)
    if not local_text:
        raise PathError("empty local part")
    if is_address_literal(domain_text):
        literal = True
    elif is_domain(domain_text):
        literal = False
    else:
        raise PathError("bad domain")
    return Path(
        raw=inner,
        local_part=local,
        domain=domain_text.lower(),
        route=route,
        quoted=quoted,
        literal=literal,
    )


def is_ascii_dot_string(text: str) -> bool:
    return bool(_DOT_STRING_ASCII.fullmatch(text))
