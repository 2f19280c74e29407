"""TLS: self-signed certificates for `init` and demos, and server/client SSL contexts."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_self_signed(hostname: str, cert_path: Path, key_path: Path, days: int = 825) -> None:
    """An ECDSA P-256 certificate for `hostname` (plus localhost and 127.0.0.1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    sans.append(x509.IPAddress(ipaddress.ip_address("::1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """One context for every TLS listener, implicit or STARTTLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # RFC 8996 deprecates TLS 1.0 and 1.1; RFC 9325 3.1.1 asks for 1.2 or newer.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2: ECDHE key exchange only (forward secrecy) with an AEAD (AES-GCM,
    # ChaCha20-Poly1305); no static RSA, CBC, RC4, 3DES, NULL, anonymous or export suites
    # (RFC 9325 4.2). ECDSA and RSA authentication both stay, for operators who bring an RSA
    # certificate. TLS 1.3 suites are configured apart by OpenSSL and are all AEAD: defaults kept.
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS")
    ctx.load_cert_chain(cert, key)
    # RFC 9325 3.3: no TLS-level compression (CRIME). No renegotiation either: no mail protocol
    # needs it, and refusing it removes the attacks RFC 9325 3.5 guards against and a cheap
    # way for a client to make the server redo handshakes.
    ctx.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
                    | ssl.OP_NO_RENEGOTIATION)
    return ctx


def client_context(verify: bool = False, cafile: Path | None = None) -> ssl.SSLContext:
    """Opportunistic TLS between MTAs checks nothing unless asked to (RFC 7435)."""
    if verify:
        ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
