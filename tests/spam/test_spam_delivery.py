"""Per-account copies at local delivery (real store, both backends; real directory and Sieve):
each account's Sieve script sees its own copy, with its own X-Spam-Status."""

from __future__ import annotations

from mailwright.accounts.directory import Directory
from mailwright.delivery.ingest import stage_bytes
from mailwright.delivery.local import LocalDelivery
from mailwright.queue.service import Outbound
from mailwright.sieve.delivery import SieveFilter, SieveSettings
from mailwright.store.api import Store

BODY = b"From: p@offers.example\r\nTo: bob@example.test, carol@example.test\r\nSubject: offer\r\n\r\nbuy\r\n"
SCRIPT = ('require ["fileinto", "mailbox"];\n'
          'if header :contains "X-Spam-Status" "Yes" { fileinto :create "Spam-by-script"; }')  # fmt: skip


async def test_spam_delivery_sieve_sees_each_accounts_own_copy(store: Store) -> None:
    await store.add_domain("example.test")
    bob = (await store.add_account("bob@example.test", "x")).id
    carol = (await store.add_account("carol@example.test", "x")).id
    directory = Directory(store)
    delivery = LocalDelivery(store, directory)
    outbound = Outbound(store, None, hostname="mx.example.test", owner="test",  # type: ignore[arg-type]
                        local=delivery)  # fmt: skip
    delivery.filter = SieveFilter(
        store, SieveSettings(), hostname="mx.example.test", outbound=outbound,
        deliver_local=delivery.deliver, is_local=directory.is_local_domain,
    )  # fmt: skip
    for account in (bob, carol):
        await store.sieve_put(account, "main", SCRIPT)
        await store.sieve_activate(account, "main")
    lenient = await stage_bytes(store, b"X-Spam-Status: No, score=1.0\r\n" + BODY)
    junk = await stage_bytes(store, b"X-Spam-Status: Yes, score=9.0\r\n" + BODY)
    report, _ = await delivery.deliver_and_queue(
        lenient, ["bob@example.test", "carol@example.test"], None,
        variants={bob: (junk, "Junk"), carol: (lenient, "INBOX")},
    )  # fmt: skip
    assert len(report.records) == 2

    async def folder(account: int, name: str) -> list[bytes]:
        mb = await store.get_mailbox(account, name)
        if mb is None:
            return []
        return [await store.read_blob(r.blob_id) for r in await store.list_messages(mb.id)]

    (bobs,) = await folder(bob, "Spam-by-script")  # his script saw his copy's "Yes"
    assert bobs.startswith(b"X-Spam-Status: Yes")
    (carols,) = await folder(carol, "INBOX")
    assert carols.startswith(b"X-Spam-Status: No")
    assert await folder(carol, "Spam-by-script") == [] and await folder(bob, "INBOX") == []
