"""One accepted message is one unit of work: its local copies and its queue entries commit
together or not at all (on both backends), so a client retrying after a 4xx cannot get a second
local copy. Failures are real ones the database raises (a trigger refusing queue rows) or the
file system causes (a staged file gone), never a mocked store.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from tests.smtpd.harness import refuse_queue_rows

from mailwright.store.api import (
    DeliveryTarget,
    LocalCopies,
    QueueAddition,
    QueueRecipient,
    StagedBlob,
    Store,
)

Stage = Callable[[bytes], Coroutine[Any, Any, StagedBlob]]

async def setup(store: Store) -> int:
    await store.add_domain("example.test")
    account = await store.add_account("bob@example.test", "x")
    return account.id


def addition(blob: StagedBlob) -> QueueAddition:
    return QueueAddition(
        blob, "alice@example.test",
        {"remote.test": [QueueRecipient("x@remote.test", "scheduled")]},
    )


async def local_count(store: Store, account_id: int) -> int:
    box = await store.get_mailbox(account_id, "INBOX")
    assert box is not None
    return len(await store.list_messages(box.id))


async def test_smtpd_unit_of_work_queue_refused_leaves_no_local_copy(
    store: Store, stage: Stage
) -> None:
    account_id = await setup(store)
    local = await stage(b"Return-Path: <a>\r\nSubject: local\r\n\r\nx\r\n")
    remote = await stage(b"Subject: remote\r\n\r\nx\r\n")
    refuse_queue_rows(store)
    with pytest.raises(Exception, match="queue refused"):
        await store.deliver_and_queue(
            LocalCopies(local, (DeliveryTarget(account_id),)), addition(remote)
        )
    assert await local_count(store, account_id) == 0
    assert (await store.usage(account_id)).messages == 0
    assert await store.queue_list() == []

    # the client's retry: exactly one local copy and one queue entry
    refuse_queue_rows(store, on=False)
    local = await stage(b"Return-Path: <a>\r\nSubject: local\r\n\r\nx\r\n")
    remote = await stage(b"Subject: remote\r\n\r\nx\r\n")
    records, ids = await store.deliver_and_queue(
        LocalCopies(local, (DeliveryTarget(account_id),)), addition(remote)
    )
    assert len(records) == 1 and len(ids) == 1
    assert await local_count(store, account_id) == 1
    [entry] = await store.queue_list()
    assert entry.blob_id == remote.blob_id
    assert await store.read_blob(remote.blob_id) == b"Subject: remote\r\n\r\nx\r\n"


async def test_smtpd_unit_of_work_lost_staging_file_leaves_no_local_copy(
    store: Store, stage: Stage
) -> None:
    account_id = await setup(store)
    local = await stage(b"Subject: local\r\n\r\nx\r\n")
    remote = await stage(b"Subject: remote, its staging file removed\r\n\r\nx\r\n")
    store.discard_staged(remote)  # the staging file is lost
    with pytest.raises(Exception):  # noqa: B017 - each backend names it its way
        await store.deliver_and_queue(
            LocalCopies(local, (DeliveryTarget(account_id),)), addition(remote)
        )
    assert await local_count(store, account_id) == 0
    assert await store.queue_list() == []


async def test_smtpd_unit_of_work_one_blob_for_both_parts(store: Store, stage: Stage) -> None:
    account_id = await setup(store)
    blob = await stage(b"Subject: same content\r\n\r\nx\r\n")
    records, ids = await store.deliver_and_queue(
        LocalCopies(blob, (DeliveryTarget(account_id),)), addition(blob)
    )
    assert len(records) == 1 and len(ids) == 1
    # both references hold: the queue entry going away leaves the local copy readable
    assert await store.queue_delete(ids[0])
    await store.collect_garbage()
    assert await store.read_blob(blob.blob_id) == b"Subject: same content\r\n\r\nx\r\n"


async def test_smtpd_send_as_grants(store: Store, tmp_path: Path) -> None:
    account_id = await setup(store)
    await store.grant_send_as(account_id, "ceo@example.test")
    await store.grant_send_as(account_id, "ceo@example.test")  # idempotent
    await store.grant_send_as(account_id, "bob@other.test")
    assert await store.list_send_as(account_id) == [
        (account_id, "bob@other.test"), (account_id, "ceo@example.test")
    ]
    assert await store.revoke_send_as(account_id, "bob@other.test")
    assert not await store.revoke_send_as(account_id, "bob@other.test")
    assert await store.list_send_as() == [(account_id, "ceo@example.test")]
    await store.delete_account(account_id)
    assert await store.list_send_as() == []
