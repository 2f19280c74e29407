"""A raw SMTP client over a real socket, for the spam tests: it may talk out of turn."""

from __future__ import annotations

import asyncio


class RawSMTP:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, early: bytes = b"") -> RawSMTP:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if early:
            writer.write(early)
            await writer.drain()
        return cls(reader, writer)

    async def reply(self) -> str:
        """One whole reply, its lines joined by newlines."""
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 30)).decode().rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    async def cmd(self, line: str) -> str:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def send_message(self, sender: str, rcpts: list[str], data: bytes) -> list[str]:
        out = [await self.cmd(f"MAIL FROM:<{sender}>")]
        out += [await self.cmd(f"RCPT TO:<{r}>") for r in rcpts]
        out.append(await self.cmd("DATA"))
        if out[-1].startswith("354"):
            self.writer.write(data.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
            await self.writer.drain()
            out.append(await self.reply())
        return out

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
