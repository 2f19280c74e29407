"""Session transcripts in the selected state: SELECT/EXAMINE, STORE, EXPUNGE, COPY, MOVE,
FETCH and SEARCH dispatch, CONDSTORE and QRESYNC."""

from __future__ import annotations

import re
from pathlib import Path

from imap_harness import Client, Server, imap_server, message
from tests.support.backends import Backend


async def _setup(srv: Server, n: int = 3) -> tuple[int, Client]:
    acc = await srv.add_user()
    for i in range(1, n + 1):
        await srv.deliver(acc, message(i))
    return acc, await srv.connected()


async def test_selected_select_responses(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv)
        out = await c.cmd("a SELECT INBOX")
        mb = await srv.store.get_mailbox(1, "INBOX")
        assert mb is not None
        assert out == [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted",
            b"* 3 EXISTS",
            b"* 3 RECENT",
            b"* OK [UNSEEN 1] First unseen",
            b"* OK [UIDVALIDITY %d] UIDs valid" % mb.uidvalidity,
            b"* OK [MAILBOXID (F%d-%d)] Mailbox id" % (mb.id, mb.uidvalidity),
            b"* OK [UIDNEXT 4] Predicted next UID",
            b"* OK [HIGHESTMODSEQ %d] Highest" % mb.highestmodseq,
            b"a OK [READ-WRITE] SELECT completed",
        ]
        out = await c.cmd("b EXAMINE Sent")
        assert out[0] == b"* OK [CLOSED] Previous mailbox closed"
        assert b"* OK [PERMANENTFLAGS ()] Flags permitted" in out
        assert out[-1] == b"b OK [READ-ONLY] EXAMINE completed"
        assert await c.cmd("c STORE 1 +FLAGS (\\Seen)") == [
            b"c NO [READ-ONLY] Mailbox is read-only"
        ]
        assert await c.cmd("d SELECT Nope") == [
            b"* OK [CLOSED] Previous mailbox closed",
            b"d NO [NONEXISTENT] Mailbox does not exist: Nope",
        ]
        # a failed SELECT leaves the session unselected
        assert await c.cmd("e FETCH 1 FLAGS") == [b"e BAD FETCH: no mailbox selected"]


async def test_selected_rev2_select_has_no_recent(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv)
        await c.cmd("a ENABLE IMAP4rev2")
        out = await c.cmd("b SELECT INBOX")
        assert not any(b"RECENT" in line or b"UNSEEN" in line for line in out)
        assert b'* LIST (\\HasNoChildren) "/" INBOX' in out
        out = await c.cmd("c EXAMINE Sent")
        assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent' in out


async def test_selected_fetch_basics(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv)
        await c.cmd("a SELECT INBOX")
        out = await c.cmd("b FETCH 1:2 (FLAGS RFC822.SIZE UID)")
        assert out == [
            b"* 1 FETCH (FLAGS (\\Recent) RFC822.SIZE %d UID 1)" % len(message(1)),
            b"* 2 FETCH (FLAGS (\\Recent) RFC822.SIZE %d UID 2)" % len(message(2)),
            b"b OK FETCH completed",
        ]
        out = await c.cmd("c UID FETCH 3 (BODY.PEEK[HEADER.FIELDS (Subject)])")
        assert out[0] == b"* 3 FETCH (UID 3 BODY[HEADER.FIELDS (Subject)] {22}\r\nSubject: message 3\r\n\r\n)"
        out = await c.cmd("d FETCH 2 BODY[TEXT]")
        assert out[0] == b"* 2 FETCH (BODY[TEXT] {9}\r\nhello 2\r\n FLAGS (\\Recent \\Seen))"
        out = await c.cmd("e FETCH 2 (FLAGS BODY[]<0.4>)")
        assert out[0] == b"* 2 FETCH (FLAGS (\\Recent \\Seen) BODY[]<0> {4}\r\nFrom)"
        assert await c.cmd("f FETCH 9 FLAGS") == [b"f BAD Invalid message sequence number"]
        assert await c.cmd("g UID FETCH 9 FLAGS") == [b"g OK UID FETCH completed"]
        out = await c.cmd("h FETCH 1 (ENVELOPE)")
        assert out[0].startswith(b'* 1 FETCH (ENVELOPE ("Mon, 02 Jan 2024 10:00:00 +0000" "message 1"')


async def test_selected_store_flags(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv)
        await c.cmd("a SELECT INBOX")
        out = await c.cmd("b STORE 1:2 +FLAGS (\\Seen $Work)")
        assert out == [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
            b"* 1 FETCH (FLAGS (\\Recent \\Seen $Work))",
            b"* 2 FETCH (FLAGS (\\Recent \\Seen $Work))",
            b"b OK STORE completed",
        ]
        assert await c.cmd("c STORE 1 -FLAGS.SILENT ($Work)") == [b"c OK STORE completed"]
        out = await c.cmd("d UID STORE 1:* FLAGS (\\Flagged)")
        assert out[:-1] == [
            b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))",
            b"* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
            b"* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))",
        ]
        assert await c.cmd("e STORE 1 +FLAGS (\\Bogus)") == [b"e BAD invalid flag \\Bogus"]
        await c.cmd("f EXAMINE INBOX")
        assert await c.cmd("g STORE 1 +FLAGS (\\Seen)") == [b"g NO [READ-ONLY] Mailbox is read-only"]


async def test_selected_expunge_and_uid_expunge(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv, 5)
        await c.cmd("a SELECT INBOX")
        await c.cmd("b STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
        out = await c.cmd("c UID EXPUNGE 3:5")
        assert out == [b"* 3 EXPUNGE", b"* 4 EXPUNGE", b"c OK EXPUNGE completed"]
        out = await c.cmd("d EXPUNGE")
        assert out == [b"* 2 EXPUNGE", b"d OK EXPUNGE completed"]
        out = await c.cmd("e FETCH 1:* UID")
        assert out[:-1] == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 4)"]
        await c.cmd("f STORE 1 +FLAGS (\\Deleted)")
        assert await c.cmd("g CLOSE") == [b"g OK CLOSE completed"]
        out = await c.cmd("h STATUS INBOX (MESSAGES)")
        assert out[0] == b"* STATUS INBOX (MESSAGES 1)"


async def test_selected_copy_move_with_copyuid(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv, 4)
        await c.cmd("a SELECT INBOX")
        out = await c.cmd("b COPY 1:2 Archive")
        assert re.fullmatch(rb"b OK \[COPYUID \d+ 1:2 1:2\] COPY completed", out[-1]), out
        out = await c.cmd("c UID MOVE 2:3 Trash")
        assert re.fullmatch(rb"\* OK \[COPYUID \d+ 2:3 1:2\] Moved", out[0]), out
        assert out[1:] == [b"* 2 EXPUNGE", b"* 2 EXPUNGE", b"c OK UID MOVE completed"]
        assert await c.cmd("d COPY 1 Nowhere") == [b"d NO [TRYCREATE] Target mailbox does not exist"]
        out = await c.cmd("e STATUS Trash (MESSAGES)")
        assert out[0] == b"* STATUS Trash (MESSAGES 2)"
        out = await c.cmd("f UID COPY 99 Archive")
        assert out == [b"f OK No messages"]


async def test_selected_search_and_esearch(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv, 5)
        await c.cmd("a SELECT INBOX")
        await c.cmd("b STORE 2,4 +FLAGS (\\Seen)")
        assert (await c.cmd("c SEARCH SEEN"))[0] == b"* SEARCH 2 4"
        assert (await c.cmd("d UID SEARCH UNSEEN"))[0] == b"* SEARCH 1 3 5"
        assert (await c.cmd('e SEARCH SUBJECT "message 3"'))[0] == b"* SEARCH 3"
        assert (await c.cmd("f SEARCH OR 1 5 NOT SEEN"))[0] == b"* SEARCH 1 5"
        out = await c.cmd("g SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
        assert out[0] == b'* ESEARCH (TAG "g") MIN 1 MAX 5 ALL 1,3,5 COUNT 3'
        out = await c.cmd("h UID SEARCH RETURN () BODY hello")
        assert out[0] == b'* ESEARCH (TAG "h") UID ALL 1:5'
        # SEARCHRES: SAVE then use $
        assert await c.cmd("i SEARCH RETURN (SAVE) SEEN") == [b"i OK SEARCH completed"]
        out = await c.cmd("j FETCH $ (UID)")
        assert out[:-1] == [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"]
        assert (await c.cmd("k SEARCH $ UID 4"))[0] == b"* SEARCH 4"
        assert (await c.cmd("l SEARCH LARGER 1000000"))[0] == b"* SEARCH"
        out = await c.cmd("m SEARCH CHARSET KOI8-X ALL")
        assert out == [b"m NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset KOI8-X"]
        await c.cmd("n ENABLE IMAP4rev2")
        assert (await c.cmd("o SEARCH SEEN"))[0] == b'* ESEARCH (TAG "o") ALL 2,4'


async def test_selected_condstore(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        _, c = await _setup(srv, 3)
        out = await c.cmd("a SELECT INBOX (CONDSTORE)")
        hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(out)).group(1))  # type: ignore[union-attr]
        out = await c.cmd("b STORE 1 +FLAGS (\\Flagged)")
        m = re.fullmatch(rb"\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\) MODSEQ \((\d+)\)\)", out[0])
        assert m and int(m.group(1)) > hms
        new = int(m.group(1))
        out = await c.cmd(f"c FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
        assert out[:-1] == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (%d))" % new]
        out = await c.cmd(f"d UID STORE 1,2 (UNCHANGEDSINCE {hms}) +FLAGS (\\Seen)")
        assert out[-1] == b"d OK [MODIFIED 1] Conditional STORE failed"
        assert (await c.cmd(f"e SEARCH MODSEQ {new}"))[0].startswith(b"* SEARCH 1 2 (MODSEQ ")


async def test_selected_qresync(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc, c = await _setup(srv, 4)
        out = await c.cmd("a ENABLE QRESYNC")
        assert out[0] == b"* ENABLED QRESYNC"
        out = await c.cmd("b SELECT INBOX")
        mb = await srv.store.get_mailbox(acc, "INBOX")
        assert mb is not None
        hms = mb.highestmodseq
        await c.cmd("c STORE 2 +FLAGS (\\Deleted)")
        out = await c.cmd("d EXPUNGE")
        assert out == [b"* VANISHED 2", b"d OK EXPUNGE completed"]
        await c.cmd("e STORE 3 +FLAGS (\\Seen)")
        await c.cmd("f UNSELECT")
        out = await c.cmd(f"g SELECT INBOX (QRESYNC ({mb.uidvalidity} {hms} 1:4))")
        assert b"* VANISHED (EARLIER) 2" in out
        assert any(re.fullmatch(rb"\* 3 FETCH \(UID 4 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", x) for x in out), out
        out = await c.cmd(f"h UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
        assert out[0] == b"* VANISHED (EARLIER) 2"
        assert await c.cmd("i SELECT INBOX (QRESYNC (1 2))") != []


async def test_selected_star_on_empty_mailbox_is_empty_not_bad(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        await c.cmd("a SELECT Trash")
        assert await c.cmd("b FETCH 1:* FLAGS") == [b"b OK FETCH completed"]
        assert await c.cmd("c FETCH 1 FLAGS") == [b"c BAD Invalid message sequence number"]
        assert await c.cmd("d STORE * +FLAGS (\\Seen)") == [b"d OK STORE completed"]


async def test_selected_sort_and_thread(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1, "banana"))
        await srv.deliver(acc, message(2, "apple"))
        await srv.deliver(
            acc,
            b"From: c@example.test\r\nSubject: Re: banana\r\nMessage-ID: <r1@example.test>\r\n"
            b"In-Reply-To: <m1@example.test>\r\nReferences: <m1@example.test>\r\n"
            b"Date: Mon, 08 Jan 2024 10:00:00 +0000\r\n\r\nreply\r\n",
        )
        c = await srv.connected()
        cap = await c.cmd("a CAPABILITY")
        assert b" SORT " in cap[0] and b"THREAD=REFERENCES" in cap[0]
        await c.cmd("b SELECT INBOX")
        assert (await c.cmd("c SORT (SUBJECT) UTF-8 ALL"))[0] == b"* SORT 2 1 3"
        assert (await c.cmd("d UID SORT (REVERSE ARRIVAL) UTF-8 ALL"))[0] == b"* SORT 3 2 1"
        out = await c.cmd("e SORT RETURN (MIN COUNT) (SUBJECT) UTF-8 ALL")
        assert out[0] == b'* ESEARCH (TAG "e") MIN 2 COUNT 3'
        assert (await c.cmd("f THREAD REFERENCES UTF-8 ALL"))[0] == b"* THREAD (1 3)(2)"
        assert (await c.cmd("g UID THREAD ORDEREDSUBJECT UTF-8 ALL"))[0] == b"* THREAD (1 3)(2)"


async def test_selected_bad_select_keeps_state_consistent(tmp_path: Path, backend: Backend) -> None:
    # found by the session fuzz: a BAD SELECT must not leave "selected" without a mailbox
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        await c.cmd("a SELECT INBOX")
        assert await c.cmd("b SELECT INBOX (QRESYNC (1 1))") == [
            b"b BAD QRESYNC parameter requires ENABLE QRESYNC"
        ]
        assert await c.cmd("c CLOSE") == [b"c OK CLOSE completed"]
