"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 4) on both store backends: a search with the
UPDATE return option is kept up to date while another session changes the mailbox, with
ADDTO/REMOVEFROM for its result and new MIN/MAX/COUNT values, until CANCELUPDATE."""

from __future__ import annotations

from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import Store


def _esearch(out: list[bytes]) -> list[bytes]:
    return [line for line in out if line.startswith(b"* ESEARCH")]


async def test_context_search_and_sort_updates(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        for i in range(1, 4):
            await srv.deliver(acc, message(i))
        c = await srv.connected()
        other = await srv.connected()
        caps = (await c.cmd("a0 CAPABILITY"))[0]
        assert b" CONTEXT=SEARCH" in caps and b" CONTEXT=SORT" in caps
        await c.cmd("a1 SELECT INBOX")
        await other.cmd("o1 SELECT INBOX")
        # RFC 5267 4.3 example shapes
        out = await c.cmd("a2 UID SEARCH RETURN (UPDATE) UNSEEN")
        assert out == [b'* ESEARCH (TAG "a2") UID ALL 1:3', b"a2 OK UID SEARCH completed"]
        out = await c.cmd("a3 UID SORT RETURN (UPDATE) (REVERSE ARRIVAL) UTF-8 UNDELETED")
        assert out == [b'* ESEARCH (TAG "a3") UID ALL 3,2,1', b"a3 OK UID SORT completed"]
        out = await c.cmd("a4 UID SEARCH RETURN (CONTEXT UPDATE COUNT) ALL")
        assert out[0] == b'* ESEARCH (TAG "a4") UID COUNT 3'
        # the server declines updates by message number and with PARTIAL
        out = await c.cmd("a5 SEARCH RETURN (UPDATE) ALL")
        assert out == [b'* ESEARCH (TAG "a5") ALL 1:3',
                       b'a5 OK [NOUPDATE "a5"] Search completed; no updates']
        await other.cmd("o2 STORE 2 +FLAGS.SILENT (\\Seen \\Deleted)")
        out = _esearch(await c.cmd("a6 NOOP"))
        assert out == [b'* ESEARCH (TAG "a2") UID REMOVEFROM (0 2)',
                       b'* ESEARCH (TAG "a3") UID REMOVEFROM (0 2)']
        await srv.deliver(acc, message(4))
        out = _esearch(await c.cmd("a7 NOOP"))
        assert out == [b'* ESEARCH (TAG "a2") UID ADDTO (0 4)',
                       b'* ESEARCH (TAG "a3") UID ADDTO (1 4)',
                       b'* ESEARCH (TAG "a4") UID COUNT 4']
        # an expunge of a message already out of a result changes nothing of it
        await other.cmd("o3 EXPUNGE")
        out = _esearch(await c.cmd("a8 NOOP"))
        assert out == [b'* ESEARCH (TAG "a4") UID COUNT 3']
        # our own changes count too
        out = _esearch(await c.cmd("a9 UID STORE 4 +FLAGS.SILENT (\\Seen)"))
        assert out == [b'* ESEARCH (TAG "a2") UID REMOVEFROM (0 4)']
        assert (await c.cmd('b1 CANCELUPDATE "a2" "a4"'))[-1] == b"b1 OK CANCELUPDATE completed"
        await srv.deliver(acc, message(5))
        out = _esearch(await c.cmd("b2 NOOP"))
        assert out == [b'* ESEARCH (TAG "a3") UID ADDTO (1 5)']
        assert (await c.cmd('b3 CANCELUPDATE "a2"'))[-1] == (
            b"b3 NO No search with tag a2 is being updated")
        # leaving the mailbox ends every context
        await c.cmd("b4 UNSELECT")
        await c.cmd("b5 SELECT INBOX")
        await srv.deliver(acc, message(6))
        assert _esearch(await c.cmd("b6 NOOP")) == []
    finally:
        for cl in srv.clients:
            await cl.close()
