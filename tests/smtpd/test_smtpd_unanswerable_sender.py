"""The MX refuses reverse-paths no bounce could ever reach (RFC 5321 4.1.2, 6.1).

`<"a>b\\"c"@attacker.test>` to a forwarding alias: the relay refused it, the bounce to it
failed, and the mail vanished. Such a sender is now refused at MAIL with 553 5.1.7; ordinary
quoted local parts (a space, a comma) are still accepted.
"""

from __future__ import annotations

import pytest
from tests.smtpd.harness import Conversation, add_user, inbox

from mailwright.app import AppContext


@pytest.mark.parametrize("sender", [
    '"a>b\\"c"@attacker.test',
    '"a\\\\b"@attacker.test',
    '"<x>"@attacker.test',
])
async def test_smtpd_mx_refuses_unanswerable_sender(ctx: AppContext, sender: str) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO client.remote.test")
    lines = await c.send(f"MAIL FROM:<{sender}>")
    assert lines == ["553 5.1.7 Sender address rejected: no reply could reach it"]
    assert await c.send("RCPT TO:<alice@example.test>") == ["503 5.5.1 Error: need MAIL command"]
    assert await inbox(ctx.store, "alice@example.test") == []


async def test_smtpd_mx_accepts_plain_quoted_sender(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO client.remote.test")
    assert await c.send('MAIL FROM:<"john doe"@remote.test>') == ["250 2.1.0 Ok"]
    assert await c.send("RCPT TO:<alice@example.test>") == ["250 2.1.5 Ok"]
