"""Rules that old (IMAP4rev1) and new (IMAP4rev2) clients both rely on, each against its RFC:
\\Recent kept per mailbox (RFC 3501 2.3.2), STORE on messages expunged elsewhere (RFC 2180
4.2.1), LSUB with "%" (RFC 3501 6.3.9), LIST selection options (RFC 5258 3)."""

from __future__ import annotations

import re

from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import Store


def _recent_line(out: list[bytes]) -> bytes | None:
    return next((line for line in out if line.endswith(b" RECENT")), None)


async def test_recent_first_session_to_see_a_message_gets_it(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1))
        await srv.deliver(acc, message(2))
        a = await srv.connected()
        b = await srv.connected()
        watcher = await srv.connected()
        # STATUS RECENT counts what no session has taken yet (RFC 3501 6.3.10)
        out = await watcher.cmd("w1 STATUS INBOX (MESSAGES RECENT)")
        assert out[0] == b"* STATUS INBOX (MESSAGES 2 RECENT 2)"
        # EXAMINE sees them as recent without taking them (RFC 3501 6.3.2)
        out = await b.cmd("b0 EXAMINE INBOX")
        assert _recent_line(out) == b"* 2 RECENT"
        out = await a.cmd("a1 SELECT INBOX")
        assert _recent_line(out) == b"* 2 RECENT"
        assert (await a.cmd("a2 FETCH 1:* (FLAGS)"))[:-1] == [
            b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))",
        ]
        out = await b.cmd("b1 SELECT INBOX")
        assert _recent_line(out) == b"* 0 RECENT"
        assert (await b.cmd("b2 FETCH 1 (FLAGS)"))[0] == b"* 1 FETCH (FLAGS ())"
        assert (await b.cmd("b3 SEARCH RECENT"))[0] == b"* SEARCH"
        assert (await b.cmd("b4 SEARCH OLD"))[0] == b"* SEARCH 1 2"
        # a new message goes to the first session that learns of it: here b
        await srv.deliver(acc, message(3))
        assert (await b.cmd("b5 NOOP"))[:-1] == [b"* 3 EXISTS", b"* 1 RECENT"]
        assert (await a.cmd("a3 NOOP"))[:-1] == [b"* 3 EXISTS", b"* 2 RECENT"]
        assert (await a.cmd("a4 SEARCH RECENT"))[0] == b"* SEARCH 1 2"
        assert (await b.cmd("b6 SEARCH RECENT"))[0] == b"* SEARCH 3"
        # NEW is RECENT UNSEEN (RFC 3501 6.4.4)
        await a.cmd("a5 STORE 1 +FLAGS.SILENT (\\Seen)")
        assert (await a.cmd("a6 SEARCH NEW"))[0] == b"* SEARCH 2"
        assert (await a.cmd("a7 UID SEARCH OLD"))[0] == b"* SEARCH 3"
        assert (await watcher.cmd("w2 STATUS INBOX (RECENT)"))[0] == b"* STATUS INBOX (RECENT 0)"
        # an IMAP4rev2 session neither sees nor takes \Recent (RFC 9051 removed it)
        await srv.deliver(acc, message(4))
        rev2 = await srv.connected()
        await rev2.cmd("r1 ENABLE IMAP4rev2")
        out = await rev2.cmd("r2 SELECT INBOX")
        assert _recent_line(out) is None
        assert (await rev2.cmd("r3 FETCH 4 (FLAGS)"))[0] == b"* 4 FETCH (FLAGS ())"
        assert (await rev2.cmd("r4 STATUS INBOX (MESSAGES RECENT)"))[0] == (
            b"* STATUS INBOX (MESSAGES 4)"
        )
        assert (await watcher.cmd("w3 STATUS INBOX (RECENT)"))[0] == b"* STATUS INBOX (RECENT 1)"
        # the flag cannot be set or cleared by a client (RFC 3501 2.3.2)
        out = await a.cmd("a8 STORE 1:* -FLAGS.SILENT (\\Recent)")
        assert out == [b"* 4 EXISTS", b"* 3 RECENT", b"a8 OK STORE completed"]
        out = await a.cmd("a9 FETCH 1:* (FLAGS)")
        assert out[:-1] == [
            b"* 1 FETCH (FLAGS (\\Recent \\Seen))", b"* 2 FETCH (FLAGS (\\Recent))",
            b"* 3 FETCH (FLAGS ())", b"* 4 FETCH (FLAGS (\\Recent))",
        ]
        # a new session after everyone has seen them: none is recent any more
        late = await srv.connected()
        assert _recent_line(await late.cmd("l1 SELECT INBOX")) == b"* 0 RECENT"
    finally:
        for c in srv.clients:
            await c.close()


async def test_store_on_messages_expunged_elsewhere_answers_ok(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        for i in range(1, 5):
            await srv.deliver(acc, message(i))
        a = await srv.connected()
        b = await srv.connected()
        await b.cmd("b1 SELECT INBOX")  # b takes \\Recent
        await a.cmd("a1 SELECT INBOX")
        await b.cmd("b2 STORE 2,3 +FLAGS.SILENT (\\Deleted)")
        await b.cmd("b3 EXPUNGE")
        # RFC 2180 4.2.1: the STORE goes through for what is left, OK (no EXPUNGEISSUED);
        # RFC 9051 7.5.1: no EXPUNGE while a STORE by sequence number runs
        out = await a.cmd("a2 STORE 1:4 +FLAGS (\\Flagged)")
        assert out == [
            b"* 1 FETCH (FLAGS (\\Flagged))",
            b"* 4 FETCH (FLAGS (\\Flagged))",
            b"a2 OK STORE completed",
        ]
        # only ghosts: still OK, nothing stored
        assert await a.cmd("a3 STORE 2:3 +FLAGS.SILENT (\\Seen)") == [b"a3 OK STORE completed"]
        out = await a.cmd("a4 UID FETCH 1:* (FLAGS)")
        assert out[:-1] == [
            b"* 2 EXPUNGE", b"* 2 EXPUNGE",
            b"* 1 FETCH (UID 1 FLAGS (\\Flagged))",
            b"* 2 FETCH (UID 4 FLAGS (\\Flagged))",
        ]
    finally:
        for c in srv.clients:
            await c.close()


async def test_lsub_percent_returns_unsubscribed_parents_noselect(store: Store) -> None:
    srv = Server(store)
    try:
        await srv.add_user()
        c = await srv.connected()
        assert (await c.cmd("a CREATE Lists/python/dev"))[-1].startswith(b"a OK [MAILBOXID (F")
        await c.cmd("b SUBSCRIBE Lists/python/dev")
        await c.cmd("c SUBSCRIBE Gone/child")  # subscribed, the mailbox does not exist
        # RFC 3501 6.3.9: "%" returns the unsubscribed parent, \Noselect
        out = await c.cmd('d LSUB "" %')
        assert b'* LSUB (\\Noselect) "/" Lists' in out
        assert b'* LSUB (\\Noselect) "/" Gone' in out
        assert not any(b"Lists/" in line or b"Gone/" in line for line in out)
        out = await c.cmd('e LSUB "" Lists/%')
        assert out[:-1] == [b'* LSUB (\\Noselect) "/" Lists/python']
        # "*" reaches the subscribed names themselves; no parent is added
        out = await c.cmd('f LSUB "" *')
        assert b'* LSUB () "/" Lists/python/dev' in out
        assert b'* LSUB (\\Noselect) "/" Gone/child' in out
        assert not any(re.search(rb'"/" (Lists|Lists/python|Gone)$', line) for line in out)
        # a subscribed parent is listed as itself
        await c.cmd("g SUBSCRIBE Lists")
        out = await c.cmd('h LSUB "" %')
        assert b'* LSUB () "/" Lists' in out
    finally:
        for c in srv.clients:
            await c.close()


async def test_list_recursivematch_alone_is_bad(store: Store) -> None:
    srv = Server(store)
    try:
        await srv.add_user()
        c = await srv.connected()
        # RFC 5258 3: RECURSIVEMATCH alone, or only with REMOTE, MUST be answered BAD
        assert (await c.cmd('a LIST (RECURSIVEMATCH) "" *'))[-1].startswith(b"a BAD ")
        assert (await c.cmd('b LIST (RECURSIVEMATCH REMOTE) "" *'))[-1].startswith(b"b BAD ")
        assert (await c.cmd('c LIST (REMOTE RECURSIVEMATCH) "" %'))[-1].startswith(b"c BAD ")
        out = await c.cmd('d LIST (REMOTE SUBSCRIBED RECURSIVEMATCH) "" %')
        assert out[-1] == b"d OK LIST completed"
    finally:
        for c in srv.clients:
            await c.close()


async def test_append_literal8_is_stored_exactly_as_sent(store: Store) -> None:
    from mailwright.store import meta_parser

    store.meta_parser = meta_parser()  # type: ignore[attr-defined]  # BODYSTRUCTURE needs it
    srv = Server(store)
    try:
        await srv.add_user()
        c = await srv.connected()
        body = b"\x00\x01\nline one\nline two\r\n\xff\xfe tail\n"
        msg = (
            b"From: a@example.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
            b"\r\n" + body
        )
        # RFC 3516 4.4: APPEND with a literal8; the server keeps the octets as they are
        c.send(b"a APPEND INBOX ~{%d}\r\n" % len(msg))
        assert (await c.read_until(rb"\+ "))[-1].startswith(b"+ ")
        assert (await c.cmd(msg, tag="a"))[-1].startswith(b"a OK [APPENDUID ")
        # a text literal still has its bare LF stored as CRLF
        text = b"From: b@example.test\nSubject: text\n\nhello\n"
        out = await c.cmd(b"b APPEND INBOX {%d+}\r\n%s" % (len(text), text))
        assert out[-1].startswith(b"b OK")
        await c.cmd("c SELECT INBOX")
        out = await c.cmd("d FETCH 1 (RFC822.SIZE BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[])")
        assert out[0] == (
            b"* 1 FETCH (RFC822.SIZE %d BINARY.SIZE[1] %d BINARY[1] ~{%d}\r\n%s BINARY[] ~{%d}\r\n%s)"
            % (len(msg), len(body), len(body), body, len(msg), msg)
        ), out[0]
        # BODY[] is a plain literal, which cannot hold NUL (RFC 9051 4.3): NUL is shown as 0x80,
        # as Dovecot does; every other octet, bare LF included, is as sent
        out = await c.cmd("d2 FETCH 1 (BODY.PEEK[])")
        shown = msg.replace(b"\x00", b"\x80")
        assert out[0] == b"* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(shown), shown)
        out = await c.cmd("e FETCH 2 (RFC822.SIZE BODY.PEEK[])")
        crlf = text.replace(b"\n", b"\r\n")
        assert out[0] == b"* 2 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n%s)" % (
            len(crlf), len(crlf), crlf)
    finally:
        for c in srv.clients:
            await c.close()


async def test_esearch_modseq_follows_min_max(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        for i in range(1, 6):
            await srv.deliver(acc, message(i))
        c = await srv.connected()
        await c.cmd("a SELECT INBOX (CONDSTORE)")
        modseq: dict[int, int] = {}
        for n in (4, 2, 3):  # changed in this order: 3 has the highest mod-sequence
            out = await c.cmd(f"s{n} STORE {n} +FLAGS (\\Flagged)")
            modseq[n] = int(re.search(rb"MODSEQ \((\d+)\)", out[0]).group(1))  # type: ignore[union-attr]
        assert modseq[4] < modseq[2] < modseq[3]

        async def esearch(returns: str) -> bytes:
            return (await c.cmd(f"x SEARCH RETURN ({returns}) FLAGGED MODSEQ 1"))[0]

        # RFC 4731 3.2 and its examples
        assert await esearch("MIN") == b'* ESEARCH (TAG "x") MIN 2 MODSEQ %d' % modseq[2]
        assert await esearch("MAX") == b'* ESEARCH (TAG "x") MAX 4 MODSEQ %d' % modseq[4]
        assert await esearch("MIN MAX") == (
            b'* ESEARCH (TAG "x") MIN 2 MAX 4 MODSEQ %d' % modseq[2])
        assert await esearch("MIN COUNT") == (
            b'* ESEARCH (TAG "x") MIN 2 COUNT 3 MODSEQ %d' % modseq[3])
        assert await esearch("") == b'* ESEARCH (TAG "x") ALL 2:4 MODSEQ %d' % modseq[3]
        out = await c.cmd("y UID SEARCH RETURN (MAX) FLAGGED MODSEQ 1")
        assert out[0] == b'* ESEARCH (TAG "y") UID MAX 4 MODSEQ %d' % modseq[4]
        # RFC 7162 3.1.5: plain SEARCH gives the highest of all found
        out = await c.cmd("z SEARCH FLAGGED MODSEQ 1")
        assert out[0] == b"* SEARCH 2 3 4 (MODSEQ %d)" % modseq[3]
    finally:
        for c in srv.clients:
            await c.close()


async def test_status_deleted_is_advertised_and_counts_deleted(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1), flags=("\\Deleted",))
        await srv.deliver(acc, message(2))
        await srv.deliver(acc, message(3), flags=("\\Deleted", "\\Seen"))
        c = await srv.connected()
        caps = (await c.cmd("a CAPABILITY"))[0].split()
        assert b"STATUS=DELETED" in caps
        # RFC 9051 6.3.11 / STATUS=DELETED: the number of messages with \Deleted
        out = await c.cmd("b STATUS INBOX (MESSAGES DELETED)")
        assert out[0] == b"* STATUS INBOX (MESSAGES 3 DELETED 2)"
        out = await c.cmd('c LIST "" INBOX RETURN (STATUS (DELETED))')
        assert out[1] == b"* STATUS INBOX (DELETED 2)"
    finally:
        for c in srv.clients:
            await c.close()


def test_recent_is_kept_as_uid_ranges() -> None:
    # one range per claim, however many messages: memory does not grow with the mailbox
    from mailwright.imapd.view import SelectedView
    from mailwright.store.api import Mailbox, MessageRecord

    mb = Mailbox(1, 1, "INBOX", 7, 100001, 1, None, True, 0)
    recs = [MessageRecord(1, u, 1, frozenset(), 0.0, 10, f"b{u}") for u in range(1, 100001)]
    view = SelectedView(mb, recs, False)
    view.add_recent(40001, 100000)
    view.add_recent(100001, 100003)  # adjacent: merged
    view.add_recent(100010, 100010)
    assert view.recent == [(40001, 100003), (100010, 100010)]
    assert view.recent_count() == 60000
    assert view.is_recent(40001) and view.is_recent(100000) and not view.is_recent(40000)
    assert view.is_recent(100010) and not view.is_recent(100005)
    view.remove_expunged([40001, 5])
    assert view.recent_count() == 59999
