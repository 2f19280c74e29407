"""The https listener of `init` over real TLS: the MTA-STS policy (RFC 8461 3.2) for
mta-sts.<local domain> only, the autoconfiguration of the http listener, nothing else."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.support.server import MailwrightServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("https"))
    with srv.cfg.open("a") as fh:
        fh.write('\n[mtasts]\nmode = "testing"\nmax_age = "2d"\n')
    srv.start()
    yield srv
    srv.stop()


def request(srv: MailwrightServer, host: str, path: str, method: str = "GET",
            body: str = "") -> tuple[int, str]:  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(srv.dir / "tls" / "cert.pem"))
    ctx.check_hostname = False  # init's self-signed certificate names mail.example.test only
    payload = body.encode()
    with socket.create_connection(("127.0.0.1", srv.port("https")), timeout=30) as sock, \
            ctx.wrap_socket(sock, server_hostname=host) as tls:
        tls.sendall(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), rest.decode()


def test_https_serves_the_mta_sts_policy(server: MailwrightServer) -> None:
    status, body = request(server, "mta-sts.example.test", "/.well-known/mta-sts.txt")
    assert status == 200
    assert body == ("version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\n"
                    "max_age: 172800\r\n")
    # With a port in Host, too (RFC 9110 7.2).
    host = f"mta-sts.example.test:{server.port('https')}"
    assert request(server, host, "/.well-known/mta-sts.txt")[0] == 200


def test_https_refuses_policies_for_other_hosts(server: MailwrightServer) -> None:
    assert request(server, "mta-sts.elsewhere.test", "/.well-known/mta-sts.txt")[0] == 404
    assert request(server, "mail.example.test", "/.well-known/mta-sts.txt")[0] == 404
    assert request(server, "mta-sts.", "/.well-known/mta-sts.txt")[0] == 404


def test_https_autoconfig_and_nothing_of_the_internal_http(server: MailwrightServer) -> None:
    status, body = request(server, "autoconfig.example.test", "/mail/config-v1.1.xml")
    assert status == 200 and f"<port>{server.port('imaps')}</port>" in body
    req = ("<Autodiscover><Request><EMailAddress>alice@example.test</EMailAddress>"
           "</Request></Autodiscover>")
    status, body = request(server, "autodiscover.example.test",
                           "/autodiscover/autodiscover.xml", "POST", req)
    assert status == 200 and f"<Port>{server.port('imaps')}</Port>" in body
    # metrics, health and ACME http-01 tokens stay on the internal http listener
    assert request(server, "mail.example.test", "/metrics")[0] == 404
    assert request(server, "mail.example.test", "/.well-known/acme-challenge/x")[0] == 404


def test_https_acme_tls_client_without_a_pending_challenge_gets_plain_https(
    server: MailwrightServer,
) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", server.port("https")), timeout=30) as sock, \
            ctx.wrap_socket(sock, server_hostname="mail.example.test") as tls:
        assert tls.selected_alpn_protocol() is None
        tls.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.test\r\n"
                    b"Connection: close\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 200")


def test_tls_status_without_acme(server: MailwrightServer) -> None:
    out = server.cli("tls", "status")
    assert "acme: no" in out and "(in use)" in out
    assert "mail.example.test" in out and "expires:" in out


def test_metrics_show_the_certificate_expiry(server: MailwrightServer) -> None:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", server.port("http"), timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    line = next(x for x in text.splitlines()
                if x.startswith("mailwright_tls_certificate_expiry_timestamp_seconds "))
    assert float(line.split()[1]) > 1.7e9
    assert "mailwright_acme_" not in text  # no ACME in this config
