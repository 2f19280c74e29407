"""A small HTTPS/1.1 client for MTA-STS policies (RFC 8461 3.3) and TLS-RPT POSTs (RFC 8460 3).

Why not urllib: the host name must be resolved through our resolver (the one the queue uses,
a test zone in tests), the whole exchange needs one deadline, the body a hard size bound, and
redirects must not be followed (RFC 8461 3.3). Everything else of HTTP is left out on purpose.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailwright.dns.resolver import DNSError, Resolver

__all__ = ["HTTPError", "HTTPResponse", "request"]


class HTTPError(Exception):
    """The request could not be made or its answer could not be read. ``tls`` when the TLS
    handshake itself failed (RFC 8460 4.3's sts-webpki-invalid rather than a fetch error)."""

    def __init__(self, text: str, *, tls: bool = False) -> None:
        super().__init__(text)
        self.tls = tls


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes


async def request(
    url: str,
    *,
    resolver: Resolver,
    context: ssl.SSLContext,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    max_size: int = 64 * 1024,
    port: int | None = None,
) -> HTTPResponse:
    """One HTTPS request; ``port`` overrides the URL's (tests run on loopback ports)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise HTTPError(f"not an https URL: {url!r}")
    host = parts.hostname
    target_port = port or parts.port or 443
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        async with asyncio.timeout(timeout):
            try:
                addresses = await resolver.ip(host)
            except DNSError as exc:
                raise HTTPError(f"cannot resolve {host}: {exc.reason}") from exc
            reader, writer = await _connect(addresses, target_port, context, host)
            try:
                head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close",
                        "User-Agent: mailwright"]
                for name, value in (headers or {}).items():
                    head.append(f"{name}: {value}")
                if method != "GET":
                    head.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body)
                await writer.drain()
                return await _read_response(reader, max_size)
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except (OSError, ssl.SSLError):
                    pass
    except TimeoutError as exc:
        raise HTTPError(f"{url}: timed out after {timeout:g}s") from exc


async def _connect(addresses: Sequence[object], port: int, context: ssl.SSLContext,
                   host: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    last: Exception | None = None
    for address in addresses:
        try:
            return await asyncio.open_connection(str(address), port, ssl=context,
                                                 server_hostname=host)
        except ssl.SSLError as exc:
            raise HTTPError(f"TLS with {host} [{address}]:{port} failed: {exc}", tls=True) from exc
        except OSError as exc:
            last = exc
    raise HTTPError(f"cannot connect to {host}:{port}: {last}")


async def _read_response(reader: asyncio.StreamReader, max_size: int) -> HTTPResponse:
    try:
        status_line = await reader.readuntil(b"\r\n")
        fields: dict[str, str] = {}
        total = len(status_line)
        while True:
            line = await reader.readuntil(b"\r\n")
            total += len(line)
            if total > 16 * 1024:
                raise HTTPError("response header too long")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        words = status_line.decode("latin-1").split(" ", 2)
        if len(words) < 2 or not words[0].startswith("HTTP/1.") or not words[1].isdigit():
            raise HTTPError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(words[1])
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader, max_size)
        elif "content-length" in fields:
            length = int(fields["content-length"])
            if length > max_size:
                raise HTTPError(f"body of {length} octets is over the {max_size} limit")
            body = await reader.readexactly(length)
        else:
            body = await reader.read(max_size + 1)
            if len(body) > max_size:
                raise HTTPError(f"body over the {max_size} octet limit")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise HTTPError(f"malformed HTTP response ({type(exc).__name__})") from exc
    except (OSError, ssl.SSLError) as exc:
        raise HTTPError(f"read failed: {exc}") from exc
    return HTTPResponse(status, fields, body)


async def _read_chunked(reader: asyncio.StreamReader, max_size: int) -> bytes:
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return body
        if len(body) + size > max_size:
            raise HTTPError(f"body over the {max_size} octet limit")
        body += await reader.readexactly(size)
        await reader.readexactly(2)
