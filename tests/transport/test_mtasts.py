"""MTA-STS (RFC 8461) end to end: policy over real HTTPS from mta-sts.DOMAIN (resolved by the
loopback DNS), a certificate from a test CA given as ``[outbound] ca_file``, a real SMTP peer
as the MX, the queue on both store backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailwright.cli.queue_cmd import _show
from mailwright.delivery.ingest import stage_bytes
from mailwright.dns.resolver import Resolver
from mailwright.queue.smtp import AttemptError, OutboundClient, TLSPolicy
from mailwright.store.api import Store
from mailwright.transport.mtasts import MTASTS, PolicyError, parse_policy, parse_record
from tests.queue.peer import Peer
from tests.support.dnsserver import DNSServer
from tests.transport.conftest import HTTPSServer, PrivateCA
from tests.transport.helpers import (
    FAST,
    MESSAGE,
    dest_zone,
    expiring,
    inbox,
    make_outbound,
    publish_policy,
    settle,
)


def test_mtasts_record_and_policy_parsing() -> None:
    assert parse_record([b"v=STSv1; id=20261207T01;"]) == "20261207T01"
    assert parse_record([b"v=spf1 -all", b"v=STSv1;id=abc"]) == "abc"
    for bad in ([b"v=STSv1; id=a-b"], [b"v=STSv1; id=a", b"v=STSv1; id=b"], [b"v=spf1"]):
        with pytest.raises(PolicyError):
            parse_record(bad)
    policy = parse_policy(b"version: STSv1\r\nmode: enforce\r\nmx: mx1.d.test\r\n"
                          b"mx: *.d.test\nmax_age: 86400\r\nextension: x\r\n", "abc")
    assert (policy.mode, policy.mx, policy.max_age, policy.id) == (
        "enforce", ("mx1.d.test", "*.d.test"), 86400, "abc")
    assert policy.matches("MX1.d.test.") and policy.matches("mx9.d.test")
    # RFC 8461 4.1: the wildcard covers one label only, never the domain itself
    assert not policy.matches("a.b.d.test") and not policy.matches("d.test")
    for text in (b"version: STSv1\nmode: enforce\nmax_age: 1\n",  # no mx
                 b"version: STSv2\nmode: none\nmax_age: 1\n",
                 b"version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
                 b"version: STSv1\nmode: none\n"):
        with pytest.raises(PolicyError):
            parse_policy(text)


async def test_mtasts_enforce_wrong_certificate_stays_queued_with_reason_then_bounces(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    wrong = ca.issue("not-the-mx.test")  # trusted CA, but not the MX host's name
    async with Peer(ssl_context=wrong.server_context()) as peer:
        out = await make_outbound(store, dns_server, ca, peer.port, https_server.port)
        publish_policy(dns_server, https_server, "enforce")
        await out.enqueue(await stage_bytes(store, MESSAGE), "alice@sender.test",
                          ["bob@dest.test"])
        await out.run_once()
        [entry] = await store.queue_list()
        assert peer.messages == []
        assert entry.recipients[0].status == "tempfail"
        assert "MTA-STS" in entry.last_error and "mx.dest.test" in entry.last_error
        assert "Hostname mismatch" in entry.last_error or "mismatch" in entry.last_error.lower()
        _show(entry, entry.created, b"")
        assert "last error: 4.7.5 MTA-STS: certificate of mx.dest.test" in capsys.readouterr().out
        results = await store.tls_results()
        assert [(r.policy_type, r.result_type, r.mx_host) for r in results] == [
            ("sts", "certificate-host-mismatch", "mx.dest.test")]
        assert "mode: enforce" in results[0].policy_string

        # then bounces at max_age, with the reason
        out.settings = expiring(FAST, 0.2)
        await asyncio.sleep(0.25)
        await settle(out)
        assert await store.queue_list() == []
        assert peer.messages == []
    [dsn] = await inbox(store, "alice@sender.test")
    text = dsn.as_string()
    assert "4.4.7" in text and "MTA-STS" in text


async def test_mtasts_testing_mode_delivers_and_reports(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    wrong = ca.issue("not-the-mx.test")
    async with Peer(ssl_context=wrong.server_context()) as peer:
        out = await make_outbound(store, dns_server, ca, peer.port, https_server.port)
        publish_policy(dns_server, https_server, "testing")
        await out.enqueue(await stage_bytes(store, MESSAGE), "alice@sender.test",
                          ["bob@dest.test"])
        await out.run_once()
        assert await store.queue_list() == []
        [msg] = peer.messages
        assert msg.tls  # still encrypted, opportunistically
    results = await store.tls_results()
    assert [(r.policy_domain, r.policy_type, r.result_type, r.count) for r in results] == [
        ("dest.test", "sts", "certificate-host-mismatch", 1)]


async def test_mtasts_enforce_valid_certificate_delivers_and_counts_success(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    good = ca.issue("mx.dest.test")
    async with Peer(ssl_context=good.server_context()) as peer:
        out = await make_outbound(store, dns_server, ca, peer.port, https_server.port)
        publish_policy(dns_server, https_server, "enforce")
        for _ in range(2):
            await out.enqueue(await stage_bytes(store, MESSAGE), "alice@sender.test",
                              ["bob@dest.test"])
            await out.run_once()
        assert await store.queue_list() == []
        assert len(peer.messages) == 2 and all(m.tls for m in peer.messages)
    [row] = await store.tls_results()
    assert (row.policy_type, row.result_type, row.count) == ("sts", "", 2)
    # RFC 8461 5.1: the same id is served from the cache, fetched once
    assert [r for r in https_server.requests if r.startswith("GET")] == [
        "GET /.well-known/mta-sts.txt host=mta-sts.dest.test"]


async def test_mtasts_enforce_mx_not_in_policy_stays_queued(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    good = ca.issue("mx.dest.test")
    async with Peer(ssl_context=good.server_context()) as peer:
        out = await make_outbound(store, dns_server, ca, peer.port, https_server.port)
        publish_policy(dns_server, https_server, "enforce", mx=("mx.elsewhere.test",))
        await out.enqueue(await stage_bytes(store, MESSAGE), "alice@sender.test",
                          ["bob@dest.test"])
        await out.run_once()
        [entry] = await store.queue_list()
        assert peer.connections == 0
        assert "no MX host of dest.test (mx.dest.test) is listed in its policy" in entry.last_error


async def test_mtasts_no_policy_record_means_opportunistic(
        store: Store, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    wrong = ca.issue("not-the-mx.test")
    async with Peer(ssl_context=wrong.server_context()) as peer:
        out = await make_outbound(store, dns_server, ca, peer.port, https_server.port)
        await out.enqueue(await stage_bytes(store, MESSAGE), "alice@sender.test",
                          ["bob@dest.test"])
        await out.run_once()
        assert await store.queue_list() == []
        assert len(peer.messages) == 1
    assert https_server.requests == []


async def test_mtasts_cached_policy_survives_a_restart_and_a_blocked_fetch(
        tmp_path: Path, dns_server: DNSServer, ca: PrivateCA, https_server: HTTPSServer) -> None:
    """RFC 8461 5.1: an attacker who removes the record and blocks the fetch after a restart
    must still meet the cached enforce policy."""
    cache = tmp_path / "mta-sts-cache.json"

    def client(port: int) -> OutboundClient:
        res = Resolver(dns_server.nameservers, timeout=0.5, lifetime=1.0)
        tls = TLSPolicy(ca_file=str(ca.path))
        return OutboundClient(res, "mail.sender.test", port=port, tls=tls,
                              sts=MTASTS(res, tls.verifying_context, port=https_server.port,
                                         cache_file=cache))

    dest_zone(dns_server)
    publish_policy(dns_server, https_server, "enforce")
    good = ca.issue("mx.dest.test")
    async with Peer(ssl_context=good.server_context()) as peer:
        session = await client(peer.port).connect("dest.test")
        assert session.verified
        await session.close()
    assert cache.exists()

    # the "restart": a new client; the attacker removes the record and the policy file
    dns_server.remove("_mta-sts.dest.test")
    https_server.routes.clear()
    forged = ca.issue("attacker.test")
    async with Peer(ssl_context=forged.server_context()) as peer:
        with pytest.raises(AttemptError) as info:
            await client(peer.port).connect("dest.test")
        assert "MTA-STS" in info.value.text
        cache.unlink()  # without the cache the same attack succeeds: this is what it prevents
        session = await client(peer.port).connect("dest.test")
        assert session.tls and not session.verified
        await session.close()
