"""What goes into MAIL FROM and RCPT TO for one message to one server, and the checks that must
pass before anything is sent: SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), and the
DSN parameters (RFC 3461) passed on when the server offers DSN, and REQUIRETLS (RFC 8689).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DeliveryRefused
from .replies import Extensions

__all__ = ["Envelope", "Recipient", "mail_params", "rcpt_params", "xtext_encode"]

_NOTIFY = frozenset({"NEVER", "SUCCESS", "FAILURE", "DELAY"})


@dataclass(frozen=True, slots=True)
class Recipient:
    """One forward-path with its DSN parameters (RFC 3461 4.1, 4.2)."""

    address: str
    notify: tuple[str, ...] | None = None  # ("NEVER",) or a subset of SUCCESS, FAILURE, DELAY
    orcpt: tuple[str, str] | None = None  # (addr-type, address), e.g. ("rfc822", "a@b.test")


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message for one server. ``sender`` is "" for the null reverse-path."""

    sender: str
    recipients: tuple[Recipient, ...]
    size: int
    eight_bit: bool = False
    utf8_headers: bool = False
    ret: str | None = None  # RFC 3461 4.3: "FULL" or "HDRS"
    envid: str | None = None  # RFC 3461 4.4
    requiretls: bool = False  # RFC 8689 4.2: MAIL FROM ... REQUIRETLS

    @property
    def utf8_addresses(self) -> bool:
        return not self.sender.isascii() or any(not r.address.isascii() for r in self.recipients)

    @property
    def needs_smtputf8(self) -> bool:
        return self.utf8_addresses or self.utf8_headers


def xtext_encode(text: str) -> str:
    """RFC 3461 4: "+" and "=" and anything outside "!".."~" become "+HH"."""
    out: list[str] = []
    for byte in text.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (0x2B, 0x3D):
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def _safe(value: str) -> str:
    if any(c in value for c in "\r\n\0<>"):
        raise DeliveryRefused("5.1.7", f"address {value!r} cannot be sent on the wire")
    return value


def mail_params(envelope: Envelope, ext: Extensions) -> tuple[str, ...]:
    """MAIL FROM parameters for this server, or ``DeliveryRefused`` if it cannot take the message."""
    _safe(envelope.sender)
    for r in envelope.recipients:
        _safe(r.address)
    if envelope.needs_smtputf8 and not ext.smtputf8:
        # RFC 6531 3.2: without the extension a server cannot take UTF-8 addresses or headers.
        if envelope.utf8_addresses:
            raise DeliveryRefused(
                "5.6.7",
                "the address needs SMTPUTF8 (non-ASCII local part) and the receiving server "
                "does not support SMTPUTF8 (RFC 6531)",
            )
        raise DeliveryRefused(
            "5.6.9",
            "the message has UTF-8 header fields and the receiving server does not support "
            "SMTPUTF8 (RFC 6531, RFC 6532)",
        )
    if envelope.eight_bit and not ext.eightbitmime:
        # RFC 6152 3: 8-bit content to a server without 8BITMIME must be converted or returned.
        raise DeliveryRefused(
            "5.6.3",
            "the message has 8-bit content and the receiving server does not support 8BITMIME "
            "(RFC 6152)",
        )
    limit = ext.size
    if limit and envelope.size > limit:
        # RFC 1870 6: the server announced a fixed limit and this message exceeds it.
        raise DeliveryRefused(
            "5.3.4",
            f"message size {envelope.size} exceeds the receiving server's limit of {limit} "
            "octets (RFC 1870)",
        )
    if envelope.requiretls and not ext.has("REQUIRETLS"):
        # RFC 8689 4.2.1, 5: the next hop must support REQUIRETLS, else the message returns.
        raise DeliveryRefused("5.7.30", "REQUIRETLS support required: the receiving server "
                              "does not offer REQUIRETLS (RFC 8689)")
    params: list[str] = []
    if limit is not None:
        params.append(f"SIZE={envelope.size}")
    if envelope.eight_bit:
        params.append("BODY=8BITMIME")
    if envelope.needs_smtputf8:
        params.append("SMTPUTF8")
    if ext.dsn:
        if envelope.ret in ("FULL", "HDRS"):
            params.append(f"RET={envelope.ret}")
        if envelope.envid:
            params.append(f"ENVID={xtext_encode(envelope.envid)}")
    if envelope.requiretls:
        params.append("REQUIRETLS")
    return tuple(params)


def rcpt_params(recipient: Recipient, ext: Extensions) -> tuple[str, ...]:
    """RCPT TO parameters: DSN NOTIFY and ORCPT only when the server offers DSN (RFC 3461 4)."""
    if not ext.dsn:
        return ()
    params: list[str] = []
    if recipient.notify:
        words = [n.upper() for n in recipient.notify if n.upper() in _NOTIFY]
        if "NEVER" in words:
            words = ["NEVER"]
        if words:
            params.append("NOTIFY=" + ",".join(words))
    if recipient.orcpt and recipient.orcpt[1].isascii():
        addr_type, original = recipient.orcpt
        params.append(f"ORCPT={addr_type};{xtext_encode(original)}")
    return tuple(params)
