"""The h11-to-ASGI bridge of the https listener over a real TLS socket: keep-alive, pipelined
requests, a chunked body past the limit, a client that goes silent."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.support.server import MailwrightServer

# The silent client is hung up on after `[web] idle_timeout`: 5 s here rather than the default
# 30 s that the test would otherwise wait out (long enough for the other tests' clients, which
# never pause, on a loaded machine).
IDLE_TIMEOUT = "5s"


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("asgi"))
    with srv.cfg.open("a") as f:
        f.write(f'\n[web]\nidle_timeout = "{IDLE_TIMEOUT}"\n')
    with srv:
        yield srv


def _tls(srv: MailwrightServer) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", srv.port("https")), 30)
    return ctx.wrap_socket(raw)


def _read_all(s: ssl.SSLSocket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_pipelined_requests_on_one_connection(web_server: MailwrightServer) -> None:
    with _tls(web_server) as s:
        s.sendall(b"GET /signin HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"HEAD /static/style.css HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz-not-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = _read_all(s)
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.count(b"HTTP/1.1 404 Not Found") == 1
    assert b"<title>Sign in" in data


def test_chunked_body_past_the_limit_is_refused(web_server: MailwrightServer) -> None:
    chunk = b"x" * 65536
    with _tls(web_server) as s:
        s.sendall(b"POST /account/password HTTP/1.1\r\nHost: x\r\nX-CSRF-Token: t\r\n"
                  b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
        answer = b""
        try:
            for _ in range(40 * 16):  # 40 MiB at most, past the 32 MiB limit
                s.sendall(b"10000\r\n" + chunk + b"\r\n")
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        try:
            answer = _read_all(s)
        except (ConnectionError, ssl.SSLError, OSError):
            pass
    # refused before the body was read: by the CSRF check (403) or the size limit (413)
    assert answer.startswith((b"HTTP/1.1 403", b"HTTP/1.1 413")), answer[:100]


def test_silent_client_is_hung_up_on(web_server: MailwrightServer) -> None:
    with _tls(web_server) as s:
        s.sendall(b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        s.settimeout(60)
        assert b"HTTP/1.1 403" in _read_all(s)  # no pre-session token: refused, not waited for
    with _tls(web_server) as s:
        s.settimeout(60)
        s.sendall(b"GET /signin HTTP/1.1\r\n")  # an unfinished head: dropped after the timeout
        assert _read_all(s) == b""
