"""An SMTP message to 50 local recipients, on both backends: one blob and one unit of work
for all of them, and a recipient whose mailbox turns out full at the end of DATA refused alone
(the others keep their copy, the client gets its 250, the sender a DSN), as a Postfix that
delivers over LMTP to Dovecot does (RFC 2033 4.2 answers per recipient; RFC 3464 reports)."""

from __future__ import annotations

from tests.smtpd.harness import DOMAIN, Conversation, add_user, body_of, inbox
from tests.smtpd.test_smtpd_session import mx_send
from tests.store.test_store_fanout import blob_rows

from mailwright.app import AppContext

FANOUT = 50
BODY = "Subject: to all of you\nFrom: alice@example.test\n\n" + "x" * 4000


async def test_smtpd_fanout_one_blob_for_fifty_recipients(ctx: AppContext) -> None:
    rcpts = [f"fan{i:02d}@{DOMAIN}" for i in range(FANOUT)]
    for r in rcpts:
        await add_user(ctx.store, r.partition("@")[0])
    lines = await mx_send(Conversation(ctx), "alice@remote.test", rcpts, BODY)
    assert lines[-1].startswith("250 2.0.0 Ok: queued as ")
    stored = {m for r in rcpts for m in await inbox(ctx.store, r)}
    assert len(stored) == 1  # the same bytes in every mailbox
    assert body_of(stored.pop()).startswith(b"Subject: to all of you\r\n")
    [(_, refs)] = blob_rows(ctx.store)
    assert refs == FANOUT


async def test_smtpd_fanout_full_mailbox_refused_alone(ctx_outbound: AppContext) -> None:
    ctx = ctx_outbound
    await add_user(ctx.store, "alice")
    rcpts = [f"fan{i:02d}@{DOMAIN}" for i in range(FANOUT)]
    for r in rcpts:
        # fan07's quota lets RCPT through (nothing used, no SIZE) but not the message
        await add_user(ctx.store, r.partition("@")[0], quota=600 if r.startswith("fan07") else 0)
    lines = await mx_send(Conversation(ctx), f"alice@{DOMAIN}", rcpts, BODY)
    assert lines[-1].startswith("250 2.0.0 Ok: queued as ")
    queue_id = lines[-1].rpartition(" ")[2]
    for r in rcpts:
        assert len(await inbox(ctx.store, r)) == (0 if r.startswith("fan07") else 1), r
    # the refusal's report, committed with the copies: one entry, due at once
    [entry] = await ctx.store.queue_list()
    assert entry.queue_id == queue_id
    assert [(r.address, r.status) for r in entry.recipients] == [(f"fan07@{DOMAIN}", "permfail")]
    [(_, refs)] = blob_rows(ctx.store)
    assert refs == FANOUT  # 49 copies and the report's entry
    assert ctx.outbound is not None
    await ctx.outbound.run_once()
    [dsn] = await inbox(ctx.store, f"alice@{DOMAIN}")
    assert b"report-type=delivery-status" in dsn
    assert b"Final-Recipient: rfc822; fan07@example.test" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.2.2" in dsn
    assert await ctx.store.queue_list() == []


async def test_smtpd_fanout_every_mailbox_full_is_a_4xx(ctx_outbound: AppContext) -> None:
    """Nobody took it: the client keeps the message and tries again later (no DSN, no copy)."""
    ctx = ctx_outbound
    rcpts = [f"full{i}@{DOMAIN}" for i in range(3)]
    for r in rcpts:
        await add_user(ctx.store, r.partition("@")[0], quota=600)
    lines = await mx_send(Conversation(ctx), "x@remote.test", rcpts, BODY)
    assert lines[-1] == "452 4.2.2 Mailbox full"
    assert await ctx.store.queue_list() == []
    for r in rcpts:
        assert await inbox(ctx.store, r) == []
