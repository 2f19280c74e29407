"""MULTISEARCH (RFC 7377) on both store backends: ESEARCH IN over the account's own
mailboxes only, with and without a selected mailbox."""

from __future__ import annotations

from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import Store


async def test_multisearch_only_the_users_own_mailboxes(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        bob = await srv.add_user("bob@example.test")
        await srv.deliver(acc, message(1, "budget"))
        await srv.deliver(acc, message(2, "budget"), "Archive")
        await srv.deliver(acc, message(3, "lunch"), "Archive")
        await srv.deliver(bob, message(4, "budget"))
        await srv.deliver(bob, message(5, "budget"), "Archive")
        c = await srv.connected()
        assert b" MULTISEARCH" in (await c.cmd("a0 CAPABILITY"))[0]
        inbox = await store.get_mailbox(acc, "INBOX")
        archive = await store.get_mailbox(acc, "Archive")
        assert inbox is not None and archive is not None
        # authenticated state: no mailbox selected (RFC 7377 2)
        out = await c.cmd('a1 ESEARCH IN (personal) SUBJECT "budget"')
        assert out == [
            b'* ESEARCH (TAG "a1" MAILBOX INBOX UIDVALIDITY %d) UID ALL 1' % inbox.uidvalidity,
            b'* ESEARCH (TAG "a1" MAILBOX Archive UIDVALIDITY %d) UID ALL 1'
            % archive.uidvalidity,
            b"a1 OK ESEARCH completed",
        ]
        # bob's mailbox of the same name is not searched; "Archive" is the user's own
        out = await c.cmd("a2 ESEARCH IN (mailboxes (Archive INBOX)) RETURN (COUNT) ALL")
        assert out[:-1] == [
            b'* ESEARCH (TAG "a2" MAILBOX INBOX UIDVALIDITY %d) UID COUNT 1' % inbox.uidvalidity,
            b'* ESEARCH (TAG "a2" MAILBOX Archive UIDVALIDITY %d) UID COUNT 2'
            % archive.uidvalidity,
        ]
        # the selected mailbox answers from the session's view; PARTIAL pages each result
        await c.cmd("a3 SELECT Archive")
        out = await c.cmd("a4 ESEARCH IN (selected inboxes) RETURN (PARTIAL -1:-1) ALL")
        assert out[:-1] == [
            b'* ESEARCH (TAG "a4" MAILBOX INBOX UIDVALIDITY %d) UID PARTIAL (-1:-1 1)'
            % inbox.uidvalidity,
            b'* ESEARCH (TAG "a4" MAILBOX Archive UIDVALIDITY %d) UID PARTIAL (-1:-1 2)'
            % archive.uidvalidity,
        ]
    finally:
        for cl in srv.clients:
            await cl.close()
