"""A small HTTPS client for the web interface's tests below the browser: one connection per
request, the cookies kept (Secure ones included: it speaks TLS), redirects not followed, and
the CSRF token of the last page remembered for the next form."""

from __future__ import annotations

import http.client
import re
import ssl
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from tests.support.server import PASSWORD, MailwrightServer

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class WebClient:
    server: MailwrightServer
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port("https"), context=ctx,
                                           timeout=60)
        sent = {"Host": f"127.0.0.1:{self.server.port('https')}", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            r = conn.getresponse()
            # a Server-Sent Events stream never ends: its headers are the answer
            streaming = (r.getheader("content-type") or "").startswith("text/event-stream")
            body = "" if streaming else r.read().decode("utf-8", "replace")
            reply = Reply(r.status, r.getheaders(), body)
        finally:
            conn.close()
        for value in reply.all("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(value)
            for k, m in jar.items():
                if m["max-age"] == "0":
                    self.cookies.pop(k, None)
                else:
                    self.cookies[k] = m.value
        if m := _CSRF.search(reply.body):
            self.csrf = m.group(1)
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str], *, csrf: bool = True,
             headers: dict[str, str] | None = None) -> Reply:
        data = {**fields, "csrf": self.csrf} if csrf else dict(fields)
        return self.request("POST", path, urlencode(data).encode(), {
            "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def sign_in(self, address: str, password: str = PASSWORD) -> Reply:
        self.get("/signin")
        return self.post("/signin", {"email": address, "password": password})
