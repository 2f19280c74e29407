"""SMTP session policy on a real store, SQLite and PostgreSQL: MX and submission, delivery,
quota, AUTH."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from tests.smtpd.harness import DOMAIN, PASSWORD, Conversation, add_user, inbox
from tests.support.backends import Backend

from mailwright.app import AppContext

PLAIN = base64.b64encode(f"\0alice@{DOMAIN}\0{PASSWORD}".encode()).decode()


async def mx_send(c: Conversation, sender: str, rcpts: list[str], body: str) -> list[str]:
    await c.send("EHLO client.remote.test")
    lines = await c.send(f"MAIL FROM:<{sender}>")
    for r in rcpts:
        lines += await c.send(f"RCPT TO:<{r}>")
    lines += await c.send("DATA")
    lines += await c.send(body + "\n.")
    return lines


async def test_smtpd_mx_delivers_with_trace_headers(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    assert c.greeting == b"220 mail.example.test ESMTP\r\n"
    lines = await mx_send(c, "bob@remote.test", ["alice@example.test"], "Subject: hi\n\nHello")
    assert lines[:3] == ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"]
    assert lines[3].startswith("250 2.0.0 Ok: queued as ")
    [msg] = await inbox(ctx.store, "alice@example.test")
    head, _, rest = msg.partition(b"Subject: hi\r\n")
    assert rest == b"\r\nHello\r\n"
    assert head.startswith(b"Return-Path: <bob@remote.test>\r\nReceived: from client.remote.test ")
    assert b"([192.0.2.10])\r\n\tby mail.example.test (Mailwright) with ESMTP id " in head
    assert b"\tfor <alice@example.test>;\r\n" in head


async def test_smtpd_mx_unknown_user_and_relay(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO client.remote.test")
    await c.send("MAIL FROM:<bob@remote.test>")
    assert await c.cmd("RCPT TO:<nobody@example.test>") == (
        "550 5.1.1 Recipient address rejected: User unknown"
    )
    assert await c.cmd("RCPT TO:<alice@elsewhere.test>") == "554 5.7.1 Relay access denied"
    assert await c.cmd("RCPT TO:<ALICE@Example.Test>") == "250 2.1.5 Ok"


async def test_smtpd_mx_offers_no_auth(ctx: AppContext) -> None:
    c = Conversation(ctx, tls=True)
    lines = await c.send("EHLO client.remote.test")
    assert not any("AUTH" in line for line in lines)
    assert await c.cmd(f"AUTH PLAIN {PLAIN}") == "503 5.5.1 Error: authentication not enabled"


async def test_smtpd_mx_aliases_catchall_plus(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    await add_user(ctx.store, "bob")
    await ctx.store.add_alias(f"team@{DOMAIN}", [f"alice@{DOMAIN}", f"bob@{DOMAIN}"])
    c = Conversation(ctx)
    lines = await mx_send(
        c, "x@remote.test", ["team@example.test", "alice+news@example.test"], "Subject: t\n\nx"
    )
    assert lines[-1].startswith("250 2.0.0")
    assert len(await inbox(ctx.store, "alice@example.test")) == 1  # once, not twice
    assert len(await inbox(ctx.store, "bob@example.test")) == 1
    assert await c.cmd("MAIL FROM:<x@remote.test>") == "250 2.1.0 Ok"
    assert await c.cmd("RCPT TO:<random@example.test>") == (
        "550 5.1.1 Recipient address rejected: User unknown"
    )
    await ctx.store.add_alias(f"@{DOMAIN}", [f"bob@{DOMAIN}"])
    assert await c.cmd("RCPT TO:<random@example.test>") == "250 2.1.5 Ok"


async def test_smtpd_mx_postmaster_without_domain(ctx: AppContext) -> None:
    await add_user(ctx.store, "postmaster")
    c = Conversation(ctx)
    lines = await mx_send(c, "", ["Postmaster"], "Subject: pm\n\nx")
    assert lines[-1].startswith("250 2.0.0")
    [msg] = await inbox(ctx.store, "postmaster@example.test")
    assert msg.startswith(b"Return-Path: <>\r\n")


async def test_smtpd_mx_quota(ctx: AppContext) -> None:
    small = await add_user(ctx.store, "small", quota=600)
    c = Conversation(ctx)
    await c.send("EHLO client.remote.test")
    await c.send("MAIL FROM:<x@remote.test> SIZE=1000")
    assert await c.cmd("RCPT TO:<small@example.test>") == (
        "552 5.2.2 Message exceeds the mailbox quota"
    )
    await c.send("RSET")
    await c.send("MAIL FROM:<x@remote.test>")
    assert await c.cmd("RCPT TO:<small@example.test>") == "250 2.1.5 Ok"
    await c.send("DATA")
    # Found only when the store charges the message: the whole transaction fails, temporarily.
    assert await c.cmd("Subject: big\n\n" + "x" * 800 + "\n.") == "452 4.2.2 Mailbox full"
    assert await inbox(ctx.store, "small@example.test") == []
    lines = await mx_send(c, "x@remote.test", ["small@example.test"], "Subject: s\n\nsmall")
    assert lines[-1].startswith("250 2.0.0")
    await ctx.store.update_account(small.id, quota_bytes=100)
    await c.send("MAIL FROM:<x@remote.test>")
    assert await c.cmd("RCPT TO:<small@example.test>") == "452 4.2.2 Mailbox full"


async def test_smtpd_mx_8bit_and_bare_lf_canonical(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO client.remote.test")
    await c.send("MAIL FROM:<jürgen@münchen.test> SMTPUTF8 BODY=8BITMIME")
    assert await c.cmd("RCPT TO:<alice@example.test>") == "250 2.1.5 Ok"
    await c.send("DATA")
    body = "Subject: Grüße\r\n\r\nline one\nline two\r\n..dot\r\n.\r\n".encode()
    lines = await c.send(body)
    assert lines[-1].startswith("250 2.0.0")
    [msg] = await inbox(ctx.store, "alice@example.test")
    assert msg.startswith("Return-Path: <jürgen@münchen.test>\r\nReceived: ".encode())
    assert b" with UTF8SMTP id " in msg
    assert msg.endswith("Subject: Grüße\r\n\r\nline one\r\nline two\r\n.dot\r\n".encode())


async def test_smtpd_mx_bdat(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO client.remote.test")
    lines = await c.send(
        b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
        b"BDAT 14\r\nSubject: b\r\n\r\nBDAT 5 LAST\r\n.ok\r\n"
    )
    assert lines[:3] == ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: 14 octets received"]
    assert lines[3].startswith("250 2.0.0 Ok: queued as")
    [msg] = await inbox(ctx.store, "alice@example.test")
    assert msg.endswith(b"Subject: b\r\n\r\n.ok\r\n")


async def test_smtpd_received_header_cannot_be_injected(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO evil)(\x0bX-Injected:yes")  # control characters never reach the session
    lines = await mx_send(c, "x@remote.test", ["alice@example.test"], "Subject: s\n\nx")
    assert lines[-1].startswith("250")
    c2 = Conversation(ctx)
    await c2.send("EHLO evil;by(x)X-Injected:yes")
    await c2.send("MAIL FROM:<x@remote.test>")
    await c2.send("RCPT TO:<alice@example.test>")
    await c2.send("DATA")
    assert (await c2.cmd("Subject: s\n\nx\n."))[:3] == "250"
    msgs = await inbox(ctx.store, "alice@example.test")
    assert b"Received: from evil_by_x_X-Injected:yes ([192.0.2.10])" in msgs[-1]
    for m in msgs:
        assert b"\nX-Injected" not in m


async def test_smtpd_submission_requires_tls_and_auth(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx, "submission")
    lines = await c.send("EHLO laptop")
    assert "250 STARTTLS" in lines and not any("AUTH" in x for x in lines)
    assert await c.cmd("MAIL FROM:<alice@example.test>") == "530 5.7.0 Authentication required"
    assert await c.cmd(f"AUTH PLAIN {PLAIN}") == "503 5.5.1 Error: authentication not enabled"
    assert await c.cmd("STARTTLS") == "220 2.0.0 Ready to start TLS"
    lines = await c.send("EHLO laptop")
    assert "250 AUTH PLAIN LOGIN" in lines
    assert await c.cmd("MAIL FROM:<alice@example.test>") == "530 5.7.0 Authentication required"
    assert await c.cmd(f"AUTH PLAIN {PLAIN}") == "235 2.7.0 Authentication successful"
    assert await c.cmd("MAIL FROM:<alice@example.test>") == "250 2.1.0 Ok"


async def test_smtpd_submission_auth_failures(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx, "submission", tls=True)
    await c.send("EHLO laptop")
    bad = base64.b64encode(f"\0alice@{DOMAIN}\0wrong".encode()).decode()
    assert await c.cmd(f"AUTH PLAIN {bad}") == "535 5.7.8 Error: authentication failed"
    other = base64.b64encode(f"bob@{DOMAIN}\0alice@{DOMAIN}\0{PASSWORD}".encode()).decode()
    assert await c.cmd(f"AUTH PLAIN {other}") == "535 5.7.8 Error: authentication failed"
    user = base64.b64encode(f"alice@{DOMAIN}".encode()).decode()
    pw = base64.b64encode(PASSWORD.encode()).decode()
    assert await c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert await c.cmd(user) == "334 UGFzc3dvcmQ6"
    assert await c.cmd(pw) == "235 2.7.0 Authentication successful"


async def test_smtpd_submission_sender_must_be_own(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    await add_user(ctx.store, "bob")
    await ctx.store.add_alias(f"sales@{DOMAIN}", [f"alice@{DOMAIN}"])
    c = Conversation(ctx, "submission", tls=True)
    await c.send("EHLO laptop")
    await c.send(f"AUTH PLAIN {PLAIN}")
    assert await c.cmd("MAIL FROM:<bob@example.test>") == (
        "553 5.7.1 Sender address rejected: not owned by user"
    )
    assert (await c.cmd("MAIL FROM:<alice@elsewhere.test>"))[:3] == "553"
    assert await c.cmd("MAIL FROM:<Alice@Example.TEST>") == "250 2.1.0 Ok"
    await c.send("RSET")
    assert await c.cmd("MAIL FROM:<sales@example.test>") == "250 2.1.0 Ok"
    await c.send("RSET")
    assert await c.cmd("MAIL FROM:<alice+tag@example.test>") == "250 2.1.0 Ok"


async def test_smtpd_submission_local_and_remote_without_outbound(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    await add_user(ctx.store, "bob")
    c = Conversation(ctx, "submission", tls=True)
    await c.send("EHLO laptop")
    await c.send(f"AUTH PLAIN {PLAIN}")
    await c.send("MAIL FROM:<alice@example.test>")
    assert await c.cmd("RCPT TO:<someone@remote.test>") == (
        "451 4.3.0 Remote delivery is not available at the moment, try again later"
    )
    assert await c.cmd("RCPT TO:<bob@example.test>") == "250 2.1.5 Ok"
    await c.send("DATA")
    assert (await c.cmd("Subject: x\n\nhi bob\n."))[:3] == "250"
    [msg] = await inbox(ctx.store, "bob@example.test")
    assert b" with ESMTPSA id " in msg


async def test_smtpd_submission_remote_goes_to_queue(ctx_outbound: AppContext) -> None:
    ctx = ctx_outbound
    await add_user(ctx.store, "alice")
    await add_user(ctx.store, "bob")
    c = Conversation(ctx, "submission", tls=True)
    await c.send("EHLO laptop")
    await c.send(f"AUTH PLAIN {PLAIN}")
    lines = await c.send(
        "MAIL FROM:<alice@example.test> RET=HDRS ENVID=abc\n"
        "RCPT TO:<Carol@Remote.Test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Carol@Remote.Test\n"
        "RCPT TO:<bob@example.test>\n"
        "DATA"
    )
    assert lines == ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok",
                     "354 End data with <CR><LF>.<CR><LF>"]  # fmt: skip
    assert (await c.cmd("Subject: x\n\nhello\n."))[:3] == "250"
    [entry] = await ctx.store.queue_list()
    assert entry.sender == "alice@example.test" and entry.domain == "remote.test"
    assert entry.ret == "HDRS" and entry.envid == "abc"
    [r] = entry.recipients
    assert r.address == "Carol@remote.test" and r.notify == "SUCCESS,FAILURE"
    assert r.orcpt == "RFC822;Carol@Remote.Test"
    queued = await ctx.store.read_blob(entry.blob_id)
    assert queued.startswith(b"Received: from laptop ") and b"Return-Path" not in queued
    [local] = await inbox(ctx.store, "bob@example.test")
    assert local.startswith(b"Return-Path: <alice@example.test>\r\n")


async def test_smtpd_mx_never_queues(ctx_outbound: AppContext) -> None:
    ctx = ctx_outbound
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO relay.test")
    await c.send("MAIL FROM:<x@remote.test>")
    assert await c.cmd("RCPT TO:<victim@elsewhere.test>") == "554 5.7.1 Relay access denied"
    assert await ctx.store.queue_list() == []


@pytest.mark.parametrize("mode", ["smtp", "submission"])
async def test_smtpd_too_big_message_refused(ctx: AppContext, mode: str) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx, mode, tls=True, max_message_size=1000)
    await c.send("EHLO client")
    if mode == "submission":
        await c.send(f"AUTH PLAIN {PLAIN}")
    await c.send("MAIL FROM:<alice@example.test>")
    await c.send("RCPT TO:<alice@example.test>")
    await c.send("DATA")
    assert await c.cmd("Subject: big\n\n" + "x" * 2000 + "\n.") == (
        "552 5.3.4 Error: message file too big"
    )
    assert await inbox(ctx.store, "alice@example.test") == []


async def test_smtpd_mx_records_authentication_results(ctx: AppContext) -> None:
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    forged = "Authentication-Results: mail.example.test; dkim=pass\n"
    lines = await mx_send(c, "x@remote.test", ["alice@example.test"], forged + "Subject: ar\n\nx")
    assert lines[-1].startswith("250 2.0.0")
    [msg] = await inbox(ctx.store, "alice@example.test")
    lines_ = msg.split(b"\r\n")
    assert lines_[0].startswith(b"Return-Path: ") and lines_[1].startswith(b"Received: ")
    assert msg.count(b"Authentication-Results: mail.example.test") == 1  # the forged one is gone
    assert b"dkim=pass" not in msg
    assert msg.endswith(b"Subject: ar\r\n\r\nx\r\n")


async def test_smtpd_whole_message_spills_past_the_memory_bound(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailwright.delivery.spool as spool_module

    monkeypatch.setattr(spool_module, "MEMORY_LIMIT", 100)
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    body = "Subject: big\n\n" + "\n".join(f"line {i}" for i in range(500))
    lines = await mx_send(c, "x@remote.test", ["alice@example.test"], body)
    assert lines[-1].startswith("250 2.0.0")
    [msg] = await inbox(ctx.store, "alice@example.test")
    assert msg.endswith(body.replace("\n", "\r\n").encode() + b"\r\n")


async def test_smtpd_submission_signs_remote_copy(ctx_outbound: AppContext) -> None:
    from mailwright.mailauth import KeyStore

    ctx = ctx_outbound
    KeyStore(ctx.config.server.data_dir).generate(DOMAIN, algorithm="ed25519")
    await add_user(ctx.store, "alice")
    await add_user(ctx.store, "bob")
    c = Conversation(ctx, "submission", tls=True)
    await c.send("EHLO laptop")
    await c.send(f"AUTH PLAIN {PLAIN}")
    await c.send("MAIL FROM:<alice@example.test>\nRCPT TO:<carol@remote.test>")
    await c.send("RCPT TO:<bob@example.test>\nDATA")
    reply = await c.cmd("From: alice@example.test\nTo: carol@remote.test\nSubject: s\n\nhi\n.")
    assert reply.startswith("250 2.0.0")
    [entry] = await ctx.store.queue_list()
    queued = await ctx.store.read_blob(entry.blob_id)
    assert queued.startswith(b"Received: ") and b"\r\nDKIM-Signature: " in queued
    [local] = await inbox(ctx.store, "bob@example.test")
    assert b"DKIM-Signature" not in local


async def test_smtpd_auth_ban_after_repeated_failures(ctx: AppContext) -> None:
    from mailwright.accounts.authenticator import Authenticator

    ctx.authenticator = Authenticator(
        ctx.store, failures_before_ban=3, ban_time=3600, base_delay=0.001, max_delay=0.002
    )
    await add_user(ctx.store, "alice")
    bad = base64.b64encode(f"\0alice@{DOMAIN}\0wrong".encode()).decode()
    for _ in range(3):
        c = Conversation(ctx, "submission", tls=True, peer_ip="198.51.100.7")
        await c.send("EHLO laptop")
        assert (await c.cmd(f"AUTH PLAIN {bad}"))[:3] == "535"
    # Banned now: even the right password fails from that address, not from another one.
    c = Conversation(ctx, "submission", tls=True, peer_ip="198.51.100.7")
    await c.send("EHLO laptop")
    assert (await c.cmd(f"AUTH PLAIN {PLAIN}"))[:3] == "535"
    other = Conversation(ctx, "submission", tls=True, peer_ip="198.51.100.8")
    await other.send("EHLO laptop")
    assert (await other.cmd(f"AUTH PLAIN {PLAIN}"))[:3] == "235"


async def test_smtpd_repeated_errors_end_the_session(ctx: AppContext) -> None:
    c = Conversation(ctx)
    await c.send("EHLO client")
    lines: list[str] = []
    for _ in range(25):
        lines += await c.send("RCPT TO:<x@example.test>")
        if c.core.closed:
            break
    assert lines[-1] == "421 4.7.0 mail.example.test Error: too many errors"
    assert c.core.closed


async def test_smtpd_submission_mail_before_ehlo_gets_530(ctx: AppContext) -> None:
    c = Conversation(ctx, "submission", tls=True)
    assert await c.cmd("MAIL FROM:<alice@example.test>") == "530 5.7.0 Authentication required"
    mx = Conversation(ctx, "smtp")
    assert await mx.cmd("MAIL FROM:<a@remote.test>") == "503 5.5.1 Error: send HELO/EHLO first"


PIECES = [
    "alice", "bob", "Alice", "x", "", "a.b", "a..b", '"q t"', '"a@b"', "a%b", "b!a", "+tag",
    "δοκιμή", "\u00e9", "postmaster", "@", "<", ">", ":", ",", "[", "]", "\\", "IPv6:", "::1",
    "127.0.0.1", "example.test", "EXAMPLE.TEST", "elsewhere.test", "xn--mnchen-3ya.test",
    "münchen.test", "-bad.test", "a" * 70, ".", " ", "=", "SIZE=10", "BODY=8BITMIME",
    "SMTPUTF8", "NOTIFY=NEVER", "ORCPT=rfc822;a+40b", "RET=FULL", "ENVID=x",
]  # fmt: skip
VERBS = ["MAIL FROM:", "RCPT TO:", "EHLO ", "HELO ", "AUTH PLAIN ", "BDAT ", "VRFY ", "DATA",
         "RSET", "NOOP", "STARTTLS", "QUIT"]  # fmt: skip


@pytest.mark.parametrize("mode", ["smtp", "submission"])
async def test_smtpd_random_sessions_never_crash(ctx_outbound: AppContext, mode: str) -> None:
    """Random, mostly malformed sessions against the real session and store: every answer is
    a reply, nothing raises, nothing is queued from the MX."""
    import random
    import re

    await add_user(ctx_outbound.store, "alice")
    rng = random.Random(5321)
    line_re = re.compile(r"^[2-5]\d\d[ -]")
    for _ in range(60):
        c = Conversation(ctx_outbound, mode, tls=rng.random() < 0.5, max_message_size=2000)
        await c.send("EHLO fuzz.test")
        if mode == "submission" and rng.random() < 0.7:
            await c.send(f"AUTH PLAIN {PLAIN}")
        for _ in range(rng.randint(1, 12)):
            verb = rng.choice(VERBS)
            arg = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))
            if verb.endswith(":") and rng.random() < 0.7:
                arg = "<" + arg + ">" + (" " + rng.choice(PIECES) if rng.random() < 0.3 else "")
            lines = await c.send((verb + arg).encode("utf-8", "replace") + b"\r\n")
            if c.core.state.name == "DATA_CONTENT":
                lines += await c.send(rng.choice([b"x\r\n.\r\n", b"a\n.\nb\r\n.\r\n",
                                                  b"\r.\r\n.\r\n"]))  # fmt: skip
            if c.core.state.name == "BDAT_CHUNK":
                lines += await c.send(b"y" * 50)
            assert all(line_re.match(x) for x in lines), lines
            if c.core.closed:
                break
        c.session.close()
    if mode == "smtp":
        assert await ctx_outbound.store.queue_list() == []


async def test_smtpd_store_failure_is_a_temporary_error(tmp_path: Path, backend: Backend) -> None:
    from tests.smtpd.conftest import _ctx

    ctx = await _ctx(tmp_path, outbound=False, backend=backend)
    await add_user(ctx.store, "alice")
    c = Conversation(ctx)
    await c.send("EHLO client")
    assert await c.cmd("MAIL FROM:<x@remote.test>") == "250 2.1.0 Ok"
    await ctx.store.close()  # the database goes away under the session
    assert await c.cmd("RCPT TO:<alice@example.test>") == (
        "451 4.3.0 Local error in processing, try again later"
    )
    assert await c.cmd("NOOP") == "250 2.0.0 Ok"


async def test_smtpd_submission_from_policy_on_bdat(ctx: AppContext) -> None:
    # RFC 3030: the same end-of-data checks for BDAT; the header may arrive split in chunks.
    await add_user(ctx.store, "alice")
    await add_user(ctx.store, "bob")
    await ctx.store.add_domain("other.test")
    c = Conversation(ctx, "submission", tls=True)
    await c.send("EHLO laptop")
    await c.send(f"AUTH PLAIN {PLAIN}")

    async def bdat(header: bytes) -> str:
        await c.send("MAIL FROM:<alice@example.test>\nRCPT TO:<bob@example.test>")
        first, rest = header[:7], header[7:] + b"\r\nhi\r\n"
        lines = await c.send(b"BDAT %d\r\n%s" % (len(first), first))
        lines += await c.send(b"BDAT %d LAST\r\n%s" % (len(rest), rest))
        return lines[-1]

    reply = await bdat(b"From: CEO <carol@other.test>\r\nSubject: x\r\n")
    assert reply.startswith("550 5.7.1") and "carol@other.test" in reply
    assert (await bdat(b"From: alice@example.test\r\nSubject: y\r\n")).startswith("250 2.0.0")
    [stored] = await inbox(ctx.store, "bob@example.test")
    assert b"\r\nSubject: y\r\n" in stored and b"carol" not in stored


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_smtpd_signature_of_a_spilled_message_verifies(
    ctx_outbound: AppContext, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    # The signed bytes are the completed header (Date:, Message-ID: added) and the rest read
    # back from the spool file: the signature must verify over exactly what is queued.
    import dkim

    import mailwright.delivery.spool as spool_module
    from mailwright.mailauth import KeyStore

    monkeypatch.setattr(spool_module, "MEMORY_LIMIT", 100)
    ctx = ctx_outbound
    key = KeyStore(ctx.config.server.data_dir).generate(DOMAIN, algorithm=algorithm)
    await add_user(ctx.store, "alice")
    c = Conversation(ctx, "submission", tls=True)
    await c.send("EHLO laptop")
    await c.send(f"AUTH PLAIN {PLAIN}")
    await c.send("MAIL FROM:<alice@example.test>\nRCPT TO:<carol@remote.test>\nDATA")
    body = "\n".join(f"line {i} with  trailing space " for i in range(2000))
    reply = await c.cmd(f"From: alice@example.test\nSubject: big\n\n{body}\n.")
    assert reply.startswith("250 2.0.0")
    [entry] = await ctx.store.queue_list()
    queued = await ctx.store.read_blob(entry.blob_id)
    assert queued.count(b"DKIM-Signature:") == 1 and b"\r\nDate: " in queued

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        assert name.decode().rstrip(".") == key.dns_name.rstrip(".")
        return key.txt_record().encode()

    assert dkim.verify(queued, dnsfunc=dnsfunc)
