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


def raw(srv: MailwrightServer, request: bytes) -> bytes:
    """What the server sends for one raw request, up to its close or a quiet second."""
    import socket

    with socket.create_connection(("127.0.0.1", srv.base + 8080), timeout=30) as s:
        s.sendall(request)
        s.settimeout(1.0)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def test_http_autoconfig_only_for_local_domains(server: MailwrightServer) -> None:
    # A config for any domain would point other people's mail clients (and passwords) here.
    assert get(server, "/mail/config-v1.1.xml?emailaddress=x%40other.org")[0] == 404
    assert get(server, "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=x%40other.org")[0] == 404
    req = "<Autodiscover><Request><EMailAddress>x@other.org</EMailAddress></Request></Autodiscover>"
    assert get(server, "/autodiscover/autodiscover.xml", "POST", req)[0] == 404
    # without an address, the Host the client asked for names the domain
    reply = raw(server, b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.test\r\n"
                        b"Connection: close\r\n\r\n")  # fmt: skip
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200]
    reply = raw(server, b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.other.org\r\n"
                        b"Connection: close\r\n\r\n")  # fmt: skip
    assert reply.startswith(b"HTTP/1.1 404 Not Found\r\n"), reply[:200]


def test_http_autoconfig_quotes_cannot_break_out_of_the_xml(server: MailwrightServer) -> None:
    # A `"` in the domain used to end the emailProvider id attribute early.
    status, _ = get(server, '/mail/config-v1.1.xml?emailaddress=x%40example.test%22%20evil%3D%22')
    assert status == 404  # not one of our domains, so no document at all
    # A local part with XML metacharacters (`&` and `'` are atext, RFC 5322 3.2.3), written
    # escaped in the request as XML requires, goes into LoginName escaped: the answer parses
    # back to the very same address (unescaped, `&` would make it unparseable).
    address = "a&b'c@example.test"
    body = ("<Autodiscover><Request><EMailAddress>" + address.replace("&", "&amp;")
            + "</EMailAddress></Request></Autodiscover>")  # fmt: skip
    status, text = get(server, "/autodiscover/autodiscover.xml", "POST", body)
    assert status == 200, text
    assert "a&amp;b" in text
    root = ET.fromstring(text)
    names = [e.text for e in root.iter() if e.tag.endswith("LoginName")]
    assert names and set(names) == {address}, names
    # a quoted local part is refused as an address (accounts have none): no document at all
    body = ('<Autodiscover><Request><EMailAddress>"a\\"b"@example.test</EMailAddress>'
            "</Request></Autodiscover>")  # fmt: skip
    assert get(server, "/autodiscover/autodiscover.xml", "POST", body)[0] == 400
    status, text = get(server, "/mail/config-v1.1.xml?emailaddress=a%22b%40example.test")
    assert status == 200
    assert ET.fromstring(text).find("emailProvider").get("id") == "example.test"  # type: ignore[union-attr]


def test_http_head_and_reason_phrases(server: MailwrightServer) -> None:
    get_reply = raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert get_reply.startswith(b"HTTP/1.1 200 OK\r\n"), get_reply
    head_reply = raw(server, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert head_reply.startswith(b"HTTP/1.1 200 OK\r\n"), head_reply
    head, _, content = head_reply.partition(b"\r\n\r\n")
    assert content == b""  # RFC 9110 9.3.2: no content in answer to HEAD
    assert b"content-length: 3" in head.lower()  # the length GET's answer has ("ok\n")
    # two HEADs on one connection: the framing stays right (no stray body bytes between them)
    two = raw(server, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"HEAD /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # fmt: skip
    assert two.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 404 Not Found\r\n" in two, two
    assert raw(server, b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(
        b"HTTP/1.1 405 Method Not Allowed\r\n"
    )
