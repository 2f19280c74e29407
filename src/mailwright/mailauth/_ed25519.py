"""Ed25519 for dkimpy when PyNaCl is absent: a minimal stand-in backed by ``cryptography``.

dkimpy implements ed25519-sha256 (RFC 8463) through PyNaCl's ``nacl.signing`` and, without it,
refuses to sign or verify such signatures. ``cryptography`` (already a dependency) has the same
primitive, so when ``import nacl`` fails we give dkimpy's module the four names it uses
(``nacl.signing.SigningKey``, ``nacl.signing.VerifyKey``, ``nacl.encoding.Base64Encoder``,
``nacl.exceptions``). With PyNaCl installed nothing is touched. Ed25519 signatures are
deterministic (RFC 8032 5.1.6), so both back ends produce identical bytes.
"""

from __future__ import annotations

import base64
import binascii
from types import SimpleNamespace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

__all__ = ["install"]


class BadSignatureError(Exception):
    pass


class Base64Encoder:
    @staticmethod
    def decode(data: bytes | str) -> bytes:
        try:
            return base64.b64decode(data, validate=False)
        except binascii.Error as exc:
            raise ValueError(str(exc)) from None


class _Signed:
    def __init__(self, signature: bytes) -> None:
        self.signature = signature


class SigningKey:
    def __init__(self, key: bytes, encoder: type[Base64Encoder] = Base64Encoder) -> None:
        seed = encoder.decode(key)
        if len(seed) != 32:
            raise ValueError("an Ed25519 private key is a 32-byte seed")
        self._key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)

    def sign(self, message: bytes) -> _Signed:
        return _Signed(self._key.sign(message))


class VerifyKey:
    def __init__(self, key: bytes, encoder: type[Base64Encoder] = Base64Encoder) -> None:
        raw = encoder.decode(key)
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        self._key = ed25519.Ed25519PublicKey.from_public_bytes(raw)

    def verify(self, message: bytes, signature: bytes) -> bytes:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            raise BadSignatureError("signature was forged or corrupt") from None
        return message


def install(dkim_module: Any) -> str:
    """Make dkimpy's ed25519 work; returns which back end is in use."""
    try:
        import nacl.signing  # noqa: F401
    except ImportError:
        pass
    else:
        return "pynacl"
    if "nacl" not in vars(dkim_module):
        dkim_module.nacl = SimpleNamespace(
            signing=SimpleNamespace(SigningKey=SigningKey, VerifyKey=VerifyKey),
            encoding=SimpleNamespace(Base64Encoder=Base64Encoder),
            exceptions=SimpleNamespace(ValueError=ValueError, BadSignatureError=BadSignatureError),
        )
    return "cryptography"
