"""ARC sealing, RFC 8617: vouching for what our MX saw when it forwards a message onward.

A forwarded message loses SPF at the next hop (SRS fixes the envelope, not the From domain's
DMARC alignment) and may lose DKIM if anything was changed. By adding an ARC set (RFC 8617 4.1)
the forwarder records its own authentication results in a form the next hop can verify:

- ARC-Authentication-Results (AAR, RFC 8617 4.1.1): our inbound Authentication-Results, i=N;
- ARC-Message-Signature (AMS, 4.1.2): a DKIM-like signature over the message, i=N;
- ARC-Seal (AS, 4.1.3): a signature over all ARC sets so far, with cv= the chain validation
  status we found on arrival (none for the first set, pass or fail after that; 5.1.1).

The instance number N is one more than the highest already present; a chain that arrived
failing is sealed with cv=fail (RFC 8617 5.1.2: the set records the failure, and validators
stop there). The signing key is the forwarding domain's RSA DKIM key (RFC 8617 only defines
rsa-sha256, so Ed25519 keys are not used here). dkimpy computes the signatures; the chain
validation status comes from our own verifier (`arc.verify_arc`) through the arc= result in our
Authentication-Results header, which is where RFC 8617 5.1.1 says the sealer takes it from.
"""

from __future__ import annotations

import asyncio
import logging

import dkim as dkimpy

from .keys import KeyStore, normalize_domain

__all__ = ["seal_forwarded", "seal_forwarded_async"]

log = logging.getLogger("mailwright.mailauth")

# RFC 8617 4.1.2 / RFC 6376 5.4.1: what the AMS covers; never Authentication-Results or ARC
# fields (and not DKIM-Signature, which dkimpy refuses to cover).
_AMS_FIELDS = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"in-reply-to",
    b"references", b"mime-version", b"content-type", b"content-transfer-encoding",
)  # fmt: skip


def seal_forwarded(message: bytes, domain: str, keys: KeyStore, authserv_id: str) -> bytes:
    """The three ARC header fields to prepend to ``message`` (b"" when we cannot seal).

    ``message`` must start with our own Authentication-Results (authserv-id ``authserv_id``),
    as `verify_inbound` produces it (``verdict.authenticated_message``). Returns b"" when the
    domain has no RSA key, when the message has no From (the AMS must cover it), or when the
    chain status is one RFC 8617 gives no seal for (temperror, an arriving chain beyond 50 sets).
    """
    try:
        name = normalize_domain(domain)
    except ValueError:
        return b""
    rsa_keys = [k for k in keys.keys(name) if k.algorithm == "rsa"]
    if not rsa_keys:
        return b""
    key = rsa_keys[0]
    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line[:1] not in (b" ", b"\t") and b":" in line
    }
    include = [f for f in _AMS_FIELDS if f in present]
    if b"from" not in include:
        return b""
    try:
        fields = dkimpy.arc_sign(
            message,
            key.selector.encode("ascii"),
            name.encode("ascii"),
            key.dkimpy_private_key(),
            authserv_id.encode("ascii"),
            include_headers=include,
        )
    except Exception as exc:  # dkimpy's ParameterError and friends, on what the sender sent
        log.info("ARC seal for %s not added: %s", name, exc)
        return b""
    return b"".join(fields)


async def seal_forwarded_async(
    message: bytes, domain: str, keys: KeyStore, authserv_id: str
) -> bytes:
    """`seal_forwarded` in a worker thread (RSA signing and body hashing)."""
    return await asyncio.to_thread(seal_forwarded, message, domain, keys, authserv_id)
