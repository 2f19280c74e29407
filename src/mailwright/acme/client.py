"""An RFC 8555 ACME client: JWS-signed requests with an ES256 account key.

The protocol is a handful of JSON requests made minutes or months apart, so each one runs the
standard library's HTTP client in a worker thread (`asyncio.to_thread`) rather than pulling in
an async HTTP stack; keys, CSRs and signatures are `cryptography`'s. Every request is a POST
signed with the account key (RFC 8555 6.2), GETs of resources are POST-as-GET (6.3), and each
carries a fresh nonce from the last reply (6.5).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

TIMEOUT = 30.0
MAX_RESPONSE = 1024 * 1024  # a certificate chain or a JSON object: far below this


class AcmeError(Exception):
    """The ACME server refused a request or a validation failed; the message says why."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(n: int) -> bytes:
    return n.to_bytes(32, "big")


def jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """RFC 7518 6.2.1: the public half of a P-256 key."""
    nums = key.public_key().public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": b64url(_int_bytes(nums.x)),
            "y": b64url(_int_bytes(nums.y))}  # fmt: skip


def thumbprint(key: ec.EllipticCurvePrivateKey) -> str:
    """RFC 7638: SHA-256 of the JWK's required members, sorted, without whitespace."""
    canonical = json.dumps(jwk(key), sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def make_csr(names: list[str], key: ec.EllipticCurvePrivateKey) -> bytes:
    """DER CSR for `names` (RFC 8555 7.4: the names go in subjectAltName)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return csr.public_bytes(serialization.Encoding.DER)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    links: list[tuple[str, str]] = field(default_factory=list)  # (rel, url)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class AcmeClient:
    """One account at one ACME server."""

    def __init__(self, directory_url: str, account_key: ec.EllipticCurvePrivateKey,
                 ca_file: Path | None = None) -> None:  # fmt: skip
        self.directory_url = directory_url
        self.key = account_key
        self.kid = ""  # the account URL, once registered (RFC 8555 7.3)
        self.directory: dict[str, Any] = {}
        self._nonce = ""
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    # -- transport ---------------------------------------------------------------------------

    def _http(self, method: str, url: str, body: bytes | None = None) -> Response:
        req = urllib.request.Request(url, data=body, method=method)
        req.add_header("User-Agent", "Mailwright-ACME")
        if body is not None:
            req.add_header("Content-Type", "application/jose+json")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT, context=self._ssl) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read(MAX_RESPONSE)
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, e.headers, e.read(MAX_RESPONSE)
        except (urllib.error.URLError, OSError) as e:
            raise AcmeError(f"{url}: {getattr(e, 'reason', e)}") from None
        links = []
        for value in headers.get_all("Link") or []:
            url_part, _, params = value.partition(";")
            rel = params.split("rel=", 1)[-1].strip().strip('"') if "rel=" in params else ""
            links.append((rel, url_part.strip().strip("<>")))
        if nonce := headers.get("Replay-Nonce"):
            self._nonce = nonce
        return Response(status, {k.lower(): v for k, v in headers.items()}, raw, links)

    async def _call(self, method: str, url: str, body: bytes | None = None) -> Response:
        return await asyncio.to_thread(self._http, method, url, body)

    async def _nonce_value(self) -> str:
        if not self._nonce:
            await self._call("HEAD", self.directory["newNonce"])
        nonce, self._nonce = self._nonce, ""
        if not nonce:
            raise AcmeError("the ACME server gave no Replay-Nonce")
        return nonce

    def _sign(self, url: str, payload: Any, nonce: str, use_jwk: bool) -> bytes:
        """RFC 8555 6.2: a flattened JWS, ES256 (RFC 7518 3.4: r || s, 32 octets each)."""
        protected: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
        if use_jwk:
            protected["jwk"] = jwk(self.key)
        else:
            protected["kid"] = self.kid
        p64 = b64url(json.dumps(protected).encode())
        # POST-as-GET (6.3) has an empty payload, not "{}" nor "null".
        l64 = "" if payload is None else b64url(json.dumps(payload).encode())
        der = self.key.sign(f"{p64}.{l64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = b64url(_int_bytes(r) + _int_bytes(s))
        return json.dumps({"protected": p64, "payload": l64, "signature": sig}).encode()

    async def post(self, url: str, payload: Any = None, *, use_jwk: bool = False) -> Response:
        """A signed request; retried once on badNonce (RFC 8555 6.5)."""
        for attempt in range(3):
            body = self._sign(url, payload, await self._nonce_value(), use_jwk)
            resp = await self._call("POST", url, body)
            if resp.status < 400:
                return resp
            problem = _problem(resp)
            if problem.get("type") == "urn:ietf:params:acme:error:badNonce" and attempt < 2:
                continue
            raise AcmeError(f"{url}: {resp.status} {problem.get('type', '')} "
                            f"{problem.get('detail', resp.body[:200].decode('utf-8', 'replace'))}")
        raise AcmeError(f"{url}: the server kept refusing our nonces")  # pragma: no cover

    # -- protocol ----------------------------------------------------------------------------

    async def load_directory(self) -> None:
        resp = await self._call("GET", self.directory_url)
        if resp.status != 200:
            raise AcmeError(f"{self.directory_url}: directory answered {resp.status}")
        self.directory = resp.json()

    async def register(self, email: str) -> str:
        """RFC 8555 7.3: create the account, or find it again for a known key (200)."""
        payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        if email:
            payload["contact"] = [f"mailto:{email}"]
        resp = await self.post(self.directory["newAccount"], payload, use_jwk=True)
        self.kid = resp.headers.get("location", "")
        if not self.kid:
            raise AcmeError("newAccount answered without the account URL")
        return self.kid

    async def new_order(self, names: list[str], replaces: str = "") -> tuple[str, dict[str, Any]]:
        """RFC 8555 7.4; `replaces` is the RFC 9773 certificate identifier being renewed."""
        payload: dict[str, Any] = {"identifiers": [{"type": "dns", "value": n} for n in names]}
        if replaces:
            payload["replaces"] = replaces
        resp = await self.post(self.directory["newOrder"], payload)
        return resp.headers.get("location", ""), resp.json()

    async def get(self, url: str) -> Response:
        return await self.post(url, None)

    async def poll(self, url: str, until: tuple[str, ...], deadline: float = 120.0) -> dict[str, Any]:
        """POST-as-GET until the object's status is one of `until` (or `invalid`)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        delay = 0.5
        while True:
            resp = await self.get(url)
            obj: dict[str, Any] = resp.json()
            status = obj.get("status", "")
            if status in until:
                return obj
            if status == "invalid":
                raise AcmeError(f"{url}: invalid: {json.dumps(_errors(obj))[:500]}")
            if loop.time() > end:
                raise AcmeError(f"{url}: still {status!r} after {deadline:.0f}s")
            retry = resp.headers.get("retry-after", "")
            await asyncio.sleep(min(float(retry), 10.0) if retry.isdigit() else delay)
            delay = min(delay * 2, 5.0)

    def key_authorization(self, token: str) -> str:
        """RFC 8555 8.1: token '.' account key thumbprint."""
        return f"{token}.{thumbprint(self.key)}"

    async def renewal_info(self, cert_pem: bytes) -> dict[str, Any] | None:
        """RFC 9773 4: the server's suggested renewal window, when it offers renewalInfo."""
        base = self.directory.get("renewalInfo")
        if not base:
            return None
        resp = await self._call("GET", f"{base.rstrip('/')}/{ari_cert_id(cert_pem)}")
        if resp.status != 200:
            return None
        info: dict[str, Any] = resp.json()
        return info


def ari_cert_id(cert_pem: bytes) -> str:
    """RFC 9773 4.1: base64url(AKI keyIdentifier) '.' base64url(serial number DER octets)."""
    cert = x509.load_pem_x509_certificates(cert_pem)[0]
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = cert.serial_number
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER INTEGER: sign bit
    return f"{b64url(aki.key_identifier or b'')}.{b64url(octets)}"


def _problem(resp: Response) -> dict[str, Any]:
    """RFC 8555 6.7 / RFC 7807 problem document, or {} when the body is something else."""
    try:
        obj = resp.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _errors(obj: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    if "error" in obj:
        found.append(obj["error"])
    for ch in obj.get("challenges", []):
        if isinstance(ch, dict) and "error" in ch:
            found.append(ch["error"])
    return found
