"""QUOTA=RES-MESSAGE (RFC 9208 5.2) on both store backends: the MESSAGE resource in
GETQUOTA/GETQUOTAROOT, and the limit enforced in the store for APPEND, COPY and delivery."""

from __future__ import annotations

import pytest
from imap_harness import Server, message

from mailwright.imapd import handlers  # noqa: F401 - registers the handlers
from mailwright.store.api import DeliveryTarget, QuotaExceeded, Store


async def test_message_quota(store: Store) -> None:
    srv = Server(store)
    try:
        acc = await srv.add_user()
        await srv.deliver(acc, message(1))
        c = await srv.connected()
        assert b" QUOTA=RES-MESSAGE" in (await c.cmd("a0 CAPABILITY"))[0]
        assert (await c.cmd('a1 GETQUOTA ""'))[0] == b'* QUOTA "" ()'
        await store.set_message_quota(acc, 2)
        assert await store.message_quota(acc) == 2
        out = await c.cmd("a2 GETQUOTAROOT INBOX")
        assert out[:-1] == [b'* QUOTAROOT INBOX ""', b'* QUOTA "" (MESSAGE 1 2)']
        await store.update_account(acc, quota_bytes=1 << 20)
        out = await c.cmd('a3 GETQUOTA ""')
        assert out[0] == b'* QUOTA "" (STORAGE 1 1024 MESSAGE 1 2)'
        data = message(2)
        out = await c.cmd(b"a4 APPEND INBOX {%d+}\r\n" % len(data) + data)
        assert out[-1].startswith(b"a4 OK [APPENDUID ")
        # the third message is refused before its upload (a synchronizing literal)
        out = await c.cmd(b"a5 APPEND INBOX {%d}" % len(data))
        assert out == [b"a5 NO [OVERQUOTA] Message quota exceeded"]
        # ... and by the store for COPY and for delivery
        await c.cmd("a6 SELECT INBOX")
        out = await c.cmd("a7 COPY 1 Archive")
        assert out == [b"a7 NO [OVERQUOTA] Quota exceeded"]
        w = store.blob_writer()
        w.write(message(3))
        blob = await w.finish()
        with pytest.raises(QuotaExceeded):
            await store.deliver(blob, [DeliveryTarget(acc)])
        # a move inside the account does not add messages
        out = await c.cmd("a8 MOVE 1 Archive")
        assert out[-1] == b"a8 OK MOVE completed"
        await store.set_message_quota(acc, 0)
        out = await c.cmd("a9 COPY 1 Archive")
        assert out[-1].startswith(b"a9 OK [COPYUID ")
    finally:
        for cl in srv.clients:
            await cl.close()
