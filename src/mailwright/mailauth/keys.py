"""DKIM signing keys: generation, storage under the data directory, DNS TXT records.

Layout (RFC 6376 3.6.2.1 puts the public key at ``<selector>._domainkey.<domain>``)::

    <data_dir>/dkim/<domain>/<selector>.<alg>.pem    private key, mode 0600
    <data_dir>/dkim/<domain>/<selector>.<alg>.json   {"domain", "selector", "algorithm",
                                                      "created", "active"}

``alg`` is ``ed25519`` (RFC 8463) or ``rsa`` (2048 bits, RFC 8301 3.2 requires at least 1024
and recommends 2048). RSA keys are kept in PKCS#1 PEM (what dkimpy reads), Ed25519 keys in
PKCS#8 PEM; dkimpy gets the raw 32-byte seed in base64 when it signs.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailwright.dns.resolver import DNSError, to_ascii_domain

__all__ = [
    "ALGORITHMS",
    "DkimKey",
    "DkimKeyError",
    "KeyStore",
    "default_selector",
    "normalize_domain",
    "txt_strings",
    "validate_selector",
]

Algorithm = Literal["ed25519", "rsa"]
ALGORITHMS: tuple[Algorithm, ...] = ("ed25519", "rsa")
RSA_BITS = 2048
_SELECTOR_RE = re.compile(r"^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)*$")


_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?$")


class DkimKeyError(Exception):
    """A DKIM key cannot be created or read; the message is for the operator."""


def normalize_domain(domain: str) -> str:
    """Lower-case A-label without the final dot (the form used in d= and in paths)."""
    text = domain.strip().rstrip(".").lower()
    if not text.isascii():
        try:  # the same IDNA 2008 / UTS 46 mapping the resolver uses
            text = to_ascii_domain(text)
        except DNSError as exc:
            raise DkimKeyError(f"invalid domain {domain!r}: {exc.reason}") from None
    if len(text) > 253 or not all(_LABEL_RE.match(label) for label in text.split(".")):
        raise DkimKeyError(f"invalid domain {domain!r}")
    return text


def validate_selector(selector: str) -> str:
    """A selector is one or more DNS labels (RFC 6376 3.1); returns it in lower case."""
    sel = selector.strip().lower()
    if not _SELECTOR_RE.match(sel):
        raise DkimKeyError(f"invalid selector {selector!r} (letters, digits, '-' and '.')")
    return sel


def default_selector(algorithm: Algorithm, today: _dt.date | None = None) -> str:
    """A dated selector per algorithm, so a key rollover can publish the next one beside it."""
    today = today or _dt.datetime.now(_dt.UTC).date()
    prefix = "ed" if algorithm == "ed25519" else "rsa"
    return f"{prefix}{today:%Y%m}"


@dataclass(frozen=True, slots=True)
class DkimKey:
    """One private key of a domain, ready for signing."""

    domain: str
    selector: str
    algorithm: Algorithm
    private_pem: bytes
    created: str = ""
    active: bool = True

    @property
    def signature_algorithm(self) -> bytes:
        """The a= value (RFC 6376 3.5, RFC 8463 3)."""
        return b"ed25519-sha256" if self.algorithm == "ed25519" else b"rsa-sha256"

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dkimpy_private_key(self) -> bytes:
        """The private key in the form dkimpy's signer expects for this algorithm."""
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            return base64.b64encode(raw)
        if isinstance(key, rsa.RSAPrivateKey):
            return key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        raise DkimKeyError(f"{self.dns_name}: unsupported key type")

    def public_key_b64(self) -> str:
        """p= value: raw 32 bytes for Ed25519 (RFC 8463 4.2), SubjectPublicKeyInfo for RSA."""
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        elif isinstance(key, rsa.RSAPrivateKey):
            raw = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            raise DkimKeyError(f"{self.dns_name}: unsupported key type")
        return base64.b64encode(raw).decode("ascii")

    def txt_record(self) -> str:
        """The TXT record text (RFC 6376 3.6.1), one logical string."""
        k = "ed25519" if self.algorithm == "ed25519" else "rsa"
        return f"v=DKIM1; k={k}; p={self.public_key_b64()}"

    def zone_line(self) -> str:
        """The record in zone-file syntax, split into character-strings of at most 255 bytes."""
        return f"{self.dns_name}. 3600 IN TXT {txt_strings(self.txt_record())}"


def txt_strings(text: str) -> str:
    """Quote a TXT value as zone-file character-strings (RFC 1035 5.1), 255 bytes each."""
    parts = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def _generate_pem(algorithm: Algorithm) -> bytes:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


class KeyStore:
    """The DKIM keys under ``<data_dir>/dkim``. Cheap to create; reads the disk on each call."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir) / "dkim"

    def domain_dir(self, domain: str) -> Path:
        return self.root / normalize_domain(domain)

    def generate(
        self,
        domain: str,
        *,
        algorithm: Algorithm = "rsa",
        selector: str | None = None,
        overwrite: bool = False,
    ) -> DkimKey:
        """Create, store and return a new key; refuses to replace one unless ``overwrite``."""
        if algorithm not in ALGORITHMS:
            raise DkimKeyError(f"unknown algorithm {algorithm!r} (use ed25519 or rsa)")
        name = normalize_domain(domain)
        sel = validate_selector(selector or default_selector(algorithm))
        directory = self.root / name
        pem_path = directory / f"{sel}.{algorithm}.pem"
        other = "rsa" if algorithm == "ed25519" else "ed25519"
        if (directory / f"{sel}.{other}.pem").exists():
            # One selector names one DNS record, so it cannot hold two keys (RFC 6376 3.1).
            raise DkimKeyError(f"selector {sel} of {name} already holds an {other} key")
        if pem_path.exists() and not overwrite:
            raise DkimKeyError(f"{pem_path} exists; choose another --selector")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = _generate_pem(algorithm)
        created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _write_private(pem_path, pem)
        meta = {
            "domain": name,
            "selector": sel,
            "algorithm": algorithm,
            "created": created,
            "active": True,
        }
        _write_private(pem_path.with_suffix(".json"), json.dumps(meta, indent=2).encode() + b"\n")
        return DkimKey(name, sel, algorithm, pem, created, True)

    def keys(self, domain: str, *, include_inactive: bool = False) -> list[DkimKey]:
        """The domain's keys, Ed25519 first then RSA, each group by selector."""
        try:
            name = normalize_domain(domain)
        except DkimKeyError:
            return []
        directory = self.root / name
        if not directory.is_dir():
            return []
        found: list[DkimKey] = []
        for pem_path in sorted(directory.glob("*.pem")):
            stem = pem_path.name[: -len(".pem")]
            sel, _, alg = stem.rpartition(".")
            if alg not in ALGORITHMS or not sel:
                continue
            algorithm: Algorithm = "ed25519" if alg == "ed25519" else "rsa"
            created, active = "", True
            meta_path = pem_path.with_suffix(".json")
            if meta_path.exists():
                try:
                    meta = json.loads(meta_path.read_text("utf-8"))
                    created = str(meta.get("created", ""))
                    active = bool(meta.get("active", True))
                except (OSError, ValueError) as exc:
                    raise DkimKeyError(f"{meta_path}: unreadable metadata ({exc})") from None
            if not active and not include_inactive:
                continue
            try:
                pem = pem_path.read_bytes()
            except OSError as exc:
                raise DkimKeyError(f"{pem_path}: {exc}") from None
            found.append(DkimKey(name, sel, algorithm, pem, created, active))
        found.sort(key=lambda k: (ALGORITHMS.index(k.algorithm), k.selector))
        return found

    def domains(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
