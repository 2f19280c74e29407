"""RFC 9773 renewal information: the manager asks for the window of its certificate (by the
certificate identifier of 4.1) and renews from the window's start. Pebble 2.4 (Debian) offers
no renewalInfo, so a small HTTP server stands in for that one resource of the CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509

from mailwright.acme.client import ari_cert_id
from mailwright.acme.manager import CertificateManager
from mailwright.config import parse_config
from mailwright.tls import ServerTLS, make_self_signed
from tests.acme.test_server_tls import handshake, serve
from tests.support.pebble import make_api_certificate


class FakeCA(ThreadingHTTPServer):
    window: dict[str, str] = {}
    asked: list[str] = []


class Handler(BaseHTTPRequestHandler):
    server: FakeCA

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/dir":
            body = {"newNonce": f"http://127.0.0.1:{port}/nonce",
                    "renewalInfo": f"http://127.0.0.1:{port}/ari"}
        elif self.path.startswith("/ari/"):
            self.server.asked.append(self.path[5:])
            body = {"suggestedWindow": self.server.window}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ca() -> Iterator[FakeCA]:
    server = FakeCA(("127.0.0.1", 0), Handler)
    server.asked = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def manager(tmp_path: Path, ca: FakeCA) -> CertificateManager:
    make_self_signed("mail.example.test", tmp_path / "c.pem", tmp_path / "k.pem")
    config = parse_config({
        "server": {"hostname": "localhost", "data_dir": "data"},
        "tls": {"cert": "c.pem", "key": "k.pem", "acme": True},
        "acme": {"directory": f"http://127.0.0.1:{ca.server_address[1]}/dir"},
    }, tmp_path / "mailwright.toml")  # fmt: skip
    mgr = CertificateManager(config, ServerTLS(tmp_path / "c.pem", tmp_path / "k.pem"),
                             https=True, http=False)  # fmt: skip
    # A CA-issued certificate (with an Authority Key Identifier) for "localhost".
    _ca, cert, key = make_api_certificate(tmp_path)
    mgr.dir.mkdir(parents=True)
    shutil.copy(cert, mgr.cert_path)
    shutil.copy(key, mgr.key_path)
    mgr.names = ["localhost"]
    return mgr


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_ari_window_decides_the_renewal(tmp_path: Path, ca: FakeCA) -> None:
    mgr = manager(tmp_path, ca)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # The certificate runs from an hour ago for two days: two thirds would renew tomorrow;
    # the server's window says later, and wins.
    ca.window = {"start": iso(now + dt.timedelta(days=10)), "end": iso(now + dt.timedelta(days=11))}
    assert asyncio.run(mgr.due()) is False
    assert mgr.renew_at == now + dt.timedelta(days=10)
    assert ca.asked == [ari_cert_id(mgr.cert_path.read_bytes())]
    # The server moves the window into the past (for example after a revocation): renew now.
    ca.window = {"start": iso(now - dt.timedelta(hours=1)), "end": iso(now + dt.timedelta(hours=1))}
    assert asyncio.run(mgr.due()) is True


def test_ari_cert_id_format(tmp_path: Path) -> None:
    _ca, cert, _key = make_api_certificate(tmp_path)
    aki, _, serial = ari_cert_id(cert.read_bytes()).partition(".")
    assert aki and serial and "=" not in aki + serial


def test_a_stored_certificate_with_the_wrong_key_is_not_served(tmp_path: Path, ca: FakeCA) -> None:
    mgr = manager(tmp_path, ca)
    assert mgr.load_existing() is True
    # A crash between writing key.pem and cert.pem: the pair does not match.
    shutil.copy(tmp_path / "k.pem", mgr.key_path)
    assert mgr.load_existing() is False

    async def still_served() -> x509.Certificate:
        server = await serve(mgr.tls)
        cert, _ = await handshake(server.sockets[0].getsockname()[1], "localhost", None)
        server.close()
        return cert

    # ...and the certificate loaded before is still presented, with its key.
    assert asyncio.run(still_served()).subject.rfc4514_string() == "CN=localhost"
