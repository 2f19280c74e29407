"""Small line clients over real sockets, bound to a chosen loopback source address.

Linux answers for the whole of 127.0.0.0/8, so each test can act as several client addresses
(the authenticator's bans and the rate limiter are per address) without any network setup.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import urllib.request


def no_verify() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class LineClient:
    """A blocking line-oriented client (IMAP/POP3/SMTP) from `source`."""

    def __init__(self, port: int, source: str = "127.0.0.1", *, tls: bool = False,
                 timeout: float = 60.0) -> None:  # fmt: skip
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                        source_address=(source, 0))  # fmt: skip
        if tls:
            sock = no_verify().wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.file = sock.makefile("rb")

    def line(self) -> bytes:
        return self.file.readline(1 << 20)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def tagged(self, tag: bytes) -> list[bytes]:
        """IMAP: lines up to and including the tagged answer to `tag` (EOF ends it too)."""
        lines: list[bytes] = []
        while True:
            line = self.line()
            if not line:
                return lines
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def closed_by_peer(self) -> bool:
        """True when the server hangs up (reads EOF, ignoring what it says before)."""
        try:
            while self.line():
                pass
        except OSError:
            pass
        return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def imap_login(port: int, source: str, user: str, password: str) -> tuple[bytes, list[bytes]]:
    """(greeting, LOGIN answer lines); the answer is empty when the greeting was a BYE."""
    c = LineClient(port, source)
    try:
        greeting = c.line()
        if not greeting.startswith(b"* OK"):
            return greeting, []
        c.send(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
        return greeting, c.tagged(b"a")
    finally:
        c.close()


def _plain(user: str, password: str) -> bytes:
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())


def imap_authenticate(
    port: int, source: str, user: str, password: str
) -> tuple[bytes, list[bytes]]:
    """As `imap_login`, with AUTHENTICATE PLAIN and an initial response (RFC 4959)."""
    c = LineClient(port, source)
    try:
        greeting = c.line()
        if not greeting.startswith(b"* OK"):
            return greeting, []
        c.send(b"a AUTHENTICATE PLAIN " + _plain(user, password) + b"\r\n")
        return greeting, c.tagged(b"a")
    finally:
        c.close()


def pop3_auth(port: int, source: str, user: str, password: str) -> tuple[bytes, bytes]:
    """As `pop3_login`, with AUTH PLAIN and an initial response (RFC 5034)."""
    c = LineClient(port, source)
    try:
        greeting = c.line()
        if not greeting.startswith(b"+OK"):
            return greeting, b""
        c.send(b"AUTH PLAIN " + _plain(user, password) + b"\r\n")
        return greeting, c.line()
    finally:
        c.close()


def pop3_login(port: int, source: str, user: str, password: str) -> tuple[bytes, bytes]:
    """(greeting, answer to PASS); the answer is empty when the greeting was an -ERR."""
    c = LineClient(port, source)
    try:
        greeting = c.line()
        if not greeting.startswith(b"+OK"):
            return greeting, b""
        c.send(b"USER %s\r\n" % user.encode())
        c.line()
        c.send(b"PASS %s\r\n" % password.encode())
        return greeting, c.line()
    finally:
        c.close()


def smtp_auth(port: int, source: str, user: str, password: str) -> tuple[bytes, bytes]:
    """(greeting, answer to AUTH PLAIN) over implicit TLS (the `submissions` port)."""
    c = LineClient(port, source, tls=True)
    try:
        greeting = c.line()
        if not greeting.startswith(b"220"):
            return greeting, b""
        c.send(b"EHLO client.test\r\n")
        while c.line().startswith(b"250-"):
            pass
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        c.send(b"AUTH PLAIN " + token + b"\r\n")
        return greeting, c.line()
    finally:
        c.close()


def metrics(http_port: int) -> dict[str, float]:
    """The Prometheus counters of the server's http listener (read from 127.0.0.1)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r"^(mailwright_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out
