from __future__ import annotations

from pathlib import Path

import dkim as dkimpy
import pytest
from tests.support.dnsserver import Behaviour, DNSServer

from mailwright.dns.resolver import Resolver
from mailwright.mailauth import Action, DomainAuthPolicy, KeyStore, sign_outbound, verify_inbound
from mailwright.mailauth.arc import verify_arc
from mailwright.mailauth.dnsquery import ResolverDNS

ORIGINAL = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: list@list.test\r\n"
    b"Subject: hello list\r\n"
    b"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <arc@sender.test>\r\n"
    b"\r\n"
    b"Original text.\r\n"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    store = KeyStore(tmp_path_factory.mktemp("arc"))
    store.generate("sender.test", algorithm="rsa", selector="s")
    store.generate("list.test", algorithm="rsa", selector="arc")
    return store


def publish(zone: DNSServer, keys: KeyStore) -> None:
    for domain in ("sender.test", "list.test"):
        for key in keys.keys(domain):
            zone.add(key.dns_name, "TXT", key.txt_record())
    zone.add("_dmarc.sender.test", "TXT", "v=DMARC1; p=reject")
    zone.add("sender.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.add("list.test", "TXT", "v=spf1 ip4:198.51.100.0/24 -all")


def through_list(keys: KeyStore) -> bytes:
    """The list receives the signed message, records its results, rewrites it and seals it."""
    signed = sign_outbound(ORIGINAL, "sender.test", keys) + ORIGINAL
    received = (
        b"Authentication-Results: list.test; dkim=pass header.d=sender.test;"
        b" spf=pass smtp.mailfrom=alice@sender.test; dmarc=pass header.from=sender.test\r\n"
        + signed
    )
    rewritten = received.replace(b"Subject: hello list", b"Subject: [list] hello list")
    rewritten = rewritten.replace(b"Original text.\r\n", b"Original text.\r\n-- \r\nlist footer\r\n")
    [key] = keys.keys("list.test")
    seal = dkimpy.arc_sign(
        rewritten, b"arc", b"list.test", key.dkimpy_private_key(), b"list.test"
    )
    assert len(seal) == 3
    return b"".join(seal) + rewritten


async def test_arc_chain_of_a_mailing_list_passes(
    zone: DNSServer, dns: ResolverDNS, keys: KeyStore
) -> None:
    publish(zone, keys)
    outcome = await verify_arc(dns, through_list(keys))
    assert (outcome.result, outcome.instances, outcome.sealer) == ("pass", 1, "list.test")
    assert outcome.oldest_pass == 0


async def test_arc_chain_broken_after_sealing_fails(
    zone: DNSServer, dns: ResolverDNS, keys: KeyStore
) -> None:
    publish(zone, keys)
    tampered = through_list(keys).replace(b"list footer", b"evil footer")
    assert (await verify_arc(dns, tampered)).result == "fail"


async def test_arc_unsealed_message_is_none(dns: ResolverDNS) -> None:
    assert (await verify_arc(dns, ORIGINAL)).result == "none"


async def test_arc_key_lookup_failure_is_temperror(
    zone: DNSServer, dns: ResolverDNS, keys: KeyStore
) -> None:
    publish(zone, keys)
    zone.set_behaviour("arc._domainkey.list.test", Behaviour.SERVFAIL)
    assert (await verify_arc(dns, through_list(keys))).result == "temperror"


async def test_arc_trusted_sealer_overrides_dmarc_reject(
    zone: DNSServer, resolver: Resolver, keys: KeyStore, tmp_path: Path
) -> None:
    publish(zone, keys)
    msg = through_list(keys)

    async def verify(policy: DomainAuthPolicy):  # type: ignore[no-untyped-def]
        return await verify_inbound(
            resolver,
            hostname="mx.receiver.test",
            client_ip="198.51.100.5",
            helo="lists.list.test",
            mail_from="list-bounces@list.test",
            message_bytes=msg,
            policy=policy,
        )

    plain = await verify(DomainAuthPolicy())
    assert [d.result for d in plain.dkim] == ["fail"]  # the list changed the message
    assert plain.action is Action.REJECT
    header = plain.header.decode()
    assert "arc=pass" in header and "smtp.remote-ip=198.51.100.5" in header
    assert "header.oldest-pass=0" in header
    trusted = await verify(DomainAuthPolicy(trusted_arc_sealers=("list.test",)))
    assert trusted.action is Action.ACCEPT
    assert "ARC" in trusted.reason


async def test_arc_two_hops_report_oldest_pass(
    zone: DNSServer, dns: ResolverDNS, keys: KeyStore, tmp_path: Path
) -> None:
    publish(zone, keys)
    fwd = KeyStore(tmp_path).generate("fwd.test", algorithm="rsa", selector="arc")
    zone.add(fwd.dns_name, "TXT", fwd.txt_record())
    first = through_list(keys)
    # The second forwarder validated the chain, then rewrites the body before sealing again.
    second = b"Authentication-Results: fwd.test; arc=pass\r\n" + first
    second = second.replace(b"list footer", b"list footer\r\nforwarded by fwd.test")
    seal = dkimpy.arc_sign(second, b"arc", b"fwd.test", fwd.dkimpy_private_key(), b"fwd.test")
    outcome = await verify_arc(dns, b"".join(seal) + second)
    assert (outcome.result, outcome.instances, outcome.sealer) == ("pass", 2, "fwd.test")
    assert outcome.oldest_pass == 2  # AMS 1 no longer matches the rewritten body


async def test_arc_many_keys_fail_without_dns_fanout(zone: DNSServer, dns: ResolverDNS) -> None:
    seals = b"".join(
        b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=d%d.test; s=s; b=AA\r\n" % i for i in range(40)
    )
    before = len(zone.queries)
    outcome = await verify_arc(dns, seals + ORIGINAL)
    assert outcome.result == "fail"
    assert len(zone.queries) == before
