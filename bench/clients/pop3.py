"""A small POP3 client (RFC 1939) reading multi-line answers in one buffer scan."""

from __future__ import annotations

import asyncio


class Pop3Error(Exception):
    pass


class Pop3Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> Pop3Client:
        reader, writer = await asyncio.open_connection(host, port, limit=64 << 20)
        c = cls(reader, writer)
        await c.line()
        return c

    async def line(self) -> bytes:
        got = await self.reader.readline()
        if not got.startswith(b"+OK"):
            raise Pop3Error(f"unexpected answer {got[:200]!r}")
        return got

    async def simple(self, cmd: bytes) -> bytes:
        self.writer.write(cmd + b"\r\n")
        return await self.line()

    async def multi(self, cmd: bytes) -> bytes:
        """A multi-line answer (RFC 1939 3): everything up to CRLF.CRLF, still stuffed."""
        self.writer.write(cmd + b"\r\n")
        data = await self.line()
        while True:
            data += await self.reader.readuntil(b".\r\n")
            if data.endswith(b"\r\n.\r\n"):
                return data

    async def login(self, user: str, password: str) -> None:
        await self.simple(b"USER " + user.encode())
        await self.simple(b"PASS " + password.encode())

    async def quit(self) -> None:
        try:
            await self.simple(b"QUIT")
        except (Pop3Error, OSError, asyncio.IncompleteReadError):
            pass
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
