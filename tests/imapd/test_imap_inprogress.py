"""INPROGRESS (RFC 9585): long SEARCH, COPY, MOVE and EXPUNGE commands report that they are
still working.  The interval is a session setting; at 0 every step reports, which makes the
responses deterministic here (no timing in tests)."""

from __future__ import annotations

from imap_harness import Server, message

from mailwright.imapd import (
    dispatch,
    handlers,  # noqa: F401 - registers the handlers
)
from mailwright.imapd.session import SessionConfig
from mailwright.store.api import Store


async def test_inprogress_reports_of_long_commands(store: Store) -> None:
    srv = Server(store, SessionConfig(hostname="imap.example.test", progress_interval=0))
    try:
        acc = await srv.add_user()
        n = dispatch.SEARCH_CHUNK + 5
        inbox = await store.get_mailbox(acc, "INBOX")
        assert inbox is not None
        w = store.blob_writer()
        w.write(message(1))
        blob = await w.finish()
        from mailwright.store.api import AppendItem

        await store.append_many(inbox.id, [AppendItem(blob) for _ in range(n)])
        c = await srv.connected()
        assert b" INPROGRESS" in (await c.cmd("a0 CAPABILITY"))[0]
        await c.cmd("a1 SELECT INBOX")
        # counted progress: after each chunk of messages, done and goal (RFC 9585 2)
        out = await c.cmd("a2 UID SEARCH RETURN (COUNT) ALL")
        assert out == [
            b'* OK [INPROGRESS ("a2" %d %d)] Searching' % (dispatch.SEARCH_CHUNK, n),
            b'* OK [INPROGRESS ("a2" %d %d)] Searching' % (n, n),
            b'* ESEARCH (TAG "a2") UID COUNT %d' % n,
            b"a2 OK UID SEARCH completed",
        ]
        # one store transaction cannot count: NIL NIL while it runs (RFC 9585 2)
        out = await c.cmd("a3 COPY 1:10 Archive")
        assert out[0] == b'* OK [INPROGRESS ("a3" NIL NIL)] Copying'
        assert out[-1].startswith(b"a3 OK [COPYUID ")
        assert all(line.startswith(b"* OK [INPROGRESS") for line in out[:-1])
        out = await c.cmd("a4 MOVE 1:2 Archive")
        assert out[0] == b'* OK [INPROGRESS ("a4" NIL NIL)] Moving'
        assert out[-1] == b"a4 OK MOVE completed"
        await c.cmd("a5 STORE 1 +FLAGS.SILENT (\\Deleted)")
        out = await c.cmd("a6 EXPUNGE")
        assert out[0] == b'* OK [INPROGRESS ("a6" NIL NIL)] Expunging'
        assert out[-2:] == [b"* 1 EXPUNGE", b"a6 OK EXPUNGE completed"]
    finally:
        for cl in srv.clients:
            await cl.close()


async def test_inprogress_silent_for_quick_commands(store: Store) -> None:
    srv = Server(store)  # the default interval: a quick command says nothing extra
    try:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1))
        c = await srv.connected()
        await c.cmd("a1 SELECT INBOX")
        assert await c.cmd("a2 SEARCH ALL") == [b"* SEARCH 1", b"a2 OK SEARCH completed"]
        assert (await c.cmd("a3 COPY 1 Archive"))[0].startswith(b"a3 OK [COPYUID ")
    finally:
        for cl in srv.clients:
            await cl.close()
