"""Real components for the transport tests: a test CA made with ``cryptography``, an HTTPS
server on loopback (MTA-STS policies, TLS-RPT POSTs), the loopback DNS server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.dnsserver import DNSServer


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Issued:
    cert: x509.Certificate
    cert_path: Path  # the certificate alone
    chain_path: Path  # the certificate then the CA's
    key_path: Path

    def server_context(self, *, chain: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.chain_path if chain else self.cert_path, self.key_path)
        return ctx


class PrivateCA:
    """A private certificate authority, as an operator's ``[outbound] ca_file`` would name."""

    def __init__(self, folder: Path, name: str = "Mailwright Test CA") -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = folder / f"{name.replace(' ', '_')}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._serial = 0

    def issue(self, *names: str, expired: bool = False) -> Issued:
        self._serial += 1
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        start, end = ((now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired
                      else (now - dt.timedelta(days=1), now + dt.timedelta(days=10)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        base = self.folder / f"leaf{self._serial}"
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        cert_path = base.with_suffix(".crt")
        cert_path.write_bytes(cert_pem)
        chain_path = base.with_suffix(".chain")
        chain_path.write_bytes(cert_pem + self.cert.public_bytes(serialization.Encoding.PEM))
        key_path = base.with_suffix(".key")
        key_path.write_bytes(_pem_key(key))
        return Issued(cert, cert_path, chain_path, key_path)


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HTTPSServer:
    """HTTP/1.1 over TLS on loopback: ``routes`` maps a path to (status, content type, body)
    for GET; every POST is kept in ``posted`` and answered 200."""

    context: ssl.SSLContext
    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    posted: list[Posted] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> HTTPSServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0,
                                                  ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode().strip()
            headers: dict[str, str] = {}
            while True:
                line = (await reader.readline()).decode()
                if line in ("\r\n", "\n", ""):
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            method, path, _ = request_line.split(" ", 2)
            self.requests.append(f"{method} {path} host={headers.get('host')}")
            if method == "POST":
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.posted.append(Posted(path, headers, body))
                status, ctype, payload = 200, "text/plain", b"thanks\n"
            else:
                status, ctype, payload = self.routes.get(path, (404, "text/plain", b"no\n"))
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                         + payload)
            await writer.drain()
        except (OSError, ssl.SSLError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCA:
    folder = tmp_path / "pki"
    folder.mkdir()
    return PrivateCA(folder)


@pytest.fixture
async def https_server(ca: PrivateCA) -> AsyncIterator[HTTPSServer]:
    issued = ca.issue("mta-sts.dest.test", "reports.test")
    server = await HTTPSServer(issued.server_context()).start()
    try:
        yield server
    finally:
        await server.stop()
