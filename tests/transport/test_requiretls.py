"""REQUIRETLS (RFC 8689): our server takes it (only under TLS) and the queue honours it."""

from __future__ import annotations

import pytest

from mailwright.delivery.ingest import stage_bytes
from mailwright.proto.smtp import NEED_DATA, PAUSED, MailFrom, ServerConnection
from mailwright.store.api import Store
from tests.queue.peer import Peer
from tests.support.dnsserver import DNSServer
from tests.transport.conftest import HTTPSServer, PrivateCA
from tests.transport.helpers import MESSAGE, inbox, make_outbound, publish_policy

CAPS = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN")


async def send_requiretls(store: Store, dns: DNSServer, ca: PrivateCA, https: HTTPSServer,
                          peer: Peer, *, policy: bool = True) -> None:
    out = await make_outbound(store, dns, ca, peer.port, https.port)
    if policy:
        publish_policy(dns, https, "testing")  # REQUIRETLS treats testing as enforce
    await out.enqueue(await stage_bytes(store, MESSAGE), "alice@sender.test", ["bob@dest.test"],
                      requiretls=True)
    [entry] = await store.queue_list()
    assert entry.extra.get("requiretls") == "1"
    await out.run_once()


async def test_requiretls_to_a_peer_without_it_bounces_5_7_30(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    good = ca.issue("mx.dest.test")
    async with Peer(ssl_context=good.server_context(), capabilities=CAPS) as peer:
        await send_requiretls(store, dns_server, ca, https_server, peer)
        assert peer.messages == []
        assert not any(line.startswith("MAIL") for line in peer.transcript)
    assert await store.queue_list() == []
    [dsn] = await inbox(store, "alice@sender.test")
    text = dsn.as_string()
    assert "5.7.30" in text and "REQUIRETLS" in text
    # RFC 8689 5: the report carries the header of the message, not its body
    assert "Subject: tls" in text and "secret" not in text


async def test_requiretls_without_any_policy_bounces(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    good = ca.issue("mx.dest.test")
    async with Peer(ssl_context=good.server_context(),
                    capabilities=(*CAPS, "REQUIRETLS")) as peer:
        await send_requiretls(store, dns_server, ca, https_server, peer, policy=False)
        assert peer.messages == []
    [dsn] = await inbox(store, "alice@sender.test")
    assert "5.7.30" in dsn.as_string()


async def test_requiretls_to_a_verified_peer_with_it_is_delivered_with_the_parameter(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    good = ca.issue("mx.dest.test")
    async with Peer(ssl_context=good.server_context(),
                    capabilities=(*CAPS, "REQUIRETLS")) as peer:
        await send_requiretls(store, dns_server, ca, https_server, peer)
        [msg] = peer.messages
    assert msg.tls and msg.mail_line.endswith(" REQUIRETLS")
    assert await store.queue_list() == []


async def test_requiretls_with_a_wrong_certificate_waits(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    """Even under a testing policy: the message's own demand makes the check binding."""
    wrong = ca.issue("not-the-mx.test")
    async with Peer(ssl_context=wrong.server_context(),
                    capabilities=(*CAPS, "REQUIRETLS")) as peer:
        await send_requiretls(store, dns_server, ca, https_server, peer)
        assert peer.messages == []
    [entry] = await store.queue_list()
    assert "MTA-STS" in entry.last_error and entry.recipients[0].status == "tempfail"


def events(conn: ServerConnection, data: bytes) -> list[object]:
    conn.receive_data(data)
    out: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return out
        out.append(event)


@pytest.mark.parametrize("tls", [False, True])
def test_requiretls_advertised_and_accepted_only_under_tls(tls: bool) -> None:
    conn = ServerConnection("mx.example.test", tls_active=tls, starttls=True, requiretls=True)
    conn.greet()
    conn.data_to_send()
    events(conn, b"EHLO client.test\r\n")
    conn.accept()
    ehlo = conn.data_to_send().decode()
    assert ("REQUIRETLS" in ehlo) is tls
    found = events(conn, b"MAIL FROM:<a@client.test> REQUIRETLS\r\n")
    if tls:
        [mail] = found
        assert isinstance(mail, MailFrom) and mail.params.requiretls
    else:
        assert found == []
        assert conn.data_to_send().startswith(b"530 5.7.10 ")


async def test_tls_required_no_header_ignores_an_enforce_policy(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    """RFC 8689 5: the sender asks that delivery not wait for the recipient's TLS policy."""
    wrong = ca.issue("not-the-mx.test")
    async with Peer(ssl_context=wrong.server_context(), capabilities=CAPS) as peer:
        out = await make_outbound(store, dns_server, ca, peer.port, https_server.port)
        publish_policy(dns_server, https_server, "enforce")
        await out.enqueue(await stage_bytes(store, b"TLS-Required: No\r\n" + MESSAGE),
                          "alice@sender.test", ["bob@dest.test"])
        await out.run_once()
        assert len(peer.messages) == 1
    assert await store.queue_list() == []
