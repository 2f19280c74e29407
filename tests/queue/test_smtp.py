"""The outbound SMTP driver against real servers on loopback (scripted peer and aiosmtpd)."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from mailwright.dns.resolver import Resolver
from mailwright.proto.smtpclient import Envelope, Recipient
from mailwright.queue.smtp import AttemptError, OutboundClient, Outcome, Timeouts
from tests.queue.peer import Peer
from tests.support.dnsserver import DNSServer

MESSAGE = b"From: a@sender.test\r\nSubject: hi\r\n\r\n.leading dot\r\nbody\r\n"


def client(dns: DNSServer, port: int, **kw: object) -> OutboundClient:
    resolver = Resolver(dns.nameservers, timeout=0.5, lifetime=1.0)
    return OutboundClient(resolver, "mail.sender.test", port=port, **kw)  # type: ignore[arg-type]


def envelope(*rcpts: str, size: int = len(MESSAGE), **kw: object) -> Envelope:
    return Envelope("a@sender.test", tuple(Recipient(r) if isinstance(r, str) else r
                                           for r in rcpts), size=size, **kw)  # type: ignore[arg-type]


def zone(dns: DNSServer, *mx: tuple[int, str, str]) -> None:
    for pref, name, ip in mx:
        dns.add("dest.test", "MX", f"{pref} {name}.")
        dns.add(name, "A", ip)


async def test_smtp_pipelined_delivery_with_tls_and_dsn(dns_server: DNSServer,
                                                        server_tls: ssl.SSLContext) -> None:
    async with Peer(ssl_context=server_tls) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        assert session.tls
        env = envelope(Recipient("b@dest.test", ("SUCCESS", "FAILURE"), ("rfc822", "b@dest.test")),
                       "c@dest.test", ret="HDRS", envid="E1")
        results = await session.send(env, MESSAGE)
        await session.close()
    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.DELIVERED]
    assert results[0].diagnostic == "smtp; 250 2.0.0 queued"
    assert results[0].remote_mta == "mx.dest.test"
    assert peer.transcript[0] == "EHLO mail.sender.test"
    assert peer.transcript[1] == "STARTTLS"
    assert peer.transcript[2] == "EHLO mail.sender.test"
    assert peer.transcript[3] == (f"MAIL FROM:<a@sender.test> SIZE={len(MESSAGE)} RET=HDRS "
                                  "ENVID=E1")
    assert peer.transcript[4] == "RCPT TO:<b@dest.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@dest.test"
    assert peer.transcript[-1] == "QUIT"
    [msg] = peer.messages
    assert msg.data == MESSAGE and msg.tls


async def test_smtp_per_recipient_replies_without_pipelining(dns_server: DNSServer) -> None:
    def rcpt(line: str) -> str:
        if "unknown" in line:
            return "550 5.1.1 no such user"
        if "busy" in line:
            return "451 4.2.1 mailbox busy"
        return "250 2.1.5 ok"

    async with Peer(capabilities=("8BITMIME",), rcpt=rcpt) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        results = await session.send(envelope("unknown@dest.test", "ok@dest.test",
                                              "busy@dest.test"), MESSAGE)
        await session.close()
    assert [(r.outcome, r.status) for r in results] == [
        (Outcome.PERMANENT, "5.1.1"), (Outcome.DELIVERED, "2.0.0"), (Outcome.TEMPORARY, "4.2.1")]
    assert results[0].diagnostic == "smtp; 550 5.1.1 no such user"
    assert results[1].relayed_without_dsn
    assert peer.messages[0].rcpt_lines == ["RCPT TO:<ok@dest.test>"]


async def test_smtp_all_recipients_refused_pipelined(dns_server: DNSServer) -> None:
    async with Peer(rcpt=lambda line: "550 5.1.1 nobody") as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        results = await session.send(envelope("x@dest.test", "y@dest.test"), MESSAGE)
        assert session.usable
        results2 = await session.send(envelope("z@dest.test"), MESSAGE)
        await session.close()
    assert {r.outcome for r in results + results2} == {Outcome.PERMANENT}
    assert peer.messages == []


async def test_smtp_helo_fallback(dns_server: DNSServer) -> None:
    async with Peer(ehlo=False) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        results = await session.send(envelope(Recipient("b@dest.test", ("SUCCESS",))), MESSAGE)
        await session.close()
    assert results[0].outcome is Outcome.DELIVERED
    assert peer.transcript[:3] == ["EHLO mail.sender.test", "HELO mail.sender.test",
                                   "MAIL FROM:<a@sender.test>"]


async def test_smtp_size_checked_before_sending(dns_server: DNSServer) -> None:
    async with Peer(capabilities=("SIZE 10",)) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        [result] = await session.send(envelope("b@dest.test"), MESSAGE)
        await session.close()
    assert (result.outcome, result.status) == (Outcome.PERMANENT, "5.3.4")
    assert not any(line.startswith("MAIL") for line in peer.transcript)


async def test_smtp_smtputf8_required_but_missing(dns_server: DNSServer) -> None:
    async with Peer(capabilities=("8BITMIME",)) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        [result] = await session.send(envelope("jöran@dest.test"), MESSAGE)
        await session.close()
    assert (result.outcome, result.status) == (Outcome.PERMANENT, "5.6.7")
    assert "SMTPUTF8" in result.diagnostic


async def test_smtp_smtputf8_passed_on(dns_server: DNSServer) -> None:
    message = "Subject: héllo\r\n\r\nbody\r\n".encode()
    async with Peer() as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        [result] = await session.send(envelope("jöran@dest.test", size=len(message),
                                               eight_bit=True, utf8_headers=True), message)
        await session.close()
    assert result.outcome is Outcome.DELIVERED
    assert "BODY=8BITMIME SMTPUTF8" in peer.messages[0].mail_line
    assert peer.messages[0].data == message


async def test_smtp_next_mx_when_primary_refuses(dns_server: DNSServer) -> None:
    async with Peer() as peer:
        # Nothing listens on 127.0.0.2 at the peer's port: connection refused.
        zone(dns_server, (10, "mx1.dest.test", "127.0.0.2"), (20, "mx2.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        assert session.host == "mx2.dest.test"
        [result] = await session.send(envelope("b@dest.test"), MESSAGE)
        await session.close()
    assert result.outcome is Outcome.DELIVERED


async def test_smtp_next_mx_on_4xx_greeting(dns_server: DNSServer) -> None:
    async with Peer() as good, Peer(host="127.0.0.2", port=good.port,
                    greeting="421 4.3.2 too busy") as busy:
        zone(dns_server, (10, "mx1.dest.test", "127.0.0.2"),
             (20, "mx2.dest.test", "127.0.0.1"))
        session = await client(dns_server, good.port).connect("dest.test")
        assert session.host == "mx2.dest.test"
        await session.close()
    assert busy.connections == 1


async def test_smtp_connection_reuse(dns_server: DNSServer) -> None:
    async with Peer() as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        for i in range(3):
            [result] = await session.send(envelope(f"u{i}@dest.test"), MESSAGE)
            assert result.outcome is Outcome.DELIVERED
        assert session.messages_sent == 3
        await session.close()
    assert peer.connections == 1 and len(peer.messages) == 3


async def test_smtp_lost_connection_is_temporary(dns_server: DNSServer) -> None:
    async with Peer(drop_after_data=True) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        results = await session.send(envelope("a@dest.test", "b@dest.test"), MESSAGE)
        assert not session.usable
        await session.close()
    assert {(r.outcome, r.status) for r in results} == {(Outcome.TEMPORARY, "4.4.2")}
    assert "lost connection" in results[0].diagnostic


async def test_smtp_data_rejected_is_permanent(dns_server: DNSServer) -> None:
    async with Peer(data_reply=lambda d: "554 5.7.1 spam") as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        [result] = await session.send(envelope("b@dest.test"), MESSAGE)
        await session.close()
    assert (result.outcome, result.status) == (Outcome.PERMANENT, "5.7.1")


async def test_smtp_mail_deferred_is_temporary(dns_server: DNSServer) -> None:
    async with Peer(mail=lambda line: "451 4.7.1 greylisted") as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        results = await session.send(envelope("b@dest.test", "c@dest.test"), MESSAGE)
        assert session.usable
        await session.close()
    assert {(r.outcome, r.status) for r in results} == {(Outcome.TEMPORARY, "4.7.1")}


async def test_smtp_all_hosts_down_is_temporary(dns_server: DNSServer) -> None:
    peer = await Peer().start()
    port = peer.port
    await peer.stop()
    zone(dns_server, (10, "mx1.dest.test", "127.0.0.1"), (20, "mx2.dest.test", "127.0.0.2"))
    with pytest.raises(AttemptError) as info:
        await client(dns_server, port).connect("dest.test")
    assert info.value.temporary and info.value.status == "4.4.1"
    assert "mx1.dest.test" in info.value.text and "mx2.dest.test" in info.value.text


async def test_smtp_null_mx_is_permanent(dns_server: DNSServer) -> None:
    dns_server.add("dest.test", "MX", "0 .")
    with pytest.raises(AttemptError) as info:
        await client(dns_server, 25).connect("dest.test")
    assert not info.value.temporary and info.value.status == "5.1.10"


async def test_smtp_silent_server_times_out(dns_server: DNSServer) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
    try:
        with pytest.raises(AttemptError) as info:
            await client(dns_server, port, timeouts=Timeouts(greeting=0.2)).connect("dest.test")
        assert info.value.temporary
    finally:
        server.close()


async def test_smtp_5xx_greeting_everywhere_is_permanent(dns_server: DNSServer) -> None:
    async with Peer(greeting="554 5.7.1 go away") as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        with pytest.raises(AttemptError) as info:
            await client(dns_server, peer.port).connect("dest.test")
    assert not info.value.temporary and info.value.status == "5.7.1"


async def test_smtp_interop_aiosmtpd(dns_server: DNSServer) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    received: list[bytes] = []

    class Handler(Sink):
        async def handle_DATA(self, server: object, session: object, env: object) -> str:
            received.append(env.original_content)  # type: ignore[attr-defined]
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, port).connect("dest.test")
        [result] = await session.send(envelope("b@dest.test"), MESSAGE)
        await session.close()
    finally:
        controller.stop()
    assert result.outcome is Outcome.DELIVERED
    assert received == [MESSAGE]


async def test_smtp_broken_starttls_falls_back_to_plaintext(dns_server: DNSServer,
                                                            server_tls: ssl.SSLContext) -> None:
    async with Peer(ssl_context=server_tls, broken_tls=True) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        assert not session.tls
        [result] = await session.send(envelope("b@dest.test"), MESSAGE)
        await session.close()
    assert result.outcome is Outcome.DELIVERED
    assert peer.connections == 2 and not peer.messages[0].tls


async def test_smtp_required_tls_without_starttls_is_temporary(dns_server: DNSServer) -> None:
    from mailwright.queue.smtp import TLSPolicy

    async with Peer() as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        with pytest.raises(AttemptError) as info:
            await client(dns_server, peer.port, tls=TLSPolicy(mode="required")).connect("dest.test")
    assert info.value.temporary and info.value.status == "4.7.5"


async def test_smtp_verified_tls_rejects_self_signed(dns_server: DNSServer,
                                                     server_tls: ssl.SSLContext) -> None:
    from mailwright.queue.smtp import TLSPolicy

    async with Peer(ssl_context=server_tls) as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        with pytest.raises(AttemptError) as info:
            await client(dns_server, peer.port,
                         tls=TLSPolicy(mode="required", verify=True)).connect("dest.test")
    assert info.value.temporary and "TLS" in info.value.text


async def test_smtp_no_final_dot_when_the_lease_is_uncertain(dns_server: DNSServer) -> None:
    """RFC 5321 4.1.1.4: only the final dot commits; without it the remote has nothing."""
    async with Peer() as peer:
        zone(dns_server, (10, "mx.dest.test", "127.0.0.1"))
        session = await client(dns_server, peer.port).connect("dest.test")
        results = await session.send(envelope("b@dest.test", "c@dest.test"), MESSAGE,
                                     may_finish=lambda: False)
        assert not session.usable
        await session.close()
        for _ in range(100):  # bounded: the peer notices the closed connection
            if peer.active == 0:
                break
            await asyncio.sleep(0.02)
    assert [(r.outcome, r.status) for r in results] == [(Outcome.TEMPORARY, "4.4.2")] * 2
    assert "lease" in results[0].diagnostic
    assert peer.messages == []
