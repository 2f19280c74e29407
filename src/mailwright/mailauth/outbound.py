"""DKIM signing of mail our users submit (RFC 6376 5), with every key the domain has."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from .dkim import sign_message
from .inbound import parse_author
from .keys import DkimKey, KeyStore, normalize_domain

__all__ = ["author_domain", "sign_outbound", "sign_outbound_async"]

log = logging.getLogger("mailwright.mailauth")


def sign_outbound(
    message_bytes: bytes, domain: str, keys: KeyStore | Sequence[DkimKey]
) -> bytes:
    """DKIM-Signature header fields to prepend to ``message_bytes`` (b"" when no key exists).

    ``domain`` is the signing domain (d=), normally the domain of the From address; with both an
    RSA and an Ed25519 key it returns two signatures (RFC 8463 recommends signing with both while
    receivers catch up). Only keys of ``domain`` are used. Raises ``ValueError`` for a message
    without a From field.
    """
    name = normalize_domain(domain)
    chosen = keys.keys(name) if isinstance(keys, KeyStore) else [k for k in keys if k.domain == name]
    if not chosen:
        return b""
    return sign_message(message_bytes, chosen)


async def sign_outbound_async(
    message_bytes: bytes, domain: str, keys: KeyStore | Sequence[DkimKey]
) -> bytes:
    """``sign_outbound`` in a worker thread: hashing a large body must not stall the loop."""
    return await asyncio.to_thread(sign_outbound, message_bytes, domain, keys)


def author_domain(message_bytes: bytes) -> str | None:
    """The domain of the one From address (lower-case A-label), the usual signing domain.

    None when there is no From, or several From fields or author domains.
    """
    return parse_author(message_bytes).domain
