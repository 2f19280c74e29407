"""Sending from the webmail through the submission session, on a real store and queue."""

from __future__ import annotations

import pytest

from mailwright.app import AppContext
from mailwright.smtpd.listener import services_for
from mailwright.web.webmail.compose import ComposeError, Draft, Upload
from mailwright.web.webmail.submit import SendRefused, identities, save_draft, submit
from tests.smtpd.harness import add_user


async def _box(ctx: AppContext, account_id: int, name: str) -> list[bytes]:
    box = await ctx.store.get_mailbox(account_id, name)
    assert box is not None
    return [await ctx.store.read_blob(r.blob_id) for r in await ctx.store.list_messages(box.id)]


async def test_submit_local_and_remote_with_sent_copy(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    bob = await add_user(ctx.store, "bob")
    draft = Draft(from_addr="alice@example.test", to="bob@example.test",
                  cc="someone@remote.example", bcc="hidden@remote.example",
                  subject="Hello", body="Hi Bob",
                  attachments=(Upload("a.txt", "text/plain", b"attached"),))
    sent = await submit(services_for(ctx), alice, draft, peer_ip="127.0.0.1")
    assert sent.queue_reply.startswith("250")
    (inbox,) = await _box(ctx, bob.id, "INBOX")
    assert b"Subject: Hello" in inbox and b"Received: from webmail" in inbox
    assert b"hidden@remote.example" not in inbox and sent.message_id.encode() in inbox
    entries = await ctx.store.queue_list()
    rcpts = sorted(r.address for e in entries for r in e.recipients)
    assert rcpts == ["hidden@remote.example", "someone@remote.example"]
    (copy,) = await _box(ctx, alice.id, "Sent")
    assert b"Bcc: hidden@remote.example" in copy and sent.message_id.encode() in copy
    assert sent.sent_copy is not None and "\\Seen" in sent.sent_copy.flags


async def test_submit_refuses_foreign_from(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    await add_user(ctx.store, "bob")
    draft = Draft(from_addr="bob@example.test", to="bob@example.test", body="x")
    with pytest.raises(SendRefused) as info:
        await submit(services_for(ctx), alice, draft, peer_ip="127.0.0.1")
    assert info.value.reply.code == 553
    assert await _box(ctx, alice.id, "Sent") == []


async def test_submit_unknown_local_recipient(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    draft = Draft(from_addr="alice@example.test", to="nobody@example.test", body="x")
    with pytest.raises(SendRefused) as info:
        await submit(services_for(ctx), alice, draft, peer_ip="127.0.0.1")
    assert info.value.recipient == "nobody@example.test" and info.value.reply.code == 550


async def test_submit_needs_recipient(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    with pytest.raises(ComposeError):
        await submit(services_for(ctx), alice, Draft(from_addr="alice@example.test"),
                     peer_ip="127.0.0.1")


async def test_identities_with_alias_and_grant(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    await ctx.store.add_alias("info@example.test", ["alice@example.test"])
    await ctx.store.grant_send_as(alice.id, "boss@example.test")
    assert await identities(ctx.store, ctx.directory, alice) == [
        "alice@example.test", "boss@example.test", "info@example.test"]
    bob = await add_user(ctx.store, "bob")
    sent = await submit(services_for(ctx), alice,
                        Draft(from_addr="boss@example.test", to="bob@example.test", body="x"),
                        peer_ip="127.0.0.1")
    assert sent.queue_reply.startswith("250")
    assert len(await _box(ctx, bob.id, "INBOX")) == 1


async def test_save_draft_replaces_previous(ctx: AppContext) -> None:
    alice = await add_user(ctx.store, "alice")
    first = await save_draft(ctx.store, alice, Draft(from_addr="alice@example.test",
                                                     subject="v1"), hostname="h")
    second = await save_draft(ctx.store, alice, Draft(from_addr="alice@example.test",
                                                      bcc="x@example.org", subject="v2"),
                              hostname="h", replaces=[first.uid])
    (only,) = await _box(ctx, alice.id, "Drafts")
    assert b"Subject: v2" in only and b"Bcc: x@example.org" in only
    assert {"\\Draft", "\\Seen"} <= second.flags
