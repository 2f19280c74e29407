"""The `http` listener: /healthz, /metrics (Prometheus text) and client autoconfiguration.

HTTP framing is h11's (sans-I/O); this module only routes. Requests are small and bounded;
anything else gets a 4xx and the connection closes.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import h11

from mailwright.config import ListenerConfig
from mailwright.web.autoconfig import autodiscover, thunderbird

if TYPE_CHECKING:
    from mailwright.app import AppContext
    from mailwright.net.server import Connection, Handler

MAX_REQUEST = 64 * 1024
_EMAIL = re.compile(r"<EMailAddress>([^<]{1,320})</EMailAddress>", re.IGNORECASE)


def metrics_text(ctx: AppContext) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, value: float, labels: str = "") -> None:
        lines.append(f"# HELP mailwright_{name} {help_}")
        lines.append(f"# TYPE mailwright_{name} {kind}")
        lines.append(f"mailwright_{name}{labels} {value}")

    listeners = getattr(ctx, "listeners", None)
    if listeners is not None:
        metric("connections_active", "gauge", "Open client connections.", listeners.active)
        metric("connections_refused_banned_total", "counter",
               "Connections refused at accept from banned addresses.",
               getattr(listeners, "refused_banned", 0))  # fmt: skip
    limiter = getattr(ctx, "limiter", None)
    if limiter is not None:
        metric("commands_delayed_total", "counter",
               "Commands delayed by the per-address command rate.", limiter.delayed)  # fmt: skip
    auth = ctx.authenticator
    metric("auth_verifications_total", "counter", "Password hashes checked.", auth.verifications)
    metric("auth_failures_total", "counter", "Failed logins.", auth.failures)
    metric("auth_refused_banned_total", "counter", "Logins refused from banned addresses.",
           auth.refused_banned)
    db = getattr(ctx.store, "db", None)
    if db is not None and hasattr(db, "batches"):
        metric("store_commits_total", "counter", "Store write batches committed.", db.batches)
        metric("store_operations_total", "counter", "Store write operations.", db.operations)
    return "\n".join(lines) + "\n"


def route(ctx: AppContext, method: str, target: str, body: bytes) -> tuple[int, str, str]:
    url = urlsplit(target)
    path = url.path.rstrip("/") or "/"
    if method == "GET" and path == "/healthz":
        return 200, "text/plain; charset=utf-8", "ok\n"
    if method == "GET" and path == "/metrics":
        return 200, "text/plain; version=0.0.4", metrics_text(ctx)
    if method == "GET" and path in ("/mail/config-v1.1.xml",
                                     "/.well-known/autoconfig/mail/config-v1.1.xml"):
        email = parse_qs(url.query).get("emailaddress", [""])[0]
        domain = email.rpartition("@")[2] if "@" in email else ctx.hostname.partition(".")[2]
        return 200, "application/xml; charset=utf-8", thunderbird(ctx.config, domain or ctx.hostname)
    if method == "POST" and path.lower() == "/autodiscover/autodiscover.xml":
        m = _EMAIL.search(body.decode("utf-8", "replace"))
        if not m:
            return 400, "text/plain; charset=utf-8", "EMailAddress missing\n"
        return 200, "application/xml; charset=utf-8", autodiscover(ctx.config, m.group(1))
    if method not in ("GET", "POST", "HEAD"):
        return 405, "text/plain; charset=utf-8", "method not allowed\n"
    return 404, "text/plain; charset=utf-8", "not found\n"


def create(ctx: AppContext, listener: ListenerConfig) -> Handler:
    async def handle(conn: Connection) -> None:
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
                status, ctype, text = route(
                    ctx, request.method.decode(), request.target.decode("ascii", "replace"), body
                )
                await _send(conn, h, status, ctype, text)
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

    return handle


async def _send(conn: Connection, h: h11.Connection, status: int, ctype: str, text: str) -> None:
    payload = text.encode()
    try:
        data = h.send(h11.Response(status_code=status, headers=[
            ("Content-Type", ctype), ("Content-Length", str(len(payload))),
            ("Server", "Mailwright"),
        ]))
        data = (data or b"") + (h.send(h11.Data(data=payload)) or b"")
        data += h.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:
        return
    conn.writer.write(data)
    await conn.writer.drain()
