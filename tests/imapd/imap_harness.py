"""Test harness for IMAP session transcripts: a real store (SQLite or PostgreSQL, the test's
`backend` fixture), a real authenticator, and an in-memory byte pipe standing in for the socket
(the integration tests use real sockets)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.backends import SQLITE, Backend
from tests.support.listening import cheap_hash

from mailwright.accounts.authenticator import Authenticator
from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.imapd.session import Session, SessionConfig
from mailwright.store.api import Store

PASSWORD = "secret pw"


def password_hash() -> str:
    """A real argon2id hash of PASSWORD with small cost parameters (made once)."""
    return cheap_hash(PASSWORD)


class PipeTransport:
    """The session's end of an in-memory connection."""

    def __init__(self, *, loopback: bool = True, tls: bool = False) -> None:
        self.peer_ip = "127.0.0.1" if loopback else "192.0.2.7"
        self._tls = tls
        self._loopback = loopback
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.output = bytearray()
        self.written = asyncio.Event()

    @property
    def tls(self) -> bool:
        return self._tls

    @property
    def tls_available(self) -> bool:
        return False

    @property
    def is_loopback(self) -> bool:
        return self._loopback

    async def read(self) -> bytes:
        return await self.incoming.get()

    def write(self, data: bytes) -> None:
        self.output += data
        self.written.set()

    async def drain(self) -> None:
        await asyncio.sleep(0)

    async def start_tls(self, response: bytes) -> None:  # pragma: no cover - not used here
        raise RuntimeError("no TLS on a pipe")


class Client:
    """Drives one session: send bytes, read lines up to a tagged response."""

    def __init__(self, session: Session, transport: PipeTransport, *, split: int = 0) -> None:
        self.session = session
        self.t = transport
        self.split = split
        self.task = asyncio.ensure_future(session.run())
        self._pos = 0

    def send(self, data: bytes) -> None:
        if self.split:
            for i in range(0, len(data), self.split):
                self.t.incoming.put_nowait(data[i : i + self.split])
        else:
            self.t.incoming.put_nowait(data)

    async def read_until(self, pattern: bytes, timeout: float = 10.0) -> list[bytes]:
        """Lines (without CRLF) up to and including the first matching *pattern* (regex)."""
        rx = re.compile(pattern)

        async def wait() -> list[bytes]:
            while True:
                buf = bytes(self.t.output[self._pos :])
                lines = []
                pos = 0
                while True:
                    eol = buf.find(b"\r\n", pos)
                    if eol < 0:
                        break
                    line = buf[pos:eol]
                    pos = eol + 2
                    # literals: {n}\r\n<n bytes> belong to the line
                    m = re.search(rb"\{(\d+)\}$", line)
                    while m:
                        n = int(m.group(1))
                        if len(buf) < pos + n:
                            break
                        nxt = buf.find(b"\r\n", pos + n)
                        if nxt < 0:
                            break
                        line = line + b"\r\n" + buf[pos:nxt]
                        pos = nxt + 2
                        m = re.search(rb"\{(\d+)\}$", line)
                    lines.append(line)
                    if rx.match(line):
                        self._pos += pos
                        return lines
                self.t.written.clear()
                if self.task.done():
                    raise AssertionError(f"session ended; output so far: {lines!r}")
                await self.t.written.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def read_line(self, timeout: float = 10.0) -> bytes:
        """The next raw CRLF-terminated line (literal contents are not joined)."""

        async def wait() -> bytes:
            while True:
                eol = self.t.output.find(b"\r\n", self._pos)
                if eol >= 0:
                    line = bytes(self.t.output[self._pos : eol])
                    self._pos = eol + 2
                    return line
                self.t.written.clear()
                if self.task.done():
                    raise AssertionError("session ended")
                await self.t.written.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def greeting(self) -> bytes:
        return (await self.read_until(rb"\* OK"))[-1]

    async def cmd(self, line: str | bytes, tag: str | None = None) -> list[bytes]:
        data = line.encode() if isinstance(line, str) else line
        tag = tag or data.split(b" ", 1)[0].decode()
        self.send(data + b"\r\n")
        return await self.read_until(re.escape(tag.encode()) + rb" (OK|NO|BAD)")

    async def login(self, user: str = "alice@example.test") -> None:
        await self.greeting()
        out = await self.cmd(f'L1 LOGIN {user} "{PASSWORD}"')
        assert out[-1].startswith(b"L1 OK"), out

    async def close(self) -> None:
        if not self.task.done():
            self.t.incoming.put_nowait(b"")
            try:
                await asyncio.wait_for(self.task, 5)
            except Exception:  # noqa: BLE001
                self.task.cancel()


class Server:
    def __init__(self, store: Store, config: SessionConfig | None = None) -> None:
        self.store = store
        self.auth = Authenticator(store, base_delay=0.0, max_delay=0.0)
        self.config = config or SessionConfig(hostname="imap.example.test")
        self.clients: list[Client] = []
        self.closing = asyncio.Event()

    def client(self, *, loopback: bool = True, split: int = 0, tls: bool = False) -> Client:
        t = PipeTransport(loopback=loopback, tls=tls)
        session = Session(t, self.store, self.auth, self.config, closing=self.closing)
        c = Client(session, t, split=split)
        self.clients.append(c)
        return c

    async def connected(self, user: str = "alice@example.test", split: int = 0) -> Client:
        c = self.client(split=split)
        await c.login(user)
        return c

    async def add_user(self, address: str = "alice@example.test") -> int:
        domain = address.rpartition("@")[2]
        if not await self.store.has_domain(domain):
            await self.store.add_domain(domain)
        return (await self.store.add_account(address, password_hash())).id

    async def deliver(self, account_id: int, data: bytes, mailbox: str = "INBOX",
                      flags: tuple[str, ...] = ()) -> int:
        from mailwright.store.api import DeliveryTarget

        w = self.store.blob_writer()
        w.write(data)
        blob = await w.finish()
        [rec] = await self.store.deliver(blob, [DeliveryTarget(account_id, mailbox, frozenset(flags))])
        return rec.uid


@asynccontextmanager
async def imap_server(tmp_path: Path, backend: Backend = SQLITE) -> AsyncIterator[Server]:
    from mailwright.store import meta_parser

    store = backend.new_store(tmp_path / "data", meta_parser=meta_parser())
    await store.open()
    srv = Server(store)
    try:
        yield srv
    finally:
        for c in srv.clients:
            await c.close()
        await store.close()


def message(n: int, subject: str | None = None, body: str = "hello") -> bytes:
    subject = subject or f"message {n}"
    return (
        f"From: Sender {n} <sender{n}@example.test>\r\n"
        f"To: alice@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 0{1 + n % 9} Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <m{n}@example.test>\r\n"
        f"\r\n"
        f"{body} {n}\r\n"
    ).encode()


# -- transcript files (tests/imapd/transcripts/*.txt) ----------------------------------------

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"


def transcript_blocks(path: Path) -> list[tuple[list[str], list[str]]]:
    """[(client lines, expected server lines)] in order; a file starts with server lines."""
    blocks: list[tuple[list[str], list[str]]] = []
    client: list[str] = []
    server: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw or raw.startswith("#"):
            continue
        kind, _, text = raw.partition(": ")
        if kind == "C":
            if server:
                blocks.append((client, server))
                client, server = [], []
            client.append(text)
        elif kind == "S":
            server.append(text)
        else:
            raise ValueError(f"{path.name}: bad line {raw!r}")
    if client or server:
        blocks.append((client, server))
    return blocks


def line_matches(expected: str, got: bytes) -> bool:
    """Exact, except that ``...`` matches anything."""
    parts = [re.escape(p.encode()) for p in expected.split("...")]
    return re.fullmatch(b".*".join(parts), got, re.DOTALL) is not None


async def replay(
    path: Path,
    send: Callable[[bytes], Awaitable[None]],
    read_line: Callable[[], Awaitable[bytes]],
    values: dict[str, str],
    *,
    greeting_wildcard: bool = False,
) -> None:
    """Send each block of client lines, then check the expected server lines one by one.

    ``greeting_wildcard``: the greeting's and CAPABILITY's capability lists depend on the
    listener (STARTTLS when a certificate is configured), so only their start is checked."""
    for n, (client, server) in enumerate(transcript_blocks(path)):
        if greeting_wildcard:
            server = [
                re.sub(r"CAPABILITY IMAP4rev1 .*?(\]|$)", r"CAPABILITY IMAP4rev1 ...\1", w)
                if n <= 1 or "CAPABILITY" in w
                else w
                for w in server
            ]
        if client:
            data = "".join(_fill(c, values) + "\r\n" for c in client).encode()
            await send(data)
        for want in server:
            got = await read_line()
            assert line_matches(_fill(want, values), got), (
                f"{path.name}: after {client!r}\nexpected {_fill(want, values)!r}\n     got {got!r}"
            )


def _fill(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace("{" + k + "}", v)
    return text
