"""A small scripted SMTP server on loopback: the foreign peer for outbound tests.

It speaks enough RFC 5321 to receive mail (EHLO/HELO, STARTTLS, MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT), announces whatever capabilities a test gives it, and answers
MAIL/RCPT/DATA through functions the test supplies, so tests can make it refuse, defer or
disappear at any step. Everything it hears is kept in ``transcript`` and ``messages``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ReceivedMessage:
    mail_line: str
    rcpt_lines: list[str]
    data: bytes
    tls: bool


@dataclass
class Peer:
    host: str = "127.0.0.1"
    port: int = 0
    greeting: str = "220 peer.test ESMTP"
    capabilities: tuple[str, ...] = ("PIPELINING", "8BITMIME", "SIZE 100000", "DSN",
                                     "ENHANCEDSTATUSCODES", "SMTPUTF8")
    ehlo: bool = True
    ssl_context: ssl.SSLContext | None = None
    mail: Callable[[str], str] = lambda line: "250 2.1.0 ok"
    rcpt: Callable[[str], str] = lambda line: "250 2.1.5 ok"
    data_reply: Callable[[bytes], str] = lambda data: "250 2.0.0 queued"
    drop_after_data: bool = False
    broken_tls: bool = False  # answer 220 to STARTTLS, then send garbage instead of TLS
    transcript: list[str] = field(default_factory=list)
    messages: list[ReceivedMessage] = field(default_factory=list)
    connections: int = 0
    active: int = 0
    max_active: int = 0  # the most connections open at once
    data_delay: float = 0.0  # hold the final reply this long (lets connections overlap)
    on_final_dot: Callable[[], None] | None = None  # called as the final dot arrives
    _server: asyncio.Server | None = None

    async def start(self) -> Peer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> Peer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        tls = False
        mail_line = ""
        rcpts: list[str] = []

        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            await say(self.greeting)
            if not self.greeting.startswith("220"):
                return
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.transcript.append(line)
                verb = line.split(" ", 1)[0].upper()
                if verb == "EHLO" and self.ehlo:
                    caps = list(self.capabilities)
                    if self.ssl_context is not None and not tls:
                        caps.append("STARTTLS")
                    lines = ["peer.test hello", *caps]
                    for i, text in enumerate(lines):
                        sep = " " if i == len(lines) - 1 else "-"
                        writer.write(f"250{sep}{text}\r\n".encode())
                    await writer.drain()
                elif verb == "HELO":
                    await say("250 peer.test")
                elif verb == "STARTTLS" and self.ssl_context is not None and not tls:
                    await say("220 2.0.0 go ahead")
                    if self.broken_tls:
                        writer.write(b"this is not a TLS ServerHello\r\n" * 4)
                        await writer.drain()
                        return
                    await writer.start_tls(self.ssl_context)
                    tls = True
                elif verb == "MAIL":
                    reply = self.mail(line)
                    if reply.startswith("2"):
                        mail_line, rcpts = line, []
                    await say(reply)
                elif verb == "RCPT":
                    if not mail_line:
                        await say("503 5.5.1 MAIL first")
                        continue
                    reply = self.rcpt(line)
                    if reply.startswith("2"):
                        rcpts.append(line)
                    await say(reply)
                elif verb == "DATA":
                    if not rcpts:
                        await say("554 5.5.1 no valid recipients")
                        continue
                    await say("354 go ahead")
                    data = b""
                    while True:
                        chunk = await reader.readline()
                        if not chunk:
                            return
                        if chunk == b".\r\n":
                            break
                        if chunk.startswith(b"."):
                            chunk = chunk[1:]
                        data += chunk
                    if self.on_final_dot is not None:
                        self.on_final_dot()
                    if self.drop_after_data:
                        return
                    if self.data_delay:
                        await asyncio.sleep(self.data_delay)
                    reply = self.data_reply(data)
                    if reply.startswith("2"):
                        self.messages.append(ReceivedMessage(mail_line, rcpts, data, tls))
                    mail_line, rcpts = "", []
                    await say(reply)
                elif verb == "RSET":
                    mail_line, rcpts = "", []
                    await say("250 2.0.0 ok")
                elif verb == "NOOP":
                    await say("250 2.0.0 ok")
                elif verb == "QUIT":
                    await say("221 2.0.0 bye")
                    return
                else:
                    await say("502 5.5.2 command not recognised")
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            self.active -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
