"""Mail addresses: validation, canonical form, IDNA, plus-addressing.

Canonical form is what the directory keys on: local part lower-cased (we treat local parts
case-insensitively, as Postfix and Dovecot deployments do in practice), domain as lower-case
IDNA A-labels without a trailing dot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 5322 3.2.3 atext, plus UTF-8 (RFC 6531 3.3) for internationalised local parts.
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]"
_DOT_ATOM = re.compile(rf"^{_ATEXT}+(?:\.{_ATEXT}+)*$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class AddressError(ValueError):
    """The text is not an address we accept."""


@dataclass(frozen=True, slots=True)
class Address:
    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def base(self) -> Address:
        """The address without a `+tag` (plus-addressing delivers `user+tag` to `user`)."""
        if "+" in self.local[1:]:
            return Address(self.local.split("+", 1)[0], self.domain)
        return self


def normalize_domain(domain: str) -> str:
    """Lower-case A-label form; raises AddressError for names that cannot be a mail domain."""
    d = domain.strip().rstrip(".")
    if not d or len(d) > 253:
        raise AddressError(f"invalid domain {domain!r}")
    if d.startswith("[") and d.endswith("]"):
        raise AddressError("address literals are not local domains")
    try:
        ascii_ = d.encode("idna").decode("ascii") if not d.isascii() else d
    except UnicodeError:
        raise AddressError(f"invalid internationalised domain {domain!r}") from None
    ascii_ = ascii_.lower()
    labels = ascii_.split(".")
    if len(labels) < 1 or not all(_LABEL.match(lab) for lab in labels):
        raise AddressError(f"invalid domain {domain!r}")
    return ascii_


def parse_address(text: str) -> Address:
    """Parse `local@domain` (no display names, no comments) into canonical form."""
    s = text.strip()
    if s.startswith("<") and s.endswith(">"):
        s = s[1:-1]
    if len(s) > 320 or "@" not in s:
        raise AddressError(f"invalid address {text!r}")
    local, _, domain = s.rpartition("@")
    if not local or len(local.encode()) > 64:
        raise AddressError(f"invalid local part in {text!r}")
    if local.startswith('"'):
        raise AddressError(f"quoted local parts are not accepted for accounts: {text!r}")
    if not _DOT_ATOM.match(local):
        raise AddressError(f"invalid local part in {text!r}")
    return Address(local.lower(), normalize_domain(domain))


def is_valid_address(text: str) -> bool:
    try:
        parse_address(text)
    except AddressError:
        return False
    return True
