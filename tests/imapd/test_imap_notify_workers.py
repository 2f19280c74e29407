"""IMAP NOTIFY (RFC 5465) across workers and nodes: session A on one store instance, session B
on another over the same data. On SQLite the two stores stand for two worker processes, joined
by the worker relay (`workers.channel`: real Unix datagram sockets and the supervisor's
`fan_out`); on PostgreSQL they are two nodes, joined by LISTEN/NOTIFY alone. A hears of B's
changes exactly as of its own node's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from imap_harness import Server, message
from tests.support.backends import Backend

from mailwright.store import meta_parser
from mailwright.store.api import Store
from mailwright.workers.channel import WorkerChannel, fan_out, socket_pair


@asynccontextmanager
async def two_workers(tmp_path: Path, backend: Backend) -> AsyncIterator[tuple[Server, Server]]:
    loop = asyncio.get_running_loop()
    stores: list[Store] = []
    sockets = []
    if backend.name == "sqlite":
        sup_a, a = socket_pair()
        sup_b, b = socket_pair()
        sockets = [sup_a, sup_b, a, b]
        channels = [WorkerChannel(a), WorkerChannel(b)]
        for sup in (sup_a, sup_b):
            # the supervisor: what one worker sends reaches the others
            loop.add_reader(sup.fileno(), fan_out, sup, [sup_a, sup_b])
        for ch in channels:
            store = backend.new_store(tmp_path / "data", meta_parser=meta_parser())
            store.changes = ch.make_hub()
            ch.start(loop)
            stores.append(store)
    else:
        for node in ("node1", "node2"):
            stores.append(backend.new_store(tmp_path / node, meta_parser=meta_parser()))
    for store in stores:
        await store.open()
    servers = [Server(store) for store in stores]
    try:
        yield servers[0], servers[1]
    finally:
        for srv in servers:
            for c in srv.clients:
                await c.close()
        for store in stores:
            await store.close()
        for s in sockets:
            loop.remove_reader(s.fileno())
            s.close()


async def test_notify_hears_another_workers_changes(tmp_path: Path, backend: Backend) -> None:
    async with two_workers(tmp_path, backend) as (one, two):
        acc = await one.add_user()
        await one.deliver(acc, message(1))
        a = await one.connected()
        b = await two.connected()
        await a.cmd("a0 ENABLE IMAP4rev2")
        await a.cmd("a1 SELECT INBOX")
        out = await a.cmd("a2 NOTIFY SET (selected (MessageNew (UID) MessageExpunge FlagChange)) "
                          "(personal (MessageNew MessageExpunge MailboxName SubscriptionChange "
                          "MailboxMetadataChange))")
        assert out == [b"a2 OK NOTIFY completed"]
        await b.cmd("b1 CREATE Lists")
        assert await a.read_line() == b'* LIST () "/" Lists'
        await b.cmd("b2 SUBSCRIBE Lists")
        assert await a.read_line() == b'* LIST (\\Subscribed) "/" Lists'
        await b.cmd('b3 SETMETADATA Lists (/private/comment "x")')
        assert await a.read_line() == b"* METADATA Lists /private/comment"
        lists = await one.store.get_mailbox(acc, "Lists")
        assert lists is not None
        out = await b.cmd(b"b4 APPEND Lists {%d+}\r\n" % len(message(2)) + message(2))
        assert out[-1].startswith(b"b4 OK")
        assert await a.read_line() == (
            b"* STATUS Lists (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %d)" % lists.uidvalidity)
        await b.cmd("b5 SELECT INBOX")
        await b.cmd("b6 STORE 1 +FLAGS (\\Flagged)")
        assert await a.read_line() == b"* 1 FETCH (FLAGS (\\Flagged))"
        out = await b.cmd(b"b7 APPEND INBOX {%d+}\r\n" % len(message(3)) + message(3))
        assert await a.read_line() == b"* 2 EXISTS"
        assert await a.read_line() == b"* 2 FETCH (UID 2)"
        await b.cmd("b8 STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert await a.read_line() == b"* 1 FETCH (FLAGS (\\Deleted \\Flagged))"
        await b.cmd("b9 EXPUNGE")
        assert await a.read_line() == b"* 1 EXPUNGE"
        assert await a.cmd("a3 NOOP") == [b"a3 OK NOOP completed"]
