"""A small IMAP4rev1/rev2 client: tagged commands, literals both ways, IDLE.

Answers are kept as raw byte lines (a literal is joined to the line that announced it); the
load generator only needs to count, find a UID or a status, never to parse deeply.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]", re.I)


class ImapError(Exception):
    pass


@dataclass(slots=True)
class Answer:
    status: bytes
    tagged: bytes
    untagged: list[bytes] = field(default_factory=list)


class ImapClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._n = 0
        self.capabilities = b""

    @classmethod
    async def connect(cls, host: str, port: int, source: str | None = None) -> ImapClient:
        local = (source, 0) if source else None
        reader, writer = await asyncio.open_connection(host, port, limit=64 << 20,
                                                       local_addr=local)
        c = cls(reader, writer)
        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise ImapError(f"bad greeting {greeting!r}")
        return c

    def _tag(self) -> bytes:
        self._n += 1
        return b"A%04d" % self._n

    async def _item(self) -> bytes:
        """One response line with its literals inlined."""
        line = await self.reader.readline()
        if not line:
            raise ImapError("connection closed by server")
        parts = [line]
        while (m := _LITERAL.search(line)) is not None:
            parts.append(await self.reader.readexactly(int(m.group(1))))
            line = await self.reader.readline()
            parts.append(line)
        return b"".join(parts)

    async def _finish(self, tag: bytes, ok: bool = True) -> Answer:
        untagged: list[bytes] = []
        while True:
            item = await self._item()
            if item.startswith(tag + b" "):
                status = item[len(tag) + 1 :].split(b" ", 1)[0].upper()
                if ok and status != b"OK":
                    raise ImapError(f"{item!r}")
                return Answer(status, item, untagged)
            untagged.append(item)

    async def command(self, cmd: bytes, literal: bytes | None = None, ok: bool = True) -> Answer:
        tag = self._tag()
        if literal is None:
            self.writer.write(tag + b" " + cmd + b"\r\n")
            return await self._finish(tag, ok)
        self.writer.write(tag + b" " + cmd + b" {%d}\r\n" % len(literal))
        cont = await self._item()
        if not cont.startswith(b"+"):
            raise ImapError(f"no continuation for literal: {cont!r}")
        self.writer.write(literal + b"\r\n")
        return await self._finish(tag, ok)

    async def bulk(self, cmd: bytes) -> int:
        """A command whose answer has no literal (e.g. ``UID FETCH 1:* (FLAGS)``).

        Reads raw buffers and only looks for the tagged line, so that the client's cost does
        not grow with a per-line parse; returns the number of untagged lines.
        """
        tag = self._tag()
        self.writer.write(tag + b" " + cmd + b"\r\n")
        buf = bytearray()
        while True:
            chunk = await self.reader.read(1 << 20)
            if not chunk:
                raise ImapError("connection closed by server")
            buf += chunk
            if not buf.endswith(b"\r\n"):
                continue
            prev = buf.rfind(b"\r\n", 0, len(buf) - 2)
            last = bytes(buf[prev + 2 :])
            if last.startswith(tag + b" "):
                if not last[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise ImapError(f"{last[:300]!r}")
                return buf.count(b"\r\n") - 1

    async def login(self, user: str, password: str) -> None:
        ans = await self.command(b"LOGIN " + _astring(user) + b" " + _astring(password))
        if b"[CAPABILITY" in ans.tagged.upper():
            self.capabilities = ans.tagged.upper()
        else:
            caps = await self.command(b"CAPABILITY")
            self.capabilities = b" ".join(caps.untagged).upper()

    async def append(self, mailbox: str, data: bytes, flags: str = "",
                     ok: bool = True) -> tuple[Answer, int | None]:
        """APPEND; and the new UID when the server answers APPENDUID (RFC 4315)."""
        cmd = b"APPEND " + _astring(mailbox) + (b" (" + flags.encode() + b")" if flags else b"")
        ans = await self.command(cmd, literal=data, ok=ok)
        m = _APPENDUID.search(ans.tagged)
        return ans, (int(m.group(1)) if m else None)

    async def idle_start(self) -> None:
        """RFC 2177: IDLE, then wait for the continuation request."""
        tag = self._tag()
        self._idle_tag = tag
        self.writer.write(tag + b" IDLE\r\n")
        while True:
            item = await self._item()
            if item.startswith(b"+"):
                return
            if item.startswith(tag + b" "):
                raise ImapError(f"IDLE refused: {item!r}")

    async def logout(self) -> None:
        try:
            await self.command(b"LOGOUT", ok=False)
        except (ImapError, OSError, asyncio.IncompleteReadError):
            pass
        self.close()

    def close(self) -> None:
        self.writer.close()


def _astring(s: str) -> bytes:
    b = s.encode()
    if b and all(33 < c < 127 and c not in b'(){%*"\\]' for c in b):
        return b
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
