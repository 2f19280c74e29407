"""Learning from what users do: moves into and out of Junk, $Junk/$NotJunk, Sent, on every
backend through the store, and from a real IMAP client over a socket."""

from __future__ import annotations

import asyncio
import imaplib
from pathlib import Path

import pytest

import mailwright.spam.trainer as trainer_module
from mailwright.spam.classifier import Classifier
from mailwright.spam.service import SpamFilter
from mailwright.spam.settings import SpamSettings
from mailwright.spam.trainer import Trainer
from mailwright.store.api import Account, FlagOp, MessageRecord, Store
from tests.integration.imap_support import PASSWORD, start_imap_server

from .messages import ham, spam


async def _setup(store: Store) -> tuple[Account, Trainer, dict[str, int]]:
    await store.add_domain("example.test")
    account = await store.add_account("bob@example.test", "x")
    boxes = {m.name: m.id for m in await store.list_mailboxes(account.id)}
    return account, Trainer(store, Classifier(store), "mail.example.test"), boxes


async def _append(store: Store, mailbox_id: int, raw: bytes, flags: tuple[str, ...] = ()) -> MessageRecord:
    writer = store.blob_writer()
    writer.write(raw)
    return await store.append(mailbox_id, await writer.finish(), flags)


async def test_trainer_move_into_junk_trains_spam(store: Store) -> None:
    account, trainer, boxes = await _setup(store)
    rec = await _append(store, boxes["INBOX"], spam(0))
    assert await trainer.sync_all() == 0  # a message arriving in INBOX teaches nothing
    await store.move(boxes["INBOX"], [rec.uid], boxes["Junk"])
    assert await trainer.sync_all() == 1
    assert await store.spam_totals([0, account.id]) == {0: (0, 1), account.id: (0, 1)}
    assert await store.spam_label(account.id, rec.blob_id) == "spam"
    assert await trainer.sync_all() == 0  # nothing twice


async def test_trainer_move_out_of_junk_trains_ham(store: Store) -> None:
    account, trainer, boxes = await _setup(store)
    filed = b"X-Spam-Status: Yes, score=6.0 required=5.0 verdict=junk\r\n" + ham(3)
    rec = await _append(store, boxes["Junk"], filed)
    await trainer.sync_all()
    assert await store.spam_label(account.id, rec.blob_id) == "filed"
    assert await store.spam_totals([0]) == {0: (0, 0)}  # the filter's own choice is no lesson
    await store.move(boxes["Junk"], [1], boxes["INBOX"])
    assert await trainer.sync_all() == 1
    assert await store.spam_totals([0, account.id]) == {0: (1, 0), account.id: (1, 0)}
    assert await store.spam_senders(account.id, [("from", "alice@friends.example")]) == {
        ("from", "alice@friends.example"): (1, 0)
    }


async def test_trainer_junk_to_trash_is_no_judgement(store: Store) -> None:
    _account, trainer, boxes = await _setup(store)
    filed = b"X-Spam-Status: Yes, score=6.0 required=5.0 verdict=junk\r\n" + spam(1)
    await _append(store, boxes["Junk"], filed)
    await trainer.sync_all()
    await store.move(boxes["Junk"], [1], boxes["Trash"])
    assert await trainer.sync_all() == 0
    assert await store.spam_totals([0]) == {0: (0, 0)}


async def test_trainer_junk_flags_and_a_change_of_mind(store: Store) -> None:
    account, trainer, boxes = await _setup(store)
    rec = await _append(store, boxes["INBOX"], spam(2))
    await trainer.sync_all()
    await store.store_flags(boxes["INBOX"], [rec.uid], FlagOp.ADD, ["$Junk"])
    assert await trainer.sync_all() == 1
    assert await store.spam_totals([0]) == {0: (0, 1)}
    await store.store_flags(boxes["INBOX"], [rec.uid], FlagOp.REPLACE, ["$NotJunk"])
    assert await trainer.sync_all() == 1
    assert await store.spam_totals([0, account.id]) == {0: (1, 0), account.id: (1, 0)}


async def test_trainer_sent_mail_makes_contacts(store: Store) -> None:
    account, trainer, boxes = await _setup(store)
    sent = (b"From: bob@example.test\r\nTo: Carol <carol@friends.example>\r\n"
            b"Subject: plans\r\n\r\nsee you\r\n")  # fmt: skip
    await _append(store, boxes["Sent"], sent)
    assert await trainer.sync_all() == 1
    assert await store.spam_senders(account.id, [("contact", "carol@friends.example")]) == {
        ("contact", "carol@friends.example"): (1, 0)
    }
    spam_filter = SpamFilter(SpamSettings(), store, None, "mail.example.test")
    judgement = await spam_filter.judge(ham(1, sender="carol@friends.example"),
                                        recipients=["bob@example.test"], account_ids=[account.id])  # fmt: skip
    assert "KNOWN_CONTACT" in [r.name for r in judgement.reasons]


async def test_trainer_what_it_learnt_changes_verdicts(store: Store) -> None:
    account, _, boxes = await _setup(store)
    spam_filter = SpamFilter(SpamSettings(), store, None, "mail.example.test")
    trainer = Trainer(store, spam_filter.classifier, "mail.example.test")
    before = await spam_filter.judge(spam(30), recipients=["bob@example.test"], account_ids=[account.id])
    assert before.verdict == "ham"  # untrained: no opinion
    for i in range(12):
        await _append(store, boxes["Junk"], spam(i))
        await _append(store, boxes["Archive"], ham(i))
    await trainer.sync_all()
    assert await store.spam_totals([account.id]) == {account.id: (12, 12)}
    after = await spam_filter.judge(spam(30), recipients=["bob@example.test"], account_ids=[account.id])
    assert after.verdict == "junk", after.lines()
    kept = await spam_filter.judge(ham(30), recipients=["bob@example.test"], account_ids=[account.id])
    assert kept.verdict == "ham", kept.lines()


async def test_trainer_learns_from_a_real_imap_client(tmp_path: Path) -> None:
    server = await start_imap_server(tmp_path)
    try:
        account = await server.add_user("bob")
        await server.deliver(account, spam(4))
        await server.deliver(account, ham(5))
        trainer = Trainer(server.ctx.store, Classifier(server.ctx.store), server.ctx.hostname)
        await trainer.sync_all()

        def client() -> None:
            imap = imaplib.IMAP4(server.host, server.port)
            imap.login("bob@example.test", PASSWORD)
            imap.select("INBOX")
            assert imap.uid("COPY", "1", "Junk")[0] == "OK"
            imap.uid("STORE", "1", "+FLAGS", r"(\Deleted)")
            imap.expunge()
            assert imap.uid("STORE", "2", "+FLAGS", "($NotJunk)")[0] == "OK"
            imap.logout()

        await asyncio.to_thread(client)
        assert await trainer.sync_all() == 2
        assert await server.ctx.store.spam_totals([account.id]) == {account.id: (1, 1)}
    finally:
        await server.stop()


async def test_trainer_bounded_passes_never_stall_on_one_modseq(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    account, trainer, boxes = await _setup(store)
    monkeypatch.setattr(trainer_module, "MAX_LESSONS_PER_PASS", 2)
    uids = [(await _append(store, boxes["INBOX"], spam(i))).uid for i in range(5)]
    await trainer.sync_all()
    await store.store_flags(boxes["INBOX"], uids, FlagOp.ADD, ["$Junk"])  # one MODSEQ for all
    taught = 0
    for _ in range(5):
        taught += await trainer.sync_all()
    assert taught == 5
    assert await store.spam_totals([account.id]) == {account.id: (0, 5)}
