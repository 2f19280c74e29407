"""The `http` listener: /healthz, /metrics (Prometheus text) and client autoconfiguration.

`serve_http` and `shared_route` are also the base of the `https` listener (web/https.py).

HTTP framing is h11's (sans-I/O); this module only routes. Requests are small and bounded;
anything else gets a 4xx and the connection closes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import unescape

import h11

from mailwright.address import AddressError, parse_address
from mailwright.config import ListenerConfig
from mailwright.metrics import render
from mailwright.web.autoconfig import autodiscover, thunderbird

if TYPE_CHECKING:
    from mailwright.app import AppContext
    from mailwright.net.server import Connection, Handler

MAX_REQUEST = 64 * 1024
_EMAIL = re.compile(r"<EMailAddress>([^<]{1,320})</EMailAddress>", re.IGNORECASE)


def metrics_text(ctx: AppContext) -> str:
    """Every worker's values when there are several (mailwright.metrics), else this process's."""
    return render(ctx, getattr(ctx, "worker_metrics", None))


Response = tuple[int, str, str]  # status, content type, body
Router = Callable[[str, str, bytes, str], Awaitable[Response]]  # method, target, body, host


async def route(
    ctx: AppContext, method: str, target: str, body: bytes, host: str = ""
) -> Response:
    """Status, content type and body for one request (HEAD is answered as GET)."""
    url = urlsplit(target)
    path = url.path.rstrip("/") or "/"
    if method == "HEAD":
        method = "GET"  # RFC 9110 9.3.2: the same header fields as GET, without the content
    if method == "GET" and path == "/healthz":
        return 200, "text/plain; charset=utf-8", "ok\n"
    if method == "GET" and path == "/metrics":
        return 200, "text/plain; version=0.0.4", metrics_text(ctx)
    if method == "GET" and (answer := acme_http_challenge(ctx, url.path)) is not None:
        return answer
    return await shared_route(ctx, method, target, body, host)


def acme_http_challenge(ctx: AppContext, path: str) -> Response | None:
    """RFC 8555 8.3: the key authorization for a pending http-01 token, as plain text."""
    prefix = "/.well-known/acme-challenge/"
    if not path.startswith(prefix):
        return None
    tokens = getattr(getattr(ctx, "acme", None), "http_tokens", None) or {}
    key_auth = tokens.get(path[len(prefix):])
    if key_auth is None:
        return 404, "text/plain; charset=utf-8", "no such challenge\n"
    return 200, "application/octet-stream", key_auth


async def shared_route(
    ctx: AppContext, method: str, target: str, body: bytes, host: str = ""
) -> Response:
    """What the http and https listeners both serve: client autoconfiguration."""
    url = urlsplit(target)
    path = url.path.rstrip("/") or "/"
    if method == "HEAD":
        method = "GET"
    if method == "GET" and path in ("/mail/config-v1.1.xml",
                                     "/.well-known/autoconfig/mail/config-v1.1.xml"):
        email = parse_qs(url.query).get("emailaddress", [""])[0]
        if email:
            domain = email.rpartition("@")[2]
        else:  # looked up as autoconfig.<domain>/mail/config-v1.1.xml without the address
            domain = host_name(host).removeprefix("autoconfig.")
        domain = domain.strip().lower().rstrip(".")
        if not await _is_local_domain(ctx, domain):
            return 404, "text/plain; charset=utf-8", "not a domain of this server\n"
        return 200, "application/xml; charset=utf-8", thunderbird(ctx.config, domain)
    if method == "POST" and path.lower() == "/autodiscover/autodiscover.xml":
        m = _EMAIL.search(body.decode("utf-8", "replace"))
        if not m:
            return 400, "text/plain; charset=utf-8", "EMailAddress missing\n"
        # the element's text, with XML's predefined entities (XML 1.0 4.6) read back: a client
        # writes `&` in a local part as `&amp;`
        email = unescape(m.group(1), {"&quot;": '"', "&apos;": "'"}).strip()
        try:
            address = parse_address(email)
        except AddressError:
            return 400, "text/plain; charset=utf-8", "EMailAddress is not an address\n"
        if not await _is_local_domain(ctx, address.domain):
            return 404, "text/plain; charset=utf-8", "not a domain of this server\n"
        return 200, "application/xml; charset=utf-8", autodiscover(ctx.config, str(address))
    if method not in ("GET", "POST"):
        return 405, "text/plain; charset=utf-8", "method not allowed\n"
    return 404, "text/plain; charset=utf-8", "not found\n"


def host_name(host: str) -> str:
    """The Host header field without its port (RFC 9110 7.2)."""
    return host.rpartition(":")[0] if host.count(":") == 1 else host


async def _is_local_domain(ctx: AppContext, domain: str) -> bool:
    if not domain or len(domain) > 253:
        return False
    return bool(await ctx.directory.is_local_domain(domain))


def create(ctx: AppContext, listener: ListenerConfig) -> Handler:
    async def router(method: str, target: str, body: bytes, host: str) -> Response:
        return await route(ctx, method, target, body, host)

    async def handle(conn: Connection) -> None:
        await serve_http(conn, router)

    return handle


async def serve_http(conn: Connection, router: Router) -> None:
    """HTTP/1.1 on one connection (h11 frames it), each request answered by `router`."""
    h = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    request: Any = None
    body = b""
    while True:
        try:
            event = h.next_event()
        except h11.RemoteProtocolError:
            await _send(conn, h, 400, "text/plain", "bad request\n")
            return
        if event is h11.NEED_DATA:
            try:
                data = await asyncio.wait_for(conn.reader.read(65536), 30)
            except TimeoutError:
                return
            h.receive_data(data)
            if not data:
                return
            continue
        if isinstance(event, h11.Request):
            request = event
            body = b""
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_REQUEST:
                await _send(conn, h, 413, "text/plain", "too large\n")
                return
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            method = request.method.decode("ascii", "replace")
            host = next((v.decode("ascii", "replace") for k, v in request.headers
                         if k == b"host"), "")  # fmt: skip
            status, ctype, text = await router(
                method, request.target.decode("ascii", "replace"), body, host
            )
            await _send(conn, h, status, ctype, text, head=method == "HEAD")
            conn.result = str(status)
            if h.our_state is h11.MUST_CLOSE or conn.closing.is_set():
                return
            try:
                h.start_next_cycle()
            except h11.LocalProtocolError:
                return
            request = None
        elif isinstance(event, h11.ConnectionClosed):
            return


async def _send(
    conn: Connection, h: h11.Connection, status: int, ctype: str, text: str, *, head: bool = False
) -> None:
    """One response; for HEAD the header fields of the GET answer and no content."""
    payload = text.encode()
    try:
        data = h.send(h11.Response(
            status_code=status,
            headers=[("Content-Type", ctype), ("Content-Length", str(len(payload))),
                     ("Server", "Mailwright")],
            reason=_reason(status),
        ))  # fmt: skip
        if not head:
            data = (data or b"") + (h.send(h11.Data(data=payload)) or b"")
        data = (data or b"") + (h.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError:
        return
    conn.writer.write(data)
    await conn.writer.drain()


def _reason(status: int) -> bytes:
    # RFC 9112 4: the reason phrase is for humans; give the registered one, not an empty one.
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""
