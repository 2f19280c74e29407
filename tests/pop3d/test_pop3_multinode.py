"""POP3 across two nodes on one PostgreSQL database (issue 8): the maildrop lock holds
across nodes and one node's UPDATE is what the other node sees."""

from __future__ import annotations

import pytest

from mailwright.pop3d.session import Pop3Session
from mailwright.proto import pop3
from mailwright.store.api import Store
from tests.pop3d.harness import PASSWORD, add_message, add_user, fast_authenticator

pytestmark = pytest.mark.postgres

Nodes = tuple[Store, Store]


def session(store: Store, owner: str) -> Pop3Session:
    return Pop3Session(
        store,
        fast_authenticator(store),
        peer_ip="127.0.0.1",
        loopback=True,
        tls=False,
        tls_available=False,
        owner=owner,
    )


async def login(s: Pop3Session) -> pop3.Reply:
    await s.handle(pop3.User("bob@example.test"))
    return await s.handle(pop3.Pass(PASSWORD))


async def test_pop3_multinode_lock_and_update(nodes: Nodes) -> None:
    a, b = nodes
    account = await add_user(a, "bob")
    for i in range(3):
        await add_message(a, account, b"Subject: %d\r\n\r\nx\r\n" % i)
    on_a = session(a, "node-a/1")
    assert (await login(on_a)).encode().startswith(b"+OK Logged in, 3 messages")
    on_b = session(b, "node-b/1")
    assert await login(on_b) == pop3.Err(
        "Maildrop is in use by another POP3 session", pop3.Code.IN_USE
    )
    await on_b.close()
    await on_a.handle(pop3.Retr(1))
    await on_a.handle(pop3.Dele(2))
    assert await on_a.handle(pop3.Quit()) == pop3.Ok("Logging out, 1 messages deleted")
    on_b = session(b, "node-b/2")
    assert (await login(on_b)).encode().startswith(b"+OK Logged in, 2 messages")
    listing = await on_b.handle(pop3.Uidl())
    assert isinstance(listing, pop3.MultiLine) and len(listing.lines) == 2
    await on_b.close()
    box = await b.get_mailbox(account.id, "INBOX")
    assert box is not None
    records = await b.list_messages(box.id)
    assert [r.uid for r in records] == [1, 3] and records[0].seen
