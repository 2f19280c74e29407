"""What every request of the web interface goes through: its session, CSRF, security headers.

`WebMiddleware` wraps the whole web application (ASGI), so no page can forget any of it:

* **Session.** The cookie `__Host-mw_session` (HttpOnly, Secure, SameSite=Lax, Path=/, no
  Domain: the `__Host-` prefix makes browsers refuse it otherwise, RFC 6265bis 4.1.3.2) holds a
  random token; the store keeps only its SHA-256 (`store.api.WebSession`), so any worker process
  of the server finds the session, and a stolen backup signs nobody in. The signed-in account
  goes in `request.state.account` (None when there is none; see `pages.current_user`).
* **CSRF.** Every request whose method is not GET, HEAD or OPTIONS must carry the session's
  token (synchronizer token; before sign-in, the `__Host-mw_csrf` cookie's value, a double-
  submit token that stops login CSRF): in the `csrf` field of a urlencoded form, in the
  `X-CSRF-Token` header (scripts, uploads), or in the `csrf` query parameter (a multipart form
  without script). An `Origin` header naming another site is refused as well. The urlencoded
  body is read (at most `MAX_FORM`) to find the field and handed on unchanged.
* **Headers.** A strict Content-Security-Policy (no inline script or style, nothing from other
  origins, no framing by others), nosniff, no referrer, HSTS and the other headers of
  `SECURITY_HEADERS`, added to every response unless the page set its own (the webmail's
  message frame sets a stricter CSP). Pages are `Cache-Control: no-store` unless they say
  otherwise (static files do).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from mailwright.store.api import WebSession
from mailwright.web.asgi import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mailwright.web.roles import WebContext

SESSION_COOKIE = "__Host-mw_session"
PRE_COOKIE = "__Host-mw_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = b"x-csrf-token"
MAX_FORM = 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)


def session_id(token: str) -> str:
    """What the store keeps of a session cookie."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def cookie_header(name: str, value: str, max_age: int | None) -> bytes:
    """A Set-Cookie value with the flags every cookie of ours has."""
    age = "" if max_age is None else f"; Max-Age={max_age}"
    return f"{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}".encode("ascii")


def _cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for k, v in scope["headers"]:
        if k == b"cookie":
            try:
                jar.load(v.decode("latin-1"))
            except CookieError:
                continue
    return {k: m.value for k, m in jar.items()}


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return None


class WebMiddleware:
    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        state = scope.setdefault("state", {})
        session, account = await self._session(cookies.get(SESSION_COOKIE, ""))
        state["session"] = session if account is not None else None
        state["pending"] = session if account is None and session is not None else None
        state["account"] = account
        pre = cookies.get(PRE_COOKIE, "")
        new_pre = not (16 <= len(pre) <= 64 and pre.isascii())
        if new_pre:
            pre = secrets.token_urlsafe(24)
        state["pre_csrf"] = pre
        send = self._with_headers(send, cookie_header(PRE_COOKIE, pre, None) if new_pre else None)
        if scope["method"] not in SAFE_METHODS:
            expected = session.csrf if session is not None else ("" if new_pre else pre)
            refused, receive = await self._check_csrf(scope, receive, expected)
            if refused:
                await _plain(send, 403, refused)
                return
        await self.app(scope, receive, send)

    async def _session(self, token: str) -> tuple[WebSession | None, Any]:
        """The session named by the cookie, and its account once fully signed in."""
        if not token or len(token) > 100:
            return None, None
        store = self.ctx.store
        session = await store.web_session_get(session_id(token))
        if session is None or session.expires <= time.time():
            return None, None
        account = await store.get_account(session.account_id)
        if account is None or account.disabled:
            return None, None
        return session, (account if session.stage == "full" else None)

    async def _check_csrf(self, scope: Scope, receive: Receive,
                          expected: str) -> tuple[str, Receive]:
        """An explanation when the request must be refused (and the receive to go on with)."""
        origin = _header(scope, b"origin")
        host = _header(scope, b"host") or ""
        if origin is not None and origin != "null" and origin != f"https://{host}":
            return "cross-site request refused\n", receive
        given = _header(scope, CSRF_HEADER)
        if given is None:
            given = parse_qs(scope["query_string"].decode("latin-1")).get(CSRF_FIELD, [None])[0]
        ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if given is None and ctype == "application/x-www-form-urlencoded":
            body, more, receive = await _read_form(receive)
            if more:
                return "form too large\n", receive
            given = parse_qs(body.decode("latin-1")).get(CSRF_FIELD, [None])[0]
        if not expected or given is None or not hmac.compare_digest(
                given.encode("latin-1", "replace"), expected.encode("ascii")):
            return ("the form has expired or did not come from this site: reload the page"
                    " and try again\n"), receive
        return "", receive

    def _with_headers(self, send: Send, set_cookie: bytes | None) -> Send:
        return add_headers(send, set_cookie)


def with_security_headers(app: ASGIApp) -> ASGIApp:
    """`app` with the headers of `SECURITY_HEADERS` on its responses (the https listener's
    other paths: MTA-STS policy, autoconfiguration)."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, add_headers(send, None))

    return wrapped


def add_headers(send: Send, set_cookie: bytes | None) -> Send:
    """`send` adding the security headers (those the response has not set itself)."""
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            have = {bytes(k).lower() for k, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in have]
            if b"cache-control" not in have:
                headers.append((b"cache-control", b"no-store"))
            if set_cookie is not None:
                headers.append((b"set-cookie", set_cookie))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _read_form(receive: Receive) -> tuple[bytes, bool, Receive]:
    """The urlencoded body (up to MAX_FORM), whether more followed, and a receive that hands
    the same body to the application."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more and size <= MAX_FORM:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = bytes(message.get("body", b""))
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, size > MAX_FORM, replay


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
