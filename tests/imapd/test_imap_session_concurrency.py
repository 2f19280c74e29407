"""Several sessions on one mailbox: each sees the others' changes at the moments RFC 9051
allows (7.5.1: no EXPUNGE while FETCH, STORE or SEARCH by sequence number runs), and IDLE
reports deliveries as they happen."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from imap_harness import Client, Server, imap_server, message
from tests.support.backends import Backend


async def two_sessions_on_inbox(srv: Server, count: int) -> tuple[int, Client, Client]:
    """``count`` messages in alice's INBOX and two of her sessions that have SELECTed it."""
    acc = await srv.add_user()
    for i in range(count):
        await srv.deliver(acc, message(i))
    a = await srv.connected()
    b = await srv.connected()
    await a.cmd("a1 SELECT INBOX")
    await b.cmd("b1 SELECT INBOX")
    return acc, a, b


async def test_concurrency_flags_and_exists_reach_other_session(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, a, b = await two_sessions_on_inbox(srv, 3)
        await b.cmd("b2 STORE 2 +FLAGS (\\Flagged $Todo)")
        await srv.deliver(acc, message(9))
        out = await a.cmd("a2 NOOP")
        assert out == [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo)",
            b"* 4 EXISTS",
            b"* 4 RECENT",  # a selected first: the three and the new one are recent to it
            b"* 2 FETCH (FLAGS (\\Flagged \\Recent $Todo))",
            b"a2 OK NOOP completed",
        ]
        assert await a.cmd("a3 NOOP") == [b"a3 OK NOOP completed"]


async def test_concurrency_no_expunge_during_fetch_store_search(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, a, b = await two_sessions_on_inbox(srv, 4)
        await b.cmd("b2 STORE 2 +FLAGS.SILENT (\\Deleted)")
        assert await b.cmd("b3 EXPUNGE") == [b"* 2 EXPUNGE", b"b3 OK EXPUNGE completed"]
        # A still numbers 4 messages: FETCH must not send EXPUNGE; message 2 is a ghost,
        # answered from what the session still knows of it
        out = await a.cmd("a2 FETCH 1:4 (UID)")
        assert out == [
            b"* 1 FETCH (UID 1)",
            b"* 2 FETCH (UID 2)",
            b"* 3 FETCH (UID 3)",
            b"* 4 FETCH (UID 4)",
            b"a2 OK FETCH completed",
        ]
        # its content is gone (not shared, not cached): EXPUNGEISSUED for that one only
        out = await a.cmd("a2b FETCH 2:3 (BODY.PEEK[TEXT])")
        assert out[-1] in (b"a2b NO [EXPUNGEISSUED] Some messages were expunged",
                           b"a2b OK FETCH completed")
        out = await a.cmd("a3 SEARCH ALL")
        assert out == [b"* SEARCH 1 3 4", b"a3 OK SEARCH completed"]
        out = await a.cmd("a4 STORE 4 +FLAGS (\\Seen)")
        assert out == [b"* 4 FETCH (FLAGS (\\Recent \\Seen))", b"a4 OK STORE completed"]
        # a UID command may send the EXPUNGE (RFC 9051 7.5.1)
        out = await a.cmd("a5 UID FETCH 4 (FLAGS)")
        assert out == [
            b"* 2 EXPUNGE", b"* 3 FETCH (UID 4 FLAGS (\\Recent \\Seen))", b"a5 OK UID FETCH completed"
        ]
        assert await a.cmd("a6 NOOP") == [b"a6 OK NOOP completed"]


async def test_concurrency_expunge_reported_at_noop(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, a, b = await two_sessions_on_inbox(srv, 5)
        await b.cmd("b2 STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        await b.cmd("b3 EXPUNGE")
        out = await a.cmd("a2 NOOP")
        # each EXPUNGE renumbers the following messages (RFC 9051 7.5.1)
        assert out == [b"* 2 EXPUNGE", b"* 3 EXPUNGE", b"a2 OK NOOP completed"]
        out = await a.cmd("a3 FETCH 1:* UID")
        assert out[:-1] == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)", b"* 3 FETCH (UID 5)"]


async def test_concurrency_qresync_session_gets_vanished(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        for i in range(3):
            await srv.deliver(acc, message(i))
        a = await srv.connected()
        b = await srv.connected()
        await a.cmd("a0 ENABLE QRESYNC")
        await a.cmd("a1 SELECT INBOX")
        await b.cmd("b1 SELECT INBOX")
        await b.cmd("b2 STORE 1 +FLAGS.SILENT (\\Deleted)")
        await b.cmd("b3 EXPUNGE")
        out = await a.cmd("a2 NOOP")
        assert out[0] == b"* VANISHED 1"


async def test_concurrency_idle_sees_delivery_and_flags(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1))
        a = await srv.connected()
        b = await srv.connected()
        await a.cmd("a1 SELECT INBOX")
        await b.cmd("b1 SELECT INBOX")
        a.send(b"a2 IDLE\r\n")
        assert (await a.read_until(rb"\+ "))[-1] == b"+ idling"
        await srv.deliver(acc, message(2))
        out = await a.read_until(rb"\* 2 RECENT")
        assert out == [b"* 2 EXISTS", b"* 2 RECENT"]
        await b.cmd("b2 STORE 1 +FLAGS (\\Answered)")
        out = await a.read_until(rb"\* 1 FETCH")
        assert out == [b"* 1 FETCH (FLAGS (\\Answered \\Recent))"]
        await b.cmd("b3 STORE 2 +FLAGS.SILENT (\\Deleted)")
        await b.cmd("b4 EXPUNGE")
        out = await a.read_until(rb"\* 2 EXPUNGE")
        assert out[-1] == b"* 2 EXPUNGE"
        out = await a.cmd(b"DONE", tag="a2")
        assert out[-1] == b"a2 OK IDLE terminated"
        assert await a.cmd("a3 NOOP") == [b"a3 OK NOOP completed"]


async def test_concurrency_idle_in_authenticated_state_and_bad_done(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        a = await srv.connected()
        a.send(b"a1 IDLE\r\n")
        await a.read_until(rb"\+ ")
        assert await a.cmd(b"done", tag="a1") == [b"a1 OK IDLE terminated"]


async def test_concurrency_ten_sessions_stay_consistent(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        for i in range(10):
            await srv.deliver(acc, message(i))
        clients = [await srv.connected() for _ in range(10)]
        for i, c in enumerate(clients):
            await c.cmd(f"s{i} SELECT INBOX")

        async def work(i: int) -> None:
            c = clients[i]
            msg = message(100 + i)
            await c.cmd(b"p%d APPEND INBOX {%d+}\r\n%s" % (i, len(msg), msg))
            await c.cmd(f"f{i} UID STORE {i + 1} +FLAGS ($k{i})")
            if i % 3 == 0:
                await c.cmd(f"d{i} UID STORE {i + 1} +FLAGS (\\Deleted)")
                await c.cmd(f"x{i} UID EXPUNGE {i + 1}")

        await asyncio.gather(*(work(i) for i in range(10)))
        views = []
        for i, c in enumerate(clients):
            await c.cmd(f"n{i} NOOP")
            out = await c.cmd(f"u{i} FETCH 1:* (UID FLAGS)")
            views.append(out[:-1])
        # RFC 3501 2.3.2: each message is \Recent to exactly one session, the first to see it
        recent_to = [
            {int(m.group(1)) for line in v if (m := re.search(rb"UID (\d+) FLAGS \(\\Recent", line))}
            for v in views
        ]
        plain = [
            [line.replace(b"\\Recent ", b"").replace(b" \\Recent)", b")")
             .replace(b"(\\Recent)", b"()") for line in v]
            for v in views
        ]
        assert all(v == plain[0] for v in plain), views
        uids = [int(re.search(rb"UID (\d+)", line).group(1)) for line in views[0]]  # type: ignore[union-attr]
        assert len(uids) == 20 - 4
        assert uids == sorted(uids)
        assert sorted(u for r in recent_to for u in r) == uids
        seqs = [int(line.split()[1]) for line in views[0]]
        assert seqs == list(range(1, 17))


async def test_concurrency_idle_ended_by_a_wrong_line(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        a = await srv.connected()
        a.send(b"a1 IDLE\r\n")
        await a.read_until(rb"\+ ")
        assert await a.cmd(b"a2 NOOP", tag="a1") == [b"a1 BAD expected DONE"]
        assert await a.cmd("a3 NOOP") == [b"a3 OK NOOP completed"]
