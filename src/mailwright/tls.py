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


# RFC 8737 3: the id-pe-acmeIdentifier extension of a tls-alpn-01 challenge certificate.
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
ACME_TLS_ALPN = "acme-tls/1"


class ServerTLS:
    """The one server context every TLS listener shares, reloaded in place.

    Every listener (implicit TLS and STARTTLS) holds a reference to `context`; a renewed
    certificate is loaded into that same object, so each new handshake presents it without a
    restart and without any listener knowing. Sessions already established keep theirs.

    It also answers RFC 8737 tls-alpn-01 validations: while a challenge is pending for a name, a
    ClientHello whose SNI is that name and whose ALPN list offers `acme-tls/1` is switched to a
    context holding only the challenge certificate and offering only that protocol. Every other
    client (a mail client with the same SNI during the validation) keeps the real certificate.
    Python shows the SNI callback no ALPN list, so while challenges are pending a message
    callback reads the ClientHello (it runs just before the SNI callback, in the same call).
    """

    def __init__(self, cert: Path, key: Path, context: ssl.SSLContext | None = None) -> None:
        self.context = context if context is not None else server_context(cert, key)
        self.cert_path = cert
        self.key_path = key
        self._challenges: dict[str, ssl.SSLContext] = {}
        self._acme_hello = 0  # id() of the TLS object whose ClientHello offered acme-tls/1
        self.context.sni_callback = self._select_by_sni

    def reload(self, cert: Path, key: Path) -> None:
        """Present `cert` on every new handshake from now on (same key type as before).

        The pair is tried on a scratch context first, so a mismatched or unreadable pair never
        reaches the shared one (what a failed load leaves in a context differs between OpenSSL
        versions; every listener depends on this one).
        """
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        self.context.load_cert_chain(cert, key)
        self.cert_path = cert
        self.key_path = key

    def add_alpn_challenge(self, name: str, key_authorization: str) -> None:
        """Serve the RFC 8737 3 validation certificate for `name` until removed."""
        import hashlib
        import tempfile

        digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            # RFC 8737 3: critical, its value the DER OCTET STRING of SHA-256(key authorization)
            .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest),
                           critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # RFC 8737 4: the validation server offers only acme-tls/1.
        ctx.set_alpn_protocols([ACME_TLS_ALPN])
        # load_cert_chain reads files only: a private temporary folder, gone at once.
        with tempfile.TemporaryDirectory(prefix="mailwright-alpn-") as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
            ctx.load_cert_chain(cert_file, key_file)
        self._challenges[name.lower().rstrip(".")] = ctx
        # Only while a validation is pending: a Python call per TLS record is not free.
        setattr(self.context, "_msg_callback", self._read_client_hello)  # noqa: B010

    def remove_alpn_challenge(self, name: str) -> None:
        self._challenges.pop(name.lower().rstrip("."), None)
        if not self._challenges:
            setattr(self.context, "_msg_callback", None)  # noqa: B010

    def _read_client_hello(self, conn: object, direction: str, _version: object,
                           content_type: int, msg_type: int, data: bytes) -> None:  # fmt: skip
        if direction == "read" and content_type == 22 and msg_type == 1:  # handshake, ClientHello
            self._acme_hello = id(conn) if ACME_TLS_ALPN.encode() in client_hello_alpn(data) else 0

    def _select_by_sni(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        offered_acme, self._acme_hello = self._acme_hello == id(sslobj), 0
        if name and offered_acme:
            challenge = self._challenges.get(name.lower().rstrip("."))
            if challenge is not None:
                sslobj.context = challenge
        return None


def client_hello_alpn(message: bytes) -> list[bytes]:
    """The ALPN protocol names (RFC 7301 3.1) of a ClientHello handshake message; [] if none
    or malformed (RFC 8446 4.1.2 layout, the same in TLS 1.2)."""
    try:
        pos = 4 + 2 + 32  # message header, legacy_version, random
        pos += 1 + message[pos]  # legacy_session_id
        pos += 2 + int.from_bytes(message[pos:pos + 2], "big")  # cipher_suites
        pos += 1 + message[pos]  # legacy_compression_methods
        end = pos + 2 + int.from_bytes(message[pos:pos + 2], "big")
        pos += 2
        while pos + 4 <= min(end, len(message)):
            ext_type = int.from_bytes(message[pos:pos + 2], "big")
            ext_len = int.from_bytes(message[pos + 2:pos + 4], "big")
            body = message[pos + 4:pos + 4 + ext_len]
            pos += 4 + ext_len
            if ext_type == 16:  # application_layer_protocol_negotiation
                names, i = [], 2
                while i < len(body):
                    n = body[i]
                    names.append(body[i + 1:i + 1 + n])
                    i += 1 + n
                return names
    except IndexError:
        return []
    return []


def describe_certificate(pem: bytes) -> dict[str, object]:
    """Names, issuer and validity of the first certificate of a PEM chain (`tls status`)."""
    cert = x509.load_pem_x509_certificates(pem)[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        names += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = [a.value if isinstance(a.value, str) else a.value.decode()
                 for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]  # fmt: skip
    return {
        "names": names,
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
    }
