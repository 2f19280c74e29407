"""`tls.ServerTLS` over real sockets: in-place reload and the RFC 8737 challenge certificate,
chosen by SNI only for clients that offer `acme-tls/1`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import ssl
from pathlib import Path

from cryptography import x509

from mailwright.tls import (
    ACME_IDENTIFIER_OID,
    ACME_TLS_ALPN,
    ServerTLS,
    client_hello_alpn,
    make_self_signed,
)


async def handshake(port: int, sni: str, alpn: list[str] | None) -> tuple[x509.Certificate, str | None]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                    server_hostname=sni)
    sslobj = writer.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True)
    chosen = sslobj.selected_alpn_protocol()
    writer.close()
    await writer.wait_closed()
    return x509.load_der_x509_certificate(der), chosen


async def serve(tls: ServerTLS) -> asyncio.Server:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls.context)


def test_reload_is_seen_by_the_next_handshake(tmp_path: Path) -> None:
    make_self_signed("one.test", tmp_path / "1.pem", tmp_path / "1.key")
    make_self_signed("two.test", tmp_path / "2.pem", tmp_path / "2.key")
    tls = ServerTLS(tmp_path / "1.pem", tmp_path / "1.key")

    async def run() -> None:
        server = await serve(tls)
        port = server.sockets[0].getsockname()[1]
        first, _ = await handshake(port, "one.test", None)
        tls.reload(tmp_path / "2.pem", tmp_path / "2.key")
        second, _ = await handshake(port, "one.test", None)
        server.close()
        assert first.subject.rfc4514_string() == "CN=one.test"
        assert second.subject.rfc4514_string() == "CN=two.test"

    asyncio.run(run())


def test_challenge_certificate_only_for_acme_tls_clients(tmp_path: Path) -> None:
    make_self_signed("mail.example.test", tmp_path / "c.pem", tmp_path / "k.pem")
    tls = ServerTLS(tmp_path / "c.pem", tmp_path / "k.pem")
    key_auth = "token123.thumbprint456"
    tls.add_alpn_challenge("mail.example.test", key_auth)

    async def run() -> None:
        server = await serve(tls)
        port = server.sockets[0].getsockname()[1]
        # The validation client: SNI and only acme-tls/1 (RFC 8737 3).
        cert, chosen = await handshake(port, "mail.example.test", [ACME_TLS_ALPN])
        assert chosen == ACME_TLS_ALPN
        ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
        assert ext.critical
        value = ext.value.value  # type: ignore[attr-defined]
        assert value == b"\x04\x20" + hashlib.sha256(key_auth.encode()).digest()
        # A mail client with the same SNI during the validation keeps the real certificate.
        for alpn in (None, ["imap"], ["h2", "http/1.1"]):
            cert, chosen = await handshake(port, "mail.example.test", alpn)
            assert chosen is None
            assert not any(e.oid == ACME_IDENTIFIER_OID for e in cert.extensions)
        # Another name: the real certificate even for acme-tls/1.
        cert, _ = await handshake(port, "other.example.test", [ACME_TLS_ALPN])
        assert not any(e.oid == ACME_IDENTIFIER_OID for e in cert.extensions)
        tls.remove_alpn_challenge("mail.example.test")
        cert, _ = await handshake(port, "mail.example.test", [ACME_TLS_ALPN])
        assert not any(e.oid == ACME_IDENTIFIER_OID for e in cert.extensions)
        server.close()

    asyncio.run(run())


def test_client_hello_parser_never_raises_on_garbage() -> None:
    rng = random.Random(8737)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        assert isinstance(client_hello_alpn(data), list)
    assert client_hello_alpn(b"\x01\x00\x00\x10" + os.urandom(3)) == []
