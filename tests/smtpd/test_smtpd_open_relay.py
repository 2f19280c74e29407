"""Open-relay battery (issue 3, item 3): every trick refused, nothing ever queued.

Run against the MX and against submission without authentication, with the real outbound queue
attached (so a mistake would show up as a queue entry), with and without a catch-all alias.
"""

from __future__ import annotations

import pytest
from tests.smtpd.harness import DOMAIN, Conversation, add_user

from mailwright.app import AppContext

TRICKS = [
    "victim@elsewhere.test",
    "victim@ELSEWHERE.Test",
    "victim@elsewhere.test.",
    "victim%elsewhere.test@example.test",
    "victim%elsewhere.test%example.test@example.test",
    "elsewhere.test!victim@example.test",
    "example.test!elsewhere.test!victim@example.test",
    '"victim@elsewhere.test"@example.test',
    '"victim%elsewhere.test"@example.test',
    '"victim@elsewhere.test@"@example.test',
    "@example.test:victim@elsewhere.test",
    "@example.test,@relay.test:victim@elsewhere.test",
    "victim@[192.0.2.7]",
    "victim@[127.0.0.1]",
    "victim@[IPv6:::1]",
    "victim@[IPv6:2001:db8::7]",
    "victim@elsewhere.test@example.test",
    "victim@example.test@elsewhere.test",
    "victim@example.test.elsewhere.test",
    "victim@sub.example.test",
    "victim@example.tes",
    "victim@xn--mnchen-3ya.test",
    "victim@münchen.test",
    "victim@elsewhere.test>",
    "victim@elsewhere.test> NOTIFY=NEVER",
    "<victim@elsewhere.test>",
    "victim@ elsewhere.test",
    "victim@elsewhere..test",
    "victim@.elsewhere.test",
    "victim\\@elsewhere.test@example.test",
    "postmaster@elsewhere.test",
    "elsewhere.test:victim@example.test",
    "victim@elsewhere.test;example.test",
    "victim@elsewhere.test,alice@example.test",
]

REFUSALS = ("550 5.1.1", "554 5.7.1", "501 5.1.3", "550 5.1.2", "553 5.1.3", "501 5.5.4",
            "553 5.6.7", "530 5.7.0", "503 5.5.1")  # fmt: skip


async def _battery(ctx: AppContext, mode: str, catch_all: bool) -> None:
    await add_user(ctx.store, "alice")
    if catch_all:
        await ctx.store.add_alias(f"@{DOMAIN}", [f"alice@{DOMAIN}"])
    for trick in TRICKS:
        # A connection per trick, so the error limit never hides a reply.
        c = Conversation(ctx, mode, tls=True)
        await c.send("EHLO relay-tester.test")
        mail = await c.cmd("MAIL FROM:<spammer@remote.test> SMTPUTF8")
        reply = await c.cmd(f"RCPT TO:<{trick}>")
        if catch_all and mode == "smtp" and reply.startswith("250"):
            # A catch-all may take odd local parts at our own domain: that is local delivery
            # to alice, never relaying, as the empty queue below proves.
            assert trick.endswith(f"@{DOMAIN}"), trick
            await c.send("DATA")
            assert (await c.cmd("Subject: relay test\n\nx\n."))[:3] == "250"
            continue
        assert reply.startswith(REFUSALS), (trick, reply, mail)
    assert await ctx.store.queue_list() == []


@pytest.mark.parametrize("catch_all", [False, True], ids=["plain", "catch-all"])
@pytest.mark.parametrize("mode", ["smtp", "submission"])
async def test_open_relay_battery_refused(
    ctx_outbound: AppContext, mode: str, catch_all: bool
) -> None:
    await _battery(ctx_outbound, mode, catch_all)


async def test_open_relay_mx_refuses_remote_even_with_auth_attempt(
    ctx_outbound: AppContext,
) -> None:
    ctx = ctx_outbound
    await add_user(ctx.store, "alice")
    c = Conversation(ctx, "smtp", tls=True)
    await c.send("EHLO relay-tester.test")
    # AUTH PLAIN alice / correct password: the MX does not offer AUTH at all.
    assert (await c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNlIGJhdHRlcnk="))[
        :3
    ] == "503"
    await c.send("MAIL FROM:<alice@example.test>")
    assert await c.cmd("RCPT TO:<victim@elsewhere.test>") == "554 5.7.1 Relay access denied"
    assert await ctx.store.queue_list() == []


async def test_open_relay_local_recipient_still_accepted(ctx_outbound: AppContext) -> None:
    ctx = ctx_outbound
    await add_user(ctx.store, "alice")
    c = Conversation(ctx, "smtp")
    await c.send("EHLO relay-tester.test")
    await c.send("MAIL FROM:<x@remote.test>")
    for ok in ("alice@example.test", "ALICE@EXAMPLE.TEST", '"alice"@example.test',
               "@relay.test:alice@example.test", "alice+tag@example.test"):  # fmt: skip
        assert await c.cmd(f"RCPT TO:<{ok}>") == "250 2.1.5 Ok", ok
