"""The http listener over a real socket: health, metrics, Thunderbird and Outlook autoconfig."""

from __future__ import annotations

import http.client
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from tests.support.server import MailwrightServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("web"))
    srv.start()
    yield srv
    srv.stop()


def get(srv: MailwrightServer, path: str, method: str = "GET", body: str | None = None) -> tuple[int, str]:
    c = http.client.HTTPConnection("127.0.0.1", srv.base + 8080, timeout=30)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def test_http_health_and_metrics(server: MailwrightServer) -> None:
    assert get(server, "/healthz") == (200, "ok\n")
    status, text = get(server, "/metrics")
    assert status == 200
    assert "mailwright_connections_active" in text and "mailwright_store_commits_total" in text
    assert get(server, "/nope")[0] == 404
    assert get(server, "/healthz", method="DELETE")[0] == 405


def test_http_thunderbird_autoconfig(server: MailwrightServer) -> None:
    status, text = get(server, "/mail/config-v1.1.xml?emailaddress=alice%40example.test")
    assert status == 200
    root = ET.fromstring(text)
    incoming = {(s.get("type"), s.findtext("port"), s.findtext("socketType"))
                for s in root.iter("incomingServer")}
    assert ("imap", str(server.port("imaps")), "SSL") in incoming
    assert ("pop3", str(server.port("pop3")), "STARTTLS") in incoming
    outgoing = {(s.findtext("port"), s.findtext("socketType")) for s in root.iter("outgoingServer")}
    assert (str(server.port("submissions")), "SSL") in outgoing
    assert root.find("emailProvider").get("id") == "example.test"  # type: ignore[union-attr]


def test_http_outlook_autodiscover(server: MailwrightServer) -> None:
    req = ("<Autodiscover><Request><EMailAddress>alice@example.test</EMailAddress>"
           "</Request></Autodiscover>")
    status, text = get(server, "/autodiscover/autodiscover.xml", "POST", req)
    assert status == 200 and f"<Port>{server.port('imaps')}</Port>" in text
    assert get(server, "/autodiscover/autodiscover.xml", "POST", "<x/>")[0] == 400


def test_http_garbage_gets_400(server: MailwrightServer) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", server.base + 8080), timeout=30) as s:
        s.sendall(b"\x00\x01 not http at all\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
