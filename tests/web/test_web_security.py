"""The web interface's security rules over real HTTPS: cookie flags, CSRF on every
state-changing route, security headers on every page, admin pages for admins only, sign-in
failures and bans shared with IMAP, bounded requests."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import BaseRoute, Mount, Route

from mailwright.web import account, admin, webmail
from mailwright.web.ui import signin
from tests.support.browser import ADMIN, USER
from tests.support.server import PASSWORD, MailwrightServer
from tests.support.webclient import WebClient


def _paths(prefix: str, routes: list[BaseRoute], method: str) -> list[str]:
    """Every route's path taking `method`, with made-up path parameters."""
    out: list[str] = []
    for r in routes:
        if isinstance(r, Route) and r.methods and method in r.methods:
            out.append(prefix + re.sub(r"\{(\w+)(:\w+)?\}", "x1", r.path))
        elif isinstance(r, Mount):
            out += _paths(prefix + r.path, r.routes, method)
    return out


AREAS = [("/webmail", webmail.routes), ("/account", account.routes), ("/admin", admin.routes),
         ("", signin.routes)]
POST_PATHS = [p for prefix, routes in AREAS for p in _paths(prefix, routes, "POST")]
GET_PATHS = [p for prefix, routes in AREAS for p in _paths(prefix, routes, "GET")]
ADMIN_GET_PATHS = _paths("/admin", admin.routes, "GET")


def test_session_cookie_flags(web_server: MailwrightServer) -> None:
    c = WebClient(web_server)
    first = c.get("/signin")
    (pre,) = first.all("set-cookie")
    assert pre.startswith("__Host-mw_csrf=")
    reply = c.sign_in(USER)
    assert reply.status == 303
    (cookie,) = [v for v in reply.all("set-cookie") if v.startswith("__Host-mw_session=")]
    for value in (pre, cookie):
        flags = {f.strip().split("=")[0].lower() for f in value.split(";")[1:]}
        assert {"httponly", "secure", "samesite", "path"} <= flags, value
        assert "SameSite=Lax" in value and "Path=/" in value and "Domain" not in value
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40
    # the store keeps the token's hash, not the token: a copy of the database signs nobody in
    db = (web_server.dir / "data").rglob("*.sqlite*")
    assert not any(token.encode() in p.read_bytes() for p in db if p.is_file())


@pytest.mark.parametrize("path", POST_PATHS)
def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(
        web_server: MailwrightServer, path: str) -> None:
    c = WebClient(web_server)
    c.sign_in(ADMIN)
    assert c.csrf
    assert c.post(path, {"action": "delete"}, csrf=False).status == 403
    assert c.post(path, {"action": "delete", "csrf": "forged"}, csrf=False).status == 403
    assert c.request("POST", path, b"", {"Content-Type": "multipart/form-data; boundary=x"}
                     ).status == 403
    assert c.post(path, {"action": "delete"},
                  headers={"Origin": "https://attacker.example"}).status == 403


def test_csrf_token_is_the_sessions(web_server: MailwrightServer) -> None:
    mallory, alice = WebClient(web_server), WebClient(web_server)
    mallory.sign_in(USER)
    alice.sign_in(ADMIN)
    alice.get("/admin/domains")
    # another session's token (even a valid one) is refused
    alice.csrf = mallory.csrf
    assert alice.post("/admin/domains", {"domain": "evil.test"}).status == 403
    alice.get("/admin/domains")
    assert alice.post("/admin/domains", {"domain": "good.test"}).status == 303
    assert "good.test" in web_server.cli("domain", "list")
    # signing in without the pre-session token is refused too (login CSRF)
    fresh = WebClient(web_server)
    assert fresh.post("/signin", {"email": USER, "password": PASSWORD}).status == 403


def test_security_headers_on_every_page(web_server: MailwrightServer) -> None:
    c = WebClient(web_server)
    anonymous = [c.get("/signin"), c.get("/webmail/"), c.get("/nope"), c.get("/static/style.css")]
    c.sign_in(ADMIN)
    pages = anonymous + [c.get(p) for p in GET_PATHS] + [c.get("/admin/nope")]
    assert any(r.status == 200 for r in pages)
    for reply in pages:
        csp = reply.header("content-security-policy") or ""
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, reply
        assert "'unsafe-inline'" not in csp
        assert reply.header("x-content-type-options") == "nosniff"
        assert reply.header("referrer-policy") == "no-referrer"
        assert reply.header("strict-transport-security")
        assert "<script>" not in reply.body  # no inline script anywhere


def test_admin_pages_refused_to_non_admins(web_server: MailwrightServer) -> None:
    anonymous, user = WebClient(web_server), WebClient(web_server)
    user.sign_in(USER)
    for path in ADMIN_GET_PATHS:
        r = anonymous.get(path)
        assert r.status == 303 and r.header("location", ).startswith("/signin?next=")  # type: ignore[union-attr]
        assert user.get(path).status == 403, path
    user.get("/account/")
    assert user.post("/admin/domains", {"domain": "mine.test"}).status == 403
    assert user.post("/admin/accounts", {"address": "x@example.test",
                                         "password": "0123456789ab"}).status == 403
    assert "mine.test" not in web_server.cli("domain", "list")


def test_next_is_never_another_site(web_server: MailwrightServer) -> None:
    c = WebClient(web_server)
    for target in ("https://attacker.example/", "//attacker.example/", "/\\attacker.example"):
        c.cookies.pop("__Host-mw_session", None)
        c.get("/signin")
        r = c.post("/signin", {"email": USER, "password": PASSWORD, "next": target})
        assert r.status == 303 and r.header("location") == "/webmail/", target


def test_requests_are_bounded(web_server: MailwrightServer) -> None:
    c = WebClient(web_server)
    c.sign_in(USER)
    big = 33 * 1024 * 1024
    r = c.request("POST", "/account/password", b"", {"Content-Length": str(big),
                                                     "X-CSRF-Token": c.csrf})
    assert r.status == 413
    # a malformed request is answered 400, not a traceback
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", web_server.port("https")), 30) as raw, \
            ctx.wrap_socket(raw) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")


# --- bans shared with IMAP -----------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("strict"))
    srv.add_user("ann@example.test")
    srv.add_user("bob@example.test")
    with Path(srv.cfg).open("a") as f:
        f.write('\n[limits]\nauth_failures_before_ban = 3\nauth_failure_delay = "0.01s"\n'
                'auth_max_failure_delay = "0.01s"\n')
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _imap(srv: MailwrightServer, user: str, password: str) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=ctx, timeout=30) as c:
        try:
            c.login(user, password)
        except imaplib.IMAP4.error:
            return False
        c.logout()
        return True


def test_web_failures_ban_imap_and_back(strict_server: MailwrightServer) -> None:
    c = WebClient(strict_server)
    for _ in range(3):
        assert c.sign_in("ann@example.test", "wrong password").status == 401
    # ann is banned from this address: IMAP refuses even her right password, and so does the web
    assert not _imap(strict_server, "ann@example.test", PASSWORD)
    assert c.sign_in("ann@example.test", PASSWORD).status == 401
    # and the other way: failures over IMAP ban bob's web sign-in
    assert _imap(strict_server, "bob@example.test", PASSWORD)
    for _ in range(3):
        assert not _imap(strict_server, "bob@example.test", "wrong password")
    assert c.sign_in("bob@example.test", PASSWORD).status == 401
