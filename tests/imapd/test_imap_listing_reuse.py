"""What sessions reuse from the shared listing stays right (issue 16): the rendering of a
whole-mailbox FETCH of flags (``UID FETCH 1:* (FLAGS)``, kept with the listing and sent as it
is to every session whose view is still that listing) and STATUS answered from a kept
listing's aggregates. Both backends; the size thresholds lowered so that a few messages
exercise the paths a large mailbox takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from imap_harness import Server, imap_server, message
from tests.support.backends import Backend

from mailwright.imapd import dispatch


def _keep_small_listings(srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "_RENDER_CACHE_MIN", 1)
    store = srv.store
    if hasattr(store, "_listing"):  # SQLite: the listing cache's own threshold
        monkeypatch.setattr(store._listing, "min_size", 1)
    else:
        monkeypatch.setattr(store, "listing_min_size", 1)


async def test_flags_resync_rendering_follows_changes(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _keep_small_listings(srv, monkeypatch)
        acc = await srv.add_user()
        for i in range(4):
            await srv.deliver(acc, message(i), flags=("\\Seen",) if i % 2 else ())
        a, b = await srv.connected(), await srv.connected()
        await a.cmd("a0 ENABLE IMAP4rev2")  # no \Recent: the views stay the listing
        await b.cmd("b0 ENABLE IMAP4rev2")
        await a.cmd("a1 SELECT INBOX")
        await b.cmd("b1 SELECT INBOX")
        want = [
            b"* 1 FETCH (UID 1 FLAGS ())",
            b"* 2 FETCH (UID 2 FLAGS (\\Seen))",
            b"* 3 FETCH (UID 3 FLAGS ())",
            b"* 4 FETCH (UID 4 FLAGS (\\Seen))",
        ]
        assert await a.cmd("a2 UID FETCH 1:* (FLAGS)") == [*want, b"a2 OK UID FETCH completed"]
        assert await b.cmd("b2 UID FETCH 1:* (FLAGS)") == [*want, b"b2 OK UID FETCH completed"]
        # b changes a flag: its own answer, a's next resync and a new session's all show it
        await b.cmd("b3 STORE 3 +FLAGS.SILENT (\\Flagged)")
        assert await b.cmd("b4 FETCH 1:* (FLAGS)") == [
            b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS (\\Seen))",
            b"* 3 FETCH (FLAGS (\\Flagged))", b"* 4 FETCH (FLAGS (\\Seen))",
            b"b4 OK FETCH completed",
        ]
        out = await a.cmd("a3 UID FETCH 1:* (FLAGS)")
        assert out[-2] == b"* 4 FETCH (UID 4 FLAGS (\\Seen))"
        assert b"* 3 FETCH (UID 3 FLAGS (\\Flagged))" in out
        c = await srv.connected()
        await c.cmd("c0 ENABLE IMAP4rev2")
        await c.cmd("c1 SELECT INBOX")
        assert await c.cmd("c2 UID FETCH 1:* (FLAGS)") == [
            *want[:2], b"* 3 FETCH (UID 3 FLAGS (\\Flagged))", want[3],
            b"c2 OK UID FETCH completed",
        ]
        # a message expunged elsewhere and not yet announced keeps its number
        await b.cmd("b5 STORE 1 +FLAGS.SILENT (\\Deleted)")
        await b.cmd("b6 EXPUNGE")
        out = await c.cmd("c3 FETCH 1:* (UID FLAGS)")
        assert len(out) == 5 and out[0].startswith(b"* 1 FETCH (UID 1 FLAGS (")
        assert out[-1] == b"c3 OK FETCH completed"
        assert await c.cmd("c4 UID FETCH 1:* (FLAGS)") == [
            b"* 1 EXPUNGE", b"* 1 FETCH (UID 2 FLAGS (\\Seen))",
            b"* 2 FETCH (UID 3 FLAGS (\\Flagged))", b"* 3 FETCH (UID 4 FLAGS (\\Seen))",
            b"c4 OK UID FETCH completed",
        ]


async def test_rev1_session_sees_recent_in_resync(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _keep_small_listings(srv, monkeypatch)
        acc = await srv.add_user()
        for i in range(2):
            await srv.deliver(acc, message(i))
        a, b = await srv.connected(), await srv.connected()
        await b.cmd("b0 ENABLE IMAP4rev2")
        await b.cmd("b1 SELECT INBOX")
        assert await b.cmd("b2 UID FETCH 1:* (FLAGS)") == [
            b"* 1 FETCH (UID 1 FLAGS ())", b"* 2 FETCH (UID 2 FLAGS ())",
            b"b2 OK UID FETCH completed"]
        # the IMAP4rev1 session takes the \Recent messages: not the shared lines
        await a.cmd("a1 SELECT INBOX")
        assert await a.cmd("a2 UID FETCH 1:* (FLAGS)") == [
            b"* 1 FETCH (UID 1 FLAGS (\\Recent))", b"* 2 FETCH (UID 2 FLAGS (\\Recent))",
            b"a2 OK UID FETCH completed"]


async def test_status_from_kept_listing(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _keep_small_listings(srv, monkeypatch)
        acc = await srv.add_user()
        for i in range(3):
            await srv.deliver(acc, message(i), flags=("\\Seen",) if i == 0 else ())
        a, b = await srv.connected(), await srv.connected()
        await a.cmd("a1 SELECT INBOX")  # the listing is now kept
        status = "STATUS INBOX (MESSAGES UNSEEN UIDNEXT DELETED SIZE)"
        out = await b.cmd(f"b1 {status}")
        size = sum(len(message(i)) for i in range(3))
        assert out[0] == b"* STATUS INBOX (MESSAGES 3 UNSEEN 2 UIDNEXT 4 DELETED 0 SIZE %d)" % size
        await a.cmd("a2 STORE 2 +FLAGS.SILENT (\\Seen \\Deleted)")
        await srv.deliver(acc, message(3))
        out = await b.cmd(f"b2 {status}")
        size += len(message(3))
        assert out[0] == b"* STATUS INBOX (MESSAGES 4 UNSEEN 2 UIDNEXT 5 DELETED 1 SIZE %d)" % size
        await a.cmd("a3 EXPUNGE")
        out = await b.cmd(f"b3 {status}")
        size -= len(message(1))
        assert out[0] == b"* STATUS INBOX (MESSAGES 3 UNSEEN 2 UIDNEXT 5 DELETED 0 SIZE %d)" % size
