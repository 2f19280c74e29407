"""The spam defence on a real MX over real sockets: DNS lists, pregreet, greylisting, rate
limits, and the content verdict (X-Spam-* fields, Junk, 554 at the end of DATA)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mailwright.store.api import Store
from tests.smtpd.harness import SmtpServer, add_user, start_server
from tests.support.backends import SQLITE, Backend
from tests.support.dnsserver import DNSServer

from .messages import ham, spam
from .smtp_client import RawSMTP


async def _server(tmp_path: Path, dns: DNSServer, spam_lines: str,
                  backend: Backend = SQLITE) -> SmtpServer:  # fmt: skip
    extra = f'[dns]\nnameservers = ["{dns.config_value}"]\ntimeout = 2\n[spam]\n{spam_lines}'
    server = await start_server(tmp_path, extra=extra, backend=backend)
    await add_user(server.ctx.store, "bob")
    return server


async def _mailbox(store: Store, name: str) -> list[bytes]:
    account = await store.find_account("bob@example.test")
    assert account is not None
    box = await store.get_mailbox(account.id, name)
    assert box is not None
    return [await store.read_blob(r.blob_id) for r in await store.list_messages(box.id)]


async def test_spam_smtp_dnsbl_refuses_naming_the_list(tmp_path: Path, dns_server: DNSServer) -> None:
    dns_server.add("1.0.0.127.bl.test", "A", "127.0.0.2")
    server = await _server(
        tmp_path, dns_server, 'dnsbl = [{zone = "bl.test", codes = {"127.0.0.2" = "spam source"}}]'
    )
    try:
        c = await RawSMTP.connect(server.port)
        assert await c.reply() == (
            "554 5.7.1 Service unavailable; client [127.0.0.1] blocked using bl.test: spam source"
        )
        assert (await c.cmd("EHLO client.test")).startswith("503")
        assert (await c.cmd("QUIT")).startswith("221")
        await c.close()
    finally:
        await server.stop()


async def test_spam_smtp_dnswl_wins_over_dnsbl(tmp_path: Path, dns_server: DNSServer) -> None:
    dns_server.add("1.0.0.127.bl.test", "A", "127.0.0.2")
    dns_server.add("1.0.0.127.wl.test", "A", "127.0.10.3")
    server = await _server(tmp_path, dns_server, 'dnsbl = ["bl.test"]\ndnswl = ["wl.test"]')
    try:
        c = await RawSMTP.connect(server.port)
        assert (await c.reply()).startswith("220 ")
        await c.cmd("EHLO client.test")
        lines = await c.send_message("a@remote.example", ["bob@example.test"], ham(1))
        assert lines[-1].startswith("250 ")
        await c.close()
        (stored,) = await _mailbox(server.ctx.store, "INBOX")
        assert b"DNSWL(-2.0)" in stored
    finally:
        await server.stop()


async def test_spam_smtp_pregreet_talker_is_refused(tmp_path: Path, dns_server: DNSServer) -> None:
    server = await _server(tmp_path, dns_server, 'greet_wait = "0.5s"')
    try:
        bot = await RawSMTP.connect(server.port, early=b"EHLO bot.example\r\n")
        assert (await bot.reply()).startswith("554 5.7.1 Protocol error")
        assert (await bot.cmd("MAIL FROM:<x@y.example>")).startswith("503")
        await bot.close()
        polite = await RawSMTP.connect(server.port)
        assert (await polite.reply()).startswith("220 ")
        assert (await polite.cmd("EHLO client.test")).startswith("250")
        await polite.close()
    finally:
        await server.stop()


async def test_spam_smtp_greylisting_defers_then_passes(tmp_path: Path, dns_server: DNSServer) -> None:
    server = await _server(tmp_path, dns_server, 'greylist = true\ngreylist_delay = "1s"')
    try:
        c = await RawSMTP.connect(server.port)
        await c.reply()
        await c.cmd("EHLO client.test")
        await c.cmd("MAIL FROM:<a@remote.example>")
        assert (await c.cmd("RCPT TO:<bob@example.test>")).startswith("451 4.7.1 Greylisted")
        await c.cmd("RSET")
        await c.cmd("MAIL FROM:<a@remote.example>")
        assert (await c.cmd("RCPT TO:<bob@example.test>")).startswith("451 4.7.1")  # too soon
        await asyncio.sleep(1.2)
        await c.cmd("RSET")
        await c.cmd("MAIL FROM:<a@remote.example>")
        assert (await c.cmd("RCPT TO:<bob@example.test>")).startswith("250")
        await c.close()
    finally:
        await server.stop()


async def test_spam_smtp_greylisting_skips_allowed_networks(tmp_path: Path, dns_server: DNSServer) -> None:
    server = await _server(tmp_path, dns_server,
                           'greylist = true\ngreylist_networks = ["127.0.0.0/8"]')  # fmt: skip
    try:
        c = await RawSMTP.connect(server.port)
        await c.reply()
        await c.cmd("EHLO client.test")
        await c.cmd("MAIL FROM:<a@remote.example>")
        assert (await c.cmd("RCPT TO:<bob@example.test>")).startswith("250")
        await c.close()
    finally:
        await server.stop()


async def test_spam_smtp_sender_rate_limit(tmp_path: Path, dns_server: DNSServer) -> None:
    server = await _server(tmp_path, dns_server, "sender_rate = 2\nrate_exempt = []")
    await add_user(server.ctx.store, "carol")
    await add_user(server.ctx.store, "dave")
    try:
        c = await RawSMTP.connect(server.port)
        await c.reply()
        await c.cmd("EHLO client.test")
        await c.cmd("MAIL FROM:<bulk@remote.example>")
        assert (await c.cmd("RCPT TO:<bob@example.test>")).startswith("250")
        assert (await c.cmd("RCPT TO:<carol@example.test>")).startswith("250")
        assert (await c.cmd("RCPT TO:<dave@example.test>")).startswith("450 4.7.1")
        await c.cmd("RSET")
        await c.cmd("MAIL FROM:<other@remote.example>")  # another sender is not limited
        assert (await c.cmd("RCPT TO:<dave@example.test>")).startswith("250")
        await c.close()
    finally:
        await server.stop()


async def test_spam_smtp_rate_limits_spare_exempt_networks(tmp_path: Path, dns_server: DNSServer) -> None:
    server = await _server(tmp_path, dns_server, "sender_rate = 1\nclient_rate = 1")  # loopback exempt
    await add_user(server.ctx.store, "carol")
    try:
        c = await RawSMTP.connect(server.port)
        await c.reply()
        await c.cmd("EHLO client.test")
        await c.cmd("MAIL FROM:<bulk@remote.example>")
        assert (await c.cmd("RCPT TO:<bob@example.test>")).startswith("250")
        assert (await c.cmd("RCPT TO:<carol@example.test>")).startswith("250")
        await c.close()
    finally:
        await server.stop()


async def _train(server: SmtpServer, n: int = 12) -> None:
    account = await server.ctx.store.find_account("bob@example.test")
    assert account is not None
    classifier = server.ctx.spam.classifier
    for i in range(n):
        for label, raw in (("ham", ham(i)), ("spam", spam(i))):
            await classifier.learn(account.id, f"{label}{i}", label, await classifier.analyse(raw))


async def test_spam_smtp_verdicts_and_fields(tmp_path: Path, dns_server: DNSServer) -> None:
    # the reject threshold sits between the two spam messages below: spam(21) scores 9.5
    # (the classifier, HTML only, a tiny font, a sales phrase), the second adds an executable
    server = await _server(tmp_path, dns_server, "junk_threshold = 5\nreject_threshold = 12")
    await _train(server)
    try:
        c = await RawSMTP.connect(server.port)
        await c.reply()
        await c.cmd("EHLO client.test")
        forged = b"X-Spam-Status: No, score=-100\r\nX-Spam-Flag: NO\r\n" + ham(20)
        assert (await c.send_message("a@friends.example", ["bob@example.test"], forged))[-1][:3] == "250"
        assert (await c.send_message("p@offers.example", ["bob@example.test"], spam(21)))[-1][:3] == "250"
        # past the reject threshold: refused at the end of DATA, nothing stored
        worse = spam(22).replace(b"Content-Type: text/html", b"Content-Type: multipart/mixed;"
                                 b" boundary=B\r\n\r\n--B\r\nContent-Type: text/html")
        worse = worse.replace(b"</html>\r\n", b"</html>\r\n--B\r\nContent-Type: application/x-msdownload;"
                              b' name="prize.exe"\r\n\r\nMZ\r\n--B--\r\n')  # fmt: skip
        refused = await c.send_message("p@offers.example", ["bob@example.test"], worse)
        assert refused[-1].startswith("554 5.7.1 Message refused as spam"), refused
        await c.close()
        (inbox_msg,) = await _mailbox(server.ctx.store, "INBOX")
        assert inbox_msg.count(b"X-Spam-Status:") == 1 and b"X-Spam-Flag" not in inbox_msg
        assert b"X-Spam-Status: No, score=" in inbox_msg and b"BAYES_HAM" in inbox_msg
        (junk_msg,) = await _mailbox(server.ctx.store, "Junk")
        assert b"X-Spam-Status: Yes, score=" in junk_msg and b"verdict=junk" in junk_msg
        assert b"X-Spam-Report:" in junk_msg and b"BAYES_SPAM" in junk_msg
    finally:
        await server.stop()


async def test_spam_smtp_each_account_gets_its_own_verdict(
    tmp_path: Path, dns_server: DNSServer, backend: Backend
) -> None:
    """One message, one SMTP transaction, two local accounts whose own models disagree: bob
    taught such mail as spam, carol as ham. Each copy lands where its owner's model puts it,
    and says so in its own X-Spam-Status (which is also what the trainer reads back)."""
    server = await _server(tmp_path, dns_server, "junk_threshold = 5\nreject_threshold = 0", backend)
    await add_user(server.ctx.store, "carol")
    store = server.ctx.store
    bob = await store.find_account("bob@example.test")
    carol = await store.find_account("carol@example.test")
    assert bob is not None and carol is not None
    classifier = server.ctx.spam.classifier
    for i in range(12):
        for label, raw in (("ham", ham(i)), ("spam", spam(i))):
            analysis = await classifier.analyse(raw)
            other = "ham" if label == "spam" else "spam"
            await classifier.learn(bob.id, f"{label}{i}", label, analysis, server_wide=False)
            await classifier.learn(carol.id, f"{label}{i}", other, analysis, server_wide=False)
    try:
        c = await RawSMTP.connect(server.port)
        await c.reply()
        await c.cmd("EHLO client.test")
        lines = await c.send_message("p@offers.example", ["bob@example.test", "carol@example.test"],
                                     spam(21))  # fmt: skip
        assert lines[-1].startswith("250 "), lines
        await c.close()

        async def box(account_id: int, name: str) -> list[bytes]:
            mailbox = await store.get_mailbox(account_id, name)
            assert mailbox is not None
            return [await store.read_blob(r.blob_id) for r in await store.list_messages(mailbox.id)]

        assert await box(bob.id, "INBOX") == [] and await box(carol.id, "Junk") == []
        (bobs,) = await box(bob.id, "Junk")
        (carols,) = await box(carol.id, "INBOX")
        assert b"X-Spam-Status: Yes, score=" in bobs and b"verdict=junk" in bobs
        assert b"X-Spam-Status: No, score=" in carols and b"verdict=ham" in carols
        assert b"BAYES_SPAM" in bobs and b"BAYES_HAM" in carols
        assert bobs.count(b"X-Spam-Status:") == carols.count(b"X-Spam-Status:") == 1
        # the same message apart from the fields
        assert bobs.split(b"\r\n\r\n", 1)[1] == carols.split(b"\r\n\r\n", 1)[1]
        assert bobs.count(b"Received:") == carols.count(b"Received:") == 1
    finally:
        await server.stop()
