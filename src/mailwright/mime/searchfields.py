"""Header fields as SEARCH compares them, decoded once at delivery.

RFC 9051 6.4.4: FROM, TO, CC, BCC, SUBJECT and HEADER match a substring of the field, which
we compare case-insensitively on decoded text (RFC 2047 words, UTF-8); address fields also
match in their written form (``name <mailbox@domain>``), as Dovecot's do. Decoding the header
of every message at each SEARCH is what made a SEARCH FROM over a mailbox cost a read of
every blob; like Dovecot's cache file, the fields clients search and sort by are decoded once,
when the message is stored (`search_fields`, kept in the parse-once meta, mime/model.py), and
SEARCH reads them from there without the message. `field_text` is the one rule both use, so
a cached value is exactly what decoding the message again would give.
"""

from __future__ import annotations

from .address import MISSING_DOMAIN, MISSING_MAILBOX, SYNTAX_ERROR, parse_address_list
from .decode import decode_header, header_fields
from .parser import header_value

ADDRESS_FIELDS = frozenset({b"from", b"to", b"cc", b"bcc", b"sender", b"reply-to",
                            b"resent-from", b"resent-to", b"resent-cc", b"resent-bcc",
                            b"resent-sender"})

#: The fields kept decoded in the meta (lower-case names): the SEARCH keys of RFC 9051 6.4.4
#: and the fields clients search with HEADER most (threading and list headers).
CACHED_FIELDS = frozenset({b"from", b"to", b"cc", b"bcc", b"subject", b"sender", b"reply-to",
                           b"date", b"message-id", b"in-reply-to", b"references",
                           b"list-id"})


def written_addresses(value: bytes) -> str:
    """Addresses as Dovecot writes them back from their parse: `name <mailbox@domain>` or
    `<mailbox@domain>`, groups as `name: ...;` (missing parts left empty, not Dovecot's
    MISSING_*/SYNTAX_ERROR placeholders, which would make "x" match every broken address)."""
    out: list[str] = []
    in_group = False
    for a in parse_address_list(header_value(value)) or ():
        if a.host is None:
            if not in_group and a.mailbox is not None:
                out.append(decode_header(a.mailbox) + ":")
            elif in_group:
                out.append(";")
            in_group = not in_group
            continue
        mailbox = b"" if a.mailbox == MISSING_MAILBOX else (a.mailbox or b"")
        host = b"" if a.host in (MISSING_DOMAIN, SYNTAX_ERROR) else a.host
        spec = "<" + decode_header(mailbox + b"@" + host) + ">"
        out.append(f"{decode_header(a.name)} {spec}" if a.name else spec)
    return ", ".join(out)


def field_text(name: bytes, value: bytes) -> str:
    """One field's value as SEARCH compares it: decoded, case-folded; an address field
    followed by its written form (*name* lower-case)."""
    text = decode_header(value)
    if name in ADDRESS_FIELDS:
        text += "\n" + written_addresses(value)
    return text.casefold()


def search_fields(raw: bytes, header_end: int) -> dict[bytes, list[str]]:
    """`field_text` of every field of the top header named in CACHED_FIELDS, by name, in the
    order they appear (a name that is absent has no entry: no field, nothing matches)."""
    out: dict[bytes, list[str]] = {}
    for k, v in header_fields(raw, 0, header_end):
        if k in CACHED_FIELDS:
            out.setdefault(k, []).append(field_text(k, v))
    return out
