"""Parse once at delivery: MIME structure, envelope and part offsets of a stored message.

`parse_message(raw) -> MessageInfo` runs once when a message is stored; `MessageInfo.to_meta()`
is what the store keeps next to the blob; `mailwright.mime.imapfmt` renders IMAP answers from it.
"""

from __future__ import annotations

from .model import Address, Envelope, MessageInfo, Part
from .parser import normalize_crlf, parse_message

__all__ = ["Address", "Envelope", "MessageInfo", "Part", "normalize_crlf", "parse_message"]
