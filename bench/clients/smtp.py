"""A small SMTP client: just what the load generator sends, with no pipelining.

Every server gets the same conversation: EHLO, then MAIL, RCPT..., DATA per message.
"""

from __future__ import annotations

import asyncio


class SmtpError(Exception):
    pass


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2: double a leading dot; the message must end with CRLF."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


class SmtpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, helo: str = "loadgen.example.test") -> SmtpClient:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        c = cls(reader, writer)
        await c.expect(220)
        await c.command(b"EHLO " + helo.encode(), 250)
        return c

    async def reply(self) -> tuple[int, bytes]:
        lines: list[bytes] = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise SmtpError("connection closed by server")
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), b"".join(lines)

    async def expect(self, code: int) -> bytes:
        got, text = await self.reply()
        if got // 100 != code // 100:
            raise SmtpError(f"expected {code}, got {text!r}")
        return text

    async def command(self, line: bytes, code: int) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.expect(code)

    async def send(self, mail_from: str, rcpts: list[str], stuffed: bytes) -> bytes:
        """One transaction; ``stuffed`` is already dot-stuffed (see ``dot_stuff``)."""
        await self.command(f"MAIL FROM:<{mail_from}>".encode(), 250)
        for r in rcpts:
            await self.command(f"RCPT TO:<{r}>".encode(), 250)
        await self.command(b"DATA", 354)
        self.writer.write(stuffed + b".\r\n")
        return await self.expect(250)

    async def quit(self) -> None:
        try:
            await self.command(b"QUIT", 221)
        except (SmtpError, OSError):
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
