"""REPLACE (RFC 8508) on both store backends: the append and the expunge are one store
transaction, so a refusal (quota, the old message gone) leaves both mailboxes as they were,
and other sessions see the EXPUNGE and the new message together."""

from __future__ import annotations

from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import AppendItem, NotFound, QuotaExceeded, Store

NEW = b"Subject: edited draft\r\n\r\nversion 2\r\n"


async def _stage(store: Store, data: bytes) -> AppendItem:
    w = store.blob_writer()
    w.write(data)
    return AppendItem(await w.finish(), ("\\Draft",))


async def test_replace_message_is_one_transaction(store: Store) -> None:
    srv = Server(store)
    acc = await srv.add_user()
    uid = await srv.deliver(acc, message(1), "Drafts")
    drafts = await store.get_mailbox(acc, "Drafts")
    sent = await store.get_mailbox(acc, "Sent")
    assert drafts is not None and sent is not None
    before = await store.usage(acc)
    rec, gone = await store.replace_message(drafts.id, uid, sent.id, await _stage(store, NEW))
    assert gone == [uid]
    assert rec.mailbox_id == sent.id and rec.flags == frozenset({"\\Draft"})
    assert [r.uid for r in await store.list_messages(drafts.id)] == []
    assert [r.uid for r in await store.list_messages(sent.id)] == [rec.uid]
    after = await store.usage(acc)
    assert (after.messages, after.bytes) == (before.messages, before.bytes - len(message(1))
                                             + len(NEW))
    # the old message is gone already: nothing is appended
    try:
        await store.replace_message(drafts.id, uid, sent.id, await _stage(store, NEW))
        raise AssertionError("replace of an expunged message succeeded")
    except NotFound:
        pass
    assert len(await store.list_messages(sent.id)) == 1
    # over quota: neither the append nor the expunge happens
    await store.update_account(acc, quota_bytes=after.bytes + 10)
    big = await _stage(store, NEW + b"x" * 200)
    try:
        await store.replace_message(sent.id, rec.uid, sent.id, big)
        raise AssertionError("replace beyond the quota succeeded")
    except QuotaExceeded:
        pass
    assert [r.uid for r in await store.list_messages(sent.id)] == [rec.uid]
    assert await store.usage(acc) == after


async def test_replace_over_imap_with_a_second_session(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        for i in range(1, 4):
            await srv.deliver(acc, message(i))
        c = await srv.connected()
        watcher = await srv.connected()
        await c.cmd("a1 SELECT INBOX")
        await watcher.cmd("w1 ENABLE QRESYNC")
        await watcher.cmd("w2 SELECT INBOX")
        # RFC 8508 3.4 example shape: APPENDUID, then the expunge, then the tagged OK
        out = await c.cmd(b"a2 REPLACE 2 INBOX (\\Seen) {%d+}\r\n" % len(NEW) + NEW)
        assert out[0].startswith(b"* OK [APPENDUID ") and out[0].endswith(b" 4] Replacement message")
        assert out[1:] == [b"* 2 EXPUNGE", b"* 3 EXISTS", b"* 3 RECENT",
                           b"a2 OK REPLACE completed"]
        out = await watcher.cmd("w3 NOOP")
        assert out[:-1] == [b"* VANISHED 2", b"* 3 EXISTS", b"* 0 RECENT"]
        # the message to replace was expunged by another session after the upload began:
        # NO, and nothing was appended
        await watcher.cmd("w4 UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        c.send(b"a3 UID REPLACE 3 INBOX {%d}\r\n" % len(NEW))
        assert (await c.read_line()).startswith(b"+ ")
        await watcher.cmd("w5 UID EXPUNGE 3")
        c.send(NEW + b"\r\n")
        out = await c.read_until(rb"a3 ")
        assert out[-1] == b"a3 NO [EXPUNGEISSUED] The message to replace was expunged"
        inbox = await store.get_mailbox(acc, "INBOX")
        assert inbox is not None
        assert [r.uid for r in await store.list_messages(inbox.id)] == [1, 4]
        # read-only and the wrong state refuse before the upload
        await c.cmd("a4 EXAMINE INBOX")
        out = await c.cmd("a5 UID REPLACE 4 INBOX {5}")
        assert out[-1] == b"a5 NO [READ-ONLY] Mailbox is read-only"
        await c.cmd("a6 UNSELECT")
        out = await c.cmd("a7 REPLACE 1 INBOX {5}")
        assert out[-1] == b"a7 BAD REPLACE: no mailbox selected"
    finally:
        for cl in srv.clients:
            await cl.close()
