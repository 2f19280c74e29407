"""IMAP sessions hibernated in IDLE (imapd/hibernate.py), over real sockets: what wakes them,
what they report, how they end, and what one of them costs.

Every test first waits until the server says the session is hibernated (`Home.hibernated`), so
each checks the hibernated path itself, not the awake IDLE loop."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import smtplib
import socket
import ssl
import tracemalloc
import weakref
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailwright.app import AppContext, handler_for
from mailwright.config import ListenerConfig
from mailwright.imapd.hibernate import Home, IdleWheel
from mailwright.net.server import Handler
from mailwright.workers.channel import WorkerChannel, fan_out, socket_pair
from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server
from tests.support.backends import Backend
from tests.support.listening import cheap_hash, listener, start_listeners, write_config

USER = "alice@example.test"
LIMIT = 20.0  # seconds: a bound against hanging, never a timing assertion


def message(n: int) -> bytes:
    return (b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: m%d\r\n"
            b"Message-ID: <m%d@remote.test>\r\n\r\nbody %d\r\n" % (n, n, n))


class Client:
    """A small IMAP client on asyncio streams; with COMPRESS=DEFLATE once `compress()`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.deflate: Any = None
        self.inflate: Any = None

    @classmethod
    async def open(cls, host: str, port: int, tls: ssl.SSLContext | None = None) -> Client:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        c = cls(reader, writer)
        assert (await c.line()).startswith(b"* OK")
        return c

    def send(self, data: bytes) -> None:
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.writer.write(data)

    async def line(self) -> bytes:
        async with asyncio.timeout(LIMIT):
            while b"\r\n" not in self.buf:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError(self.buf)
                self.buf += self.inflate.decompress(data) if self.inflate is not None else data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    async def cmd(self, tag: str, text: str | bytes) -> list[bytes]:
        data = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + data + b"\r\n")
        out = []
        while True:
            line = await self.line()
            out.append(line)
            if line.startswith(tag.encode() + b" "):
                return out

    async def login(self, *enable: str) -> None:
        assert (await self.cmd("l", f'LOGIN {USER} "{PASSWORD}"'))[-1].startswith(b"l OK")
        if enable:
            await self.cmd("e", "ENABLE " + " ".join(enable))

    async def compress(self) -> None:
        assert await self.cmd("z", "COMPRESS DEFLATE") == [b"z OK DEFLATE active"]
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)

    async def idle(self) -> None:
        self.send(b"i IDLE\r\n")
        assert (await self.line()).startswith(b"+ ")

    async def done(self) -> list[bytes]:
        self.send(b"DONE\r\n")
        out = []
        while not (line := await self.line()).startswith(b"i "):
            out.append(line)
        assert line == b"i OK IDLE terminated", line
        return out

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def until(predicate: Any) -> None:
    """Wait until *predicate()* holds (bounded by LIMIT)."""
    async with asyncio.timeout(LIMIT):
        while not predicate():
            await asyncio.sleep(0.01)


async def hibernated(home: Home, n: int) -> None:
    await until(lambda: home.hibernated == n)


@pytest.fixture
async def server(tmp_path: Path, backend: Backend) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path, smtp=True, backend=backend)
    srv.acc = await srv.add_user()  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        await srv.stop()


async def selected(server: ImapServer, *enable: str, port: int | None = None,
                   tls: bool = False) -> Client:
    c = await Client.open(server.host, port or server.port, server.client_ssl() if tls else None)
    await c.login(*enable)
    out = await c.cmd("s", "SELECT INBOX")
    assert out[-1].startswith(b"s OK")
    return c


async def test_hibernated_idle_hears_smtp_append_flags_expunge_then_done(
    server: ImapServer,
) -> None:
    home = server.homes["imap"]
    acc = server.acc  # type: ignore[attr-defined]
    for n in (1, 2):
        await server.deliver(acc, message(n))
    a = await selected(server, "IMAP4rev2")
    b = await selected(server)
    await a.idle()
    await hibernated(home, 1)

    def smtp_side() -> None:
        assert server.smtp_port is not None
        with smtplib.SMTP(server.host, server.smtp_port, local_hostname="client.remote.test") as s:
            s.sendmail("carol@remote.test", [USER], message(3))

    await asyncio.to_thread(smtp_side)
    assert await a.line() == b"* 3 EXISTS"
    await hibernated(home, 1)  # it reported, then went back to sleep

    out = await b.cmd("b1", b"APPEND INBOX {%d+}\r\n" % len(message(4)) + message(4))
    assert out[-1].startswith(b"b1 OK")
    assert await a.line() == b"* 4 EXISTS"
    await hibernated(home, 1)

    await b.cmd("b2", "STORE 1 +FLAGS (\\Flagged)")
    assert await a.line() == b"* 1 FETCH (FLAGS (\\Flagged))"
    await hibernated(home, 1)

    await b.cmd("b3", "STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert await a.line() == b"* 2 FETCH (FLAGS (\\Deleted))"
    await hibernated(home, 1)
    await b.cmd("b4", "EXPUNGE")
    assert await a.line() == b"* 2 EXPUNGE"
    await hibernated(home, 1)

    assert await a.done() == []
    assert home.hibernated == 0
    out = await a.cmd("a1", "FETCH 1:* (UID FLAGS)")
    assert out == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged))", b"* 2 FETCH (UID 3 FLAGS ())",
                   b"* 3 FETCH (UID 4 FLAGS ())", b"a1 OK FETCH completed"]
    # and IDLE again, woken again, after a command
    await a.idle()
    await hibernated(home, 1)
    await server.deliver(acc, message(5))
    assert await a.line() == b"* 4 EXISTS"
    assert await a.done() == []
    assert await a.cmd("a2", "LOGOUT") == [b"* BYE Logging out", b"a2 OK LOGOUT completed"]
    await b.close()


async def test_hibernated_qresync_session_gets_vanished(server: ImapServer) -> None:
    home = server.homes["imap"]
    acc = server.acc  # type: ignore[attr-defined]
    for n in (1, 2, 3):
        await server.deliver(acc, message(n))
    a = await selected(server, "IMAP4rev2", "QRESYNC")
    b = await selected(server)
    await a.idle()
    await hibernated(home, 1)
    await b.cmd("b1", "UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    flags = await a.line()
    assert flags.startswith(b"* 2 FETCH (UID 2 FLAGS (\\Deleted) MODSEQ ("), flags
    await hibernated(home, 1)
    await b.cmd("b2", "EXPUNGE")
    assert await a.line() == b"* VANISHED 2"
    await hibernated(home, 1)
    assert await a.done() == []
    out = await a.cmd("a1", "UID SEARCH ALL")
    assert out[0].endswith(b"UID ALL 1,3")
    await a.close()
    await b.close()


async def test_hibernated_rev1_session_gets_recent(server: ImapServer) -> None:
    home = server.homes["imap"]
    acc = server.acc  # type: ignore[attr-defined]
    a = await selected(server)
    await a.idle()
    await hibernated(home, 1)
    await server.deliver(acc, message(1))
    assert [await a.line(), await a.line()] == [b"* 1 EXISTS", b"* 1 RECENT"]
    await hibernated(home, 1)
    assert await a.done() == []
    out = await a.cmd("a1", "FETCH 1 (FLAGS)")
    assert out[0] == b"* 1 FETCH (FLAGS (\\Recent))"
    await a.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_hibernated_tls_and_compress_sessions(server: ImapServer) -> None:
    """TLS sessions (asyncio's SSL protocol keeps its state; the session's coroutines and
    streams go) and COMPRESS=DEFLATE sessions (both zlib streams are dropped and rebuilt,
    imapd/compress.py) hibernate, wake and go on."""
    home, tls_home = server.homes["imap"], server.homes["imaps"]
    acc = server.acc  # type: ignore[attr-defined]
    t = await selected(server, port=server.tls_port, tls=True)
    z = await Client.open(server.host, server.port)
    await z.login()
    await z.compress()
    assert (await z.cmd("s", "SELECT INBOX"))[-1].startswith(b"s OK")
    tz = await Client.open(server.host, server.tls_port, server.client_ssl())
    await tz.login("IMAP4rev2")
    await tz.compress()
    assert (await tz.cmd("s", "SELECT INBOX"))[-1].startswith(b"s OK")
    for c in (t, z, tz):
        await c.idle()
    await hibernated(home, 1)
    await hibernated(tls_home, 2)
    for round_ in (1, 2):
        await server.deliver(acc, message(round_))
        # t and z are IMAP4rev1 sessions: RECENT follows (which one took it is not the point)
        assert await t.line() == b"* %d EXISTS" % round_
        assert (await t.line()).endswith(b" RECENT")
        assert await z.line() == b"* %d EXISTS" % round_
        assert (await z.line()).endswith(b" RECENT")
        assert await tz.line() == b"* %d EXISTS" % round_
        await hibernated(home, 1)
        await hibernated(tls_home, 2)
    for c in (t, z, tz):
        assert await c.done() == []
        out = await c.cmd("f", "FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: m2" in b"\r\n".join(out)
        assert out[-1] == b"f OK FETCH completed"
        # IDLE once more, then DONE while hibernated: the DONE itself wakes it
        await c.idle()
    await hibernated(home, 1)
    await hibernated(tls_home, 2)
    for c in (t, z, tz):
        assert await c.done() == []
        assert await c.cmd("n", "NOOP") == [b"n OK NOOP completed"]
        await c.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_hibernated_idle_times_out_and_frees_its_budget(server: ImapServer) -> None:
    home = server.homes["imap"]
    home.config_timeout = 0.3
    home.wheel = IdleWheel(0.3)
    counts = server.listeners.counts
    a = await selected(server)
    await a.idle()
    await hibernated(home, 1)
    assert counts.total() == 1 and server.listeners.active == 1
    assert await a.line() == b"* BYE IDLE timed out"
    with pytest.raises(EOFError):
        await a.line()
    await until(lambda: counts.total() == 0 and server.listeners.active == 0)
    assert home.hibernated == 0
    await a.close()


async def test_a_change_does_not_restart_the_hibernated_idle_timeout(server: ImapServer) -> None:
    """RFC 9051 5.4: the autologout timer counts the client's inactivity. Awake, IDLE reads
    with one timeout from its start, whatever the mailbox does; a change reported from
    hibernation must not give the session a fresh timeout as it sleeps again, or a mailbox that
    gets mail more often than the timeout keeps a silent client connected for ever."""
    home = server.homes["imap"]
    home.wheel = IdleWheel(1800)
    home.wheel.step = 0.001  # buckets of a millisecond: a record's deadline shows in its key
    a = await selected(server)
    await a.idle()
    await hibernated(home, 1)
    (first,) = home.wheel._buckets
    await server.deliver(server.acc, message(1))  # type: ignore[attr-defined]
    assert await a.line() == b"* 1 EXISTS"
    assert await a.line() == b"* 1 RECENT"  # an IMAP4rev1 session
    await hibernated(home, 1)  # it reported, then went back to sleep
    assert list(home.wheel._buckets) == [first]
    assert await a.done() == []
    # a new IDLE is the client speaking again: a new timeout
    await a.idle()
    await hibernated(home, 1)
    (again,) = home.wheel._buckets
    assert again > first
    await a.done()
    await a.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_client_gone_while_hibernated_frees_its_budget(server: ImapServer) -> None:
    home = server.homes["imap"]
    counts = server.listeners.counts
    a = await selected(server)
    b = await selected(server)
    for c in (a, b):
        await c.idle()
    await hibernated(home, 2)
    assert counts.total() == 2 and counts.ip("127.0.0.1") == 2
    await a.close()
    await hibernated(home, 1)
    await until(lambda: counts.total() == 1 and counts.ip("127.0.0.1") == 1)
    # a reset rather than a close
    b.writer.transport.abort()
    await until(lambda: counts.total() == 0 and server.listeners.active == 0)
    assert home.hibernated == 0
    assert home.store.changes.watched() == []


async def test_hibernated_session_told_of_shutdown(tmp_path: Path) -> None:
    srv = await start_imap_server(tmp_path)
    await srv.add_user()
    try:
        a = await selected(srv)
        await a.idle()
        await hibernated(srv.homes["imap"], 1)
        await srv.listeners.shutdown(grace=2.0)
        assert await a.line() == b"* BYE Server shutting down"
        with pytest.raises(EOFError):
            await a.line()
        assert srv.listeners.counts.total() == 0
    finally:
        await srv.ctx.store.close()


# -- what a hibernated session costs ------------------------------------------------------------

#: left out of the count: sqlite3 keeps a weak reference per cursor until it prunes its list;
#: asyncio's selector loop keeps cancelled timers (with their contexts) in its heap until it
#: cleans it (uvloop frees them at once)
_NOISE = (weakref.ref, asyncio.TimerHandle, contextvars.Context)


def _tracked() -> Counter[str]:
    """Objects the collector tracks, by type."""
    return Counter(type(o).__name__ for o in gc.get_objects() if not isinstance(o, _NOISE))


def _idle_socket(host: str, port: int) -> socket.socket:
    """A blocking client (one socket object on our side, nothing on the event loop)."""
    s = socket.create_connection((host, port), timeout=LIMIT)
    f = s.makefile("rb")
    try:
        assert f.readline().startswith(b"* OK")
        for line in (f'l LOGIN {USER} "{PASSWORD}"', "s SELECT INBOX", "i IDLE"):
            s.sendall(line.encode() + b"\r\n")
            while not (got := f.readline()).startswith((line[0].encode() + b" ", b"+ ")):
                assert got.startswith(b"* "), got
    finally:
        f.close()
    return s


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_hibernated_session_holds_few_objects(server: ImapServer) -> None:
    """A count, not a time: the objects and bytes one more hibernated session keeps (the
    clients are plain sockets of this process, one object each). Awake in IDLE a session held
    about 150 tracked objects and 15 KB (docs/benchmarks.md)."""
    home = server.homes["imap"]
    server.listeners.max_per_ip = 1000
    acc = server.acc  # type: ignore[attr-defined]
    for n in range(1, 4):
        await server.deliver(acc, message(n))
    socks = [await asyncio.to_thread(_idle_socket, server.host, server.port) for _ in range(20)]
    await hibernated(home, 20)  # warm: caches, listing, pools
    n = 40
    gc.collect()
    before = _tracked()
    tracemalloc.start()
    try:
        base = tracemalloc.take_snapshot()
        for _ in range(n):
            socks.append(await asyncio.to_thread(_idle_socket, server.host, server.port))
        await hibernated(home, 20 + n)
        await asyncio.sleep(0.05)  # the tasks of the last sessions finish
        gc.collect()
        after = _tracked()
        # what the server and the loop hold; not the SQLite module's statement cache and cursor
        # list (they grow on their own for a while) nor the threads the clients run on
        noise = [tracemalloc.Filter(True, "*/mailwright/*"), tracemalloc.Filter(True, "*/asyncio/*"),
                 tracemalloc.Filter(False, "*/store/sqlite/*")]
        snap = tracemalloc.take_snapshot().filter_traces(noise)
        stats = snap.compare_to(base.filter_traces(noise), "filename")
    finally:
        tracemalloc.stop()
    grown = after - before
    per_objects = grown.total() / n
    per_bytes = sum(s.size_diff for s in stats) / n
    print(f"per hibernated session: {per_objects:.1f} gc objects, {per_bytes:.0f} bytes;",
          grown.most_common(20))
    # on asyncio's selector loop: the record, its frozen view, the connection, the account and
    # mailbox records, the transport with its socket, selector key and read handle, and the
    # client's socket; awake, one session held about 150 objects and 15 KB
    assert per_objects <= 19, grown
    assert per_bytes <= 4000, per_bytes
    for s in socks:
        s.close()
    await hibernated(home, 0)


# -- several workers ------------------------------------------------------------------------------

async def test_hibernated_session_hears_another_worker(tmp_path: Path, backend: Backend) -> None:
    """Two servers on one store stand for two workers (`[server] workers`): on SQLite joined by
    the worker relay (real Unix datagram sockets and the supervisor's `fan_out`), on PostgreSQL
    by LISTEN/NOTIFY alone. A session hibernated in one hears an APPEND made in the other."""
    loop = asyncio.get_running_loop()
    path = write_config(tmp_path, *listener("imap", "127.0.0.1"), backend=backend)
    servers: list[tuple[Any, Any, int, Home]] = []
    for _ in range(2):
        homes: list[Home] = []

        def handler(ctx: AppContext, lc: ListenerConfig, homes: list[Home] = homes) -> Handler | None:
            h = handler_for(ctx, lc)
            homes.append(h.home)  # type: ignore[union-attr, attr-defined]
            return h

        ctx, listeners, ports = await start_listeners(path, handler, keep_outbound=False)
        servers.append((ctx, listeners, ports["imap"], homes[0]))
    sockets: list[socket.socket] = []
    if backend.name == "sqlite":
        pairs = [socket_pair(), socket_pair()]
        sups = [sup for sup, _ in pairs]
        for (sup, worker), (ctx, *_rest) in zip(pairs, servers, strict=True):
            channel = WorkerChannel(worker)
            hub = channel.make_hub()
            hub._loop = loop
            ctx.store.changes = hub
            channel.start(loop)
            loop.add_reader(sup.fileno(), fan_out, sup, sups)
            sockets += [sup, worker]
    try:
        (ctx1, _l1, port1, home1), (_ctx2, _l2, port2, _home2) = servers
        await ctx1.store.add_domain("example.test")
        await ctx1.store.add_account(USER, cheap_hash(PASSWORD))
        a = await Client.open("127.0.0.1", port1)
        await a.login("IMAP4rev2")
        await a.cmd("s", "SELECT INBOX")
        await a.idle()
        await hibernated(home1, 1)
        b = await Client.open("127.0.0.1", port2)
        await b.login()
        out = await b.cmd("b1", b"APPEND INBOX {%d+}\r\n" % len(message(1)) + message(1))
        assert out[-1].startswith(b"b1 OK")
        assert await a.line() == b"* 1 EXISTS"
        await hibernated(home1, 1)
        await b.cmd("b2", "SELECT INBOX")
        await b.cmd("b3", "STORE 1 +FLAGS (\\Seen)")
        assert await a.line() == b"* 1 FETCH (FLAGS (\\Seen))"
        await hibernated(home1, 1)
        assert await a.done() == []
        await a.close()
        await b.close()
    finally:
        for ctx, listeners, _port, _home in servers:
            await listeners.shutdown(grace=2.0)
            await ctx.store.close()
        for s in sockets:
            loop.remove_reader(s.fileno())
            s.close()


async def test_hibernated_notify_session_reports_its_events(server: ImapServer) -> None:
    """RFC 5465: a session with a NOTIFY set hibernates in IDLE too, and reports what the set
    asks for: mailbox list changes, STATUS of other mailboxes, the selected mailbox's news."""
    home = server.homes["imap"]
    a = await selected(server, "IMAP4rev2")
    b = await selected(server)
    out = await a.cmd("n", "NOTIFY SET (selected (MessageNew (UID) MessageExpunge FlagChange)) "
                      "(personal (MessageNew MessageExpunge MailboxName))")
    assert out == [b"n OK NOTIFY completed"]
    await a.idle()
    await hibernated(home, 1)
    await b.cmd("b1", "CREATE Lists")
    assert await a.line() == b'* LIST () "/" Lists'
    await hibernated(home, 1)
    lists = await server.store.get_mailbox(server.acc.id, "Lists")  # type: ignore[attr-defined]
    assert lists is not None
    out = await b.cmd("b2", b"APPEND Lists {%d+}\r\n" % len(message(1)) + message(1))
    assert out[-1].startswith(b"b2 OK")
    assert await a.line() == (
        b"* STATUS Lists (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d)" % lists.uidvalidity)
    await hibernated(home, 1)
    out = await b.cmd("b3", b"APPEND INBOX {%d+}\r\n" % len(message(2)) + message(2))
    assert await a.line() == b"* 1 EXISTS"
    assert await a.line() == b"* 1 FETCH (UID 1)"
    await hibernated(home, 1)
    assert await a.done() == []
    assert await a.cmd("a1", "NOOP") == [b"a1 OK NOOP completed"]
    await a.close()
    await b.close()
