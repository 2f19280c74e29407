"""UIDONLY (RFC 9586) on both store backends, with a second session changing the mailbox:
flag changes arrive as UIDFETCH, expunges as VANISHED (never EXPUNGE), and STORE .SILENT with
UNCHANGEDSINCE reports MODSEQ by UID."""

from __future__ import annotations

from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import Store


async def test_uidonly_unsolicited_responses_use_uids(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        for i in range(1, 4):
            await srv.deliver(acc, message(i))
        c = await srv.connected()
        other = await srv.connected()
        assert b" UIDONLY" in (await c.cmd("a0 CAPABILITY"))[0]
        assert (await c.cmd("a1 ENABLE UIDONLY"))[0] == b"* ENABLED UIDONLY"
        out = await c.cmd("a2 SELECT INBOX")
        assert not any(b"[UNSEEN" in line for line in out)  # a sequence number (RFC 9586 3)
        await other.cmd("o1 SELECT INBOX")
        await other.cmd("o2 STORE 2 +FLAGS.SILENT (\\Flagged)")
        await other.cmd("o3 STORE 3 +FLAGS.SILENT (\\Deleted)")
        await other.cmd("o4 EXPUNGE")
        await srv.deliver(acc, message(4))
        out = await c.cmd("a3 NOOP")
        assert out == [b"* VANISHED 3", b"* 3 EXISTS", b"* 3 RECENT",
                       b"* 2 UIDFETCH (FLAGS (\\Flagged \\Recent))", b"a3 OK NOOP completed"]
        out = await c.cmd("a4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
        assert out[0].startswith(b"* 1 UIDFETCH (FLAGS (\\Recent) MODSEQ (")
        assert out[2].startswith(b"* 4 UIDFETCH (FLAGS (\\Recent) MODSEQ (")
        modseq = int(out[2].rsplit(b"(", 1)[1].rstrip(b"))"))
        out = await c.cmd(f"a5 UID STORE 4 (UNCHANGEDSINCE {modseq}) +FLAGS.SILENT (\\Seen)")
        assert out[0].startswith(b"* 4 UIDFETCH (MODSEQ (")
        # the "*" of a message-number set is a sequence number too
        out = await c.cmd("a6 FETCH * (FLAGS)")
        assert out == [b"a6 BAD [UIDREQUIRED] Message sequence numbers are not allowed once "
                       b"UIDONLY is enabled"]
        # $ holds UIDs (RFC 5182) and stays usable
        await c.cmd("a7 UID SEARCH RETURN (SAVE) FLAGGED")
        assert (await c.cmd("a8 UID FETCH $ (UID)"))[0] == b"* 2 UIDFETCH (UID 2)"
        assert (await c.cmd("a9 UID SEARCH $"))[0] == b"* SEARCH 2"
    finally:
        for cl in srv.clients:
            await cl.close()
