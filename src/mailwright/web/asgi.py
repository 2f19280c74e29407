"""HTTP/1.1 connections of the `https` listener handed to an ASGI application.

The listener keeps what `net` gives every connection (accept counting, TLS, the PROXY header's
client address, budgets); h11 frames the requests (sans-I/O), and this module only translates
its events into the ASGI 3 HTTP interface (asgiref's "HTTP & WebSocket" spec, version 2.3):

* the request head is bounded by h11 (`MAX_HEAD`), the body by `max_body`: a larger one is
  answered 413 (Content-Length known) or cut off and answered 413 when it grows past it, and is
  passed to the application in chunks as it arrives, so an upload is never held whole in memory
  here (Starlette spools multipart files to disk);
* an idle connection, or a client that stops sending in the middle of a request, is closed
  after `idle_timeout` (`[web] idle_timeout`, default `IDLE_TIMEOUT`);
* `http.disconnect` is reported once the client hangs up while a response streams (Server-Sent
  Events), by reading the socket in the background after the body has been received;
* an application error before the response started is a 500 and a logged traceback, never a
  traceback sent to the client; after it started, the connection is closed.

One request at a time per connection (no pipelining in parallel), as HTTP/1.1 requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import h11

if TYPE_CHECKING:
    from mailwright.net.server import Connection

log = logging.getLogger("mailwright.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_HEAD = 64 * 1024
IDLE_TIMEOUT = 30.0
READ_SIZE = 65536


class _ClientGone(Exception):
    """The client closed the connection or stopped sending."""


class _BodyTooLarge(Exception):
    pass


async def serve_asgi(conn: Connection, app: ASGIApp, *, max_body: int,
                     idle_timeout: float = IDLE_TIMEOUT) -> None:
    """Serve HTTP/1.1 requests on one connection with `app` until either side closes."""
    h = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    while True:
        try:
            event = await _next_event(conn, h, idle_timeout)
        except h11.RemoteProtocolError as e:
            await _simple(conn, h, e.error_status_hint or 400, b"bad request\n")
            return
        except _ClientGone:
            return
        if isinstance(event, h11.Request):
            keep = await _one_request(conn, h, event, app, max_body, idle_timeout)
            if not keep or h.our_state is h11.MUST_CLOSE or conn.closing.is_set():
                return
            try:
                h.start_next_cycle()
            except h11.LocalProtocolError:
                return
        else:  # ConnectionClosed, or anything unexpected between requests
            return


async def _next_event(conn: Connection, h: h11.Connection, timeout: float) -> Any:
    while True:
        event = h.next_event()
        if event is not h11.NEED_DATA:
            return event
        between_requests = h.their_state is h11.IDLE and not h.trailing_data[0]
        try:
            if between_requests:
                data = await _read_unless_closing(conn, timeout)
            else:
                data = await asyncio.wait_for(conn.reader.read(READ_SIZE), timeout)
        except (TimeoutError, ConnectionError, OSError) as e:
            raise _ClientGone from e
        if not data:
            if h.their_state is h11.IDLE or h.their_state is h11.DONE:
                raise _ClientGone
            h.receive_data(b"")
            continue
        h.receive_data(data)


async def _read_unless_closing(conn: Connection, timeout: float) -> bytes:
    """The next bytes of an idle keep-alive connection, or b"" once the server is shutting
    down: a browser's idle connection must not hold up a graceful stop."""
    if conn.closing.is_set():
        return b""
    read = asyncio.ensure_future(conn.reader.read(READ_SIZE))
    closing = asyncio.ensure_future(conn.closing.wait())
    try:
        done, _ = await asyncio.wait({read, closing}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        closing.cancel()
    if read in done:
        return read.result()
    read.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
        await read
    if not done:
        raise TimeoutError
    return b""


def _scope(conn: Connection, req: h11.Request) -> Scope:
    target = req.target
    path_b, _, query = target.partition(b"?")
    raw_path = path_b
    path = unquote_to_bytes(path_b).decode("utf-8", "replace")
    host = conn.local_ip
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": req.http_version.decode("ascii"),
        "method": req.method.decode("ascii", "replace"),
        "scheme": "https" if conn.tls else "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in req.headers],
        "client": (conn.peer_ip, conn.peer_port),
        "server": (host, conn.local_port),
        "state": {},
    }


async def _one_request(conn: Connection, h: h11.Connection, req: h11.Request, app: ASGIApp,
                       max_body: int, timeout: float) -> bool:
    """Run `app` on one request; whether the connection may carry another."""
    scope = _scope(conn, req)
    head_only = scope["method"] == "HEAD"
    declared = next((v for k, v in req.headers if k == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        await _simple(conn, h, 413, b"request too large\n")
        return False
    received = 0
    body_done = False
    disconnected = asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    started = False
    finished = False
    status = 0

    async def watch() -> None:
        # After the body: the next bytes are a pipelined request (kept for h11) or the end.
        try:
            while True:
                data = await conn.reader.read(READ_SIZE)
                if not data:
                    break
                h.receive_data(data)
        except (ConnectionError, OSError, RuntimeError):
            pass
        disconnected.set()

    async def receive() -> Message:
        nonlocal received, body_done, watcher
        if not body_done:
            try:
                event = await _next_event(conn, h, timeout)
            except (h11.RemoteProtocolError, _ClientGone):
                disconnected.set()
                return {"type": "http.disconnect"}
            if isinstance(event, h11.Data):
                received += len(event.data)
                if received > max_body:
                    raise _BodyTooLarge
                return {"type": "http.request", "body": bytes(event.data), "more_body": True}
            if not isinstance(event, h11.EndOfMessage):
                disconnected.set()
                return {"type": "http.disconnect"}
            body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if watcher is None:
            watcher = asyncio.create_task(watch())
        # A response that streams until the client leaves (Server-Sent Events) ends when the
        # server stops too: a browser tab left open must not hold up a graceful stop.
        gone = asyncio.ensure_future(disconnected.wait())
        stopping = asyncio.ensure_future(conn.closing.wait())
        try:
            await asyncio.wait({gone, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            stopping.cancel()
        disconnected.set()
        return {"type": "http.disconnect"}

    pending: list[tuple[bytes, bytes]] = []

    async def send(message: Message) -> None:
        nonlocal started, finished, status
        if disconnected.is_set():
            raise OSError("client disconnected")
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            pending[:] = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            return
        if kind != "http.response.body" or finished:
            return
        data = b""
        if not started:
            started = True
            headers = [*pending, (b"server", b"Mailwright")]
            data = h.send(h11.Response(status_code=status, headers=headers,
                                       reason=_reason(status))) or b""
        body = bytes(message.get("body", b""))
        if body and not head_only:
            data += h.send(h11.Data(data=body)) or b""
        if not message.get("more_body", False):
            finished = True
            data += h.send(h11.EndOfMessage()) or b""
        conn.writer.write(data)
        await conn.writer.drain()

    try:
        await app(scope, receive, send)
    except _BodyTooLarge:
        if not started:
            await _simple(conn, h, 413, b"request too large\n")
        return False
    except (ConnectionError, OSError):
        return False
    except Exception:
        log.exception("web request failed: %s %s", scope["method"], scope["path"])
        if not started:
            await _simple(conn, h, 500, b"internal error\n")
        return False
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    conn.result = str(status)
    if not body_done and not disconnected.is_set():
        # The application did not read the body (a GET has none): what h11 already holds is
        # skipped; a body still on its way means the connection cannot carry another request.
        try:
            while (event := h.next_event()) is not h11.NEED_DATA and isinstance(event, h11.Data):
                pass
            body_done = isinstance(event, h11.EndOfMessage)
        except h11.RemoteProtocolError:
            return False
    # Not reusable when the application answered without reading the whole body, or the
    # client went away.
    return finished and body_done and not disconnected.is_set()


async def _simple(conn: Connection, h: h11.Connection, status: int, text: bytes) -> None:
    """A plain-text answer (errors of our own), and the connection ends after it."""
    conn.result = str(status)
    try:
        data = h.send(h11.Response(status_code=status, reason=_reason(status), headers=[
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(text)).encode()),
            (b"connection", b"close"), (b"server", b"Mailwright")]))
        data = (data or b"") + (h.send(h11.Data(data=text)) or b"") + (
            h.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError:
        return
    with contextlib.suppress(ConnectionError, OSError):
        conn.writer.write(data)
        await conn.writer.drain()


def _reason(status: int) -> bytes:
    # RFC 9112 4: the reason phrase is for humans; give the registered one.
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""
