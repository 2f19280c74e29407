"""The `https` listener: HTTP over implicit TLS.

Today it serves the MTA-STS policy (RFC 8461 3.2) to `mta-sts.<local domain>`, the same
client autoconfiguration as the `http` listener, and answers ACME tls-alpn-01 validations
(RFC 8737; the certificate is chosen by SNI in `tls.ServerTLS`, this module only hangs up).
`ROUTES` maps a path prefix to a router, tried in order before the shared routes.

The web interface (webmail, account, administration: `web.ui`) is an ASGI application served
on the same connections: `web.asgi` bridges h11's requests into it, and `ui.app.dispatch` hands
it the web paths; the routes here get the others, through `legacy_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mailwright.config import ListenerConfig
from mailwright.tls import ACME_TLS_ALPN
from mailwright.transport.mtasts import configured_policy
from mailwright.web.asgi import ASGIApp, Receive, Scope, Send, serve_asgi
from mailwright.web.listener import MAX_REQUEST, Response, Router, host_name, shared_route

if TYPE_CHECKING:
    from mailwright.app import AppContext
    from mailwright.net.server import Connection, Handler

# (ctx, method, target, body, host) -> response, or None to fall through to the next route
PrefixRouter = Callable[["AppContext", str, str, bytes, str], Awaitable[Response | None]]
MTA_STS_PATH = "/.well-known/mta-sts.txt"


async def mta_sts_policy(
    ctx: AppContext, method: str, target: str, body: bytes, host: str
) -> Response | None:
    """RFC 8461 3.2: the policy, only at https://mta-sts.<policy domain>/.well-known/..."""
    if target.split("?", 1)[0] != MTA_STS_PATH or method not in ("GET", "HEAD"):
        return None
    name = host_name(host).lower().rstrip(".")
    domain = name.removeprefix("mta-sts.")
    if name == domain or not domain or len(domain) > 253:
        return 404, "text/plain; charset=utf-8", "no policy for this host\n"
    if not await ctx.directory.is_local_domain(domain):
        return 404, "text/plain; charset=utf-8", "not a domain of this server\n"
    return 200, "text/plain", policy_text(ctx)


def policy_text(ctx: AppContext) -> str:
    """RFC 8461 3.2: version, mode, mx (our hostname), max_age; CRLF-terminated lines (the
    same text `dns-records` derives the `_mta-sts` id from)."""
    sts = ctx.config.mtasts
    return configured_policy(ctx.config.server.hostname, sts.mode, sts.max_age)


ROUTES: list[tuple[str, PrefixRouter]] = [
    ("/.well-known/mta-sts.txt", mta_sts_policy),
]


def legacy_app(router: Router) -> ASGIApp:
    """A `Router` (method, target, body, host -> status, type, text) as an ASGI application;
    its request bodies stay bounded by the http listener's `MAX_REQUEST`."""
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if len(body) > MAX_REQUEST:
                status, ctype, text = 413, "text/plain", "too large\n"
                break
            if not message.get("more_body", False):
                target = scope["raw_path"].decode("ascii", "replace")
                if scope["query_string"]:
                    target += "?" + scope["query_string"].decode("ascii", "replace")
                host = next((v.decode("ascii", "replace") for k, v in scope["headers"]
                             if k == b"host"), "")  # fmt: skip
                status, ctype, text = await router(scope["method"], target, body, host)
                break
        payload = text.encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", ctype.encode()), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


def create(ctx: AppContext, listener: ListenerConfig) -> Handler:
    from mailwright.web.ui.app import create_app, dispatch

    async def router(method: str, target: str, body: bytes, host: str) -> Response:
        for prefix, handler in ROUTES:
            if target.startswith(prefix):
                answer = await handler(ctx, method, target, body, host)
                if answer is not None:
                    return answer
        return await shared_route(ctx, method, target, body, host)

    app = dispatch(create_app(ctx), legacy_app(router))

    async def handle(conn: Connection) -> None:
        sslobj = conn.writer.get_extra_info("ssl_object")
        if sslobj is not None and sslobj.selected_alpn_protocol() == ACME_TLS_ALPN:
            # RFC 8737 3: the validation ends with the handshake; no data follows.
            conn.result = "acme-tls/1"
            return
        await serve_asgi(conn, app, max_body=ctx.config.web.max_request,
                         idle_timeout=ctx.config.web.idle_timeout)

    return handle
