"""ARC sealing of forwarded mail (RFC 8617 5.1), checked by dkimpy's arc_verify and ours."""

from __future__ import annotations

import re
from pathlib import Path

import dkim as dkimpy
import pytest
from tests.support.dnsserver import DNSServer

from mailwright.dns.resolver import Resolver
from mailwright.mailauth import KeyStore, sign_outbound, verify_inbound
from mailwright.mailauth.arc import verify_arc
from mailwright.mailauth.arcseal import seal_forwarded, seal_forwarded_async
from mailwright.mailauth.dnsquery import ResolverDNS

ORIGINAL = (
    b"From: Carol <carol@origin.test>\r\n"
    b"To: fwd@forwarder.test\r\n"
    b"Subject: forwarded\r\n"
    b"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <seal@origin.test>\r\n"
    b"\r\n"
    b"Hello through a forwarder.\r\n"
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    store = KeyStore(tmp_path_factory.mktemp("arcseal"))
    store.generate("origin.test", algorithm="rsa", selector="s")
    store.generate("forwarder.test", algorithm="ed25519", selector="ed")  # not usable for ARC
    store.generate("forwarder.test", algorithm="rsa", selector="fw")
    store.generate("second.test", algorithm="rsa", selector="two")
    return store


def publish(zone: DNSServer, keys: KeyStore) -> dict[bytes, bytes]:
    """Serve the keys on the test DNS, and return them as a map for dkimpy's dnsfunc."""
    txt: dict[bytes, bytes] = {}
    for domain in ("origin.test", "forwarder.test", "second.test"):
        for key in keys.keys(domain):
            zone.add(key.dns_name, "TXT", key.txt_record())
            txt[(key.dns_name + ".").encode()] = key.txt_record().encode()
    zone.add("origin.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.add("_dmarc.origin.test", "TXT", "v=DMARC1; p=none")
    return txt


def dkimpy_verify(message: bytes, txt: dict[bytes, bytes]) -> tuple[bytes, str]:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return txt.get(name if name.endswith(b".") else name + b".", b"")

    cv, _results, reason = dkimpy.arc_verify(message, dnsfunc=dnsfunc)
    return cv, str(reason)


async def arrive(resolver: Resolver, hostname: str, message: bytes) -> bytes:
    verdict = await verify_inbound(
        resolver, hostname=hostname, client_ip="192.0.2.7", helo="mail.origin.test",
        mail_from="carol@origin.test", message_bytes=message,
    )  # fmt: skip
    return verdict.authenticated_message


async def test_first_seal_has_instance_1_cv_none_and_verifies(
    zone: DNSServer, resolver: Resolver, keys: KeyStore
) -> None:
    txt = publish(zone, keys)
    signed = sign_outbound(ORIGINAL, "origin.test", keys) + ORIGINAL
    received = await arrive(resolver, "mx.forwarder.test", signed)
    seal = await seal_forwarded_async(received, "forwarder.test", keys, "mx.forwarder.test")
    text = seal.decode()
    names = [line.split(":", 1)[0] for line in text.split("\r\n") if line and line[0] not in " \t"]
    assert names == ["ARC-Seal", "ARC-Message-Signature", "ARC-Authentication-Results"]
    assert re.search(r"ARC-Seal: i=1;.*cv=none", " ".join(text.split()))
    assert "d=forwarder.test" in text and "s=fw" in text and "a=rsa-sha256" in text
    # The AAR carries our inbound results (RFC 8617 4.1.1).
    aar = " ".join(text.split("ARC-Authentication-Results:", 1)[1].split())
    assert aar.startswith("i=1; mx.forwarder.test") and "spf=pass" in aar and "dkim=pass" in aar
    sealed = seal + received
    assert dkimpy_verify(sealed, txt)[0] == dkimpy.CV_Pass
    ours = await verify_arc(ResolverDNS(resolver), sealed)
    assert (ours.result, ours.instances, ours.sealer) == ("pass", 1, "forwarder.test")


async def test_second_forwarder_seals_instance_2_with_cv_pass(
    zone: DNSServer, resolver: Resolver, keys: KeyStore
) -> None:
    txt = publish(zone, keys)
    first = await arrive(resolver, "mx.forwarder.test", ORIGINAL)
    first = seal_forwarded(first, "forwarder.test", keys, "mx.forwarder.test") + first
    # The second hop verifies the chain on arrival (arc=pass in its results), then seals.
    second = await arrive(resolver, "mx.second.test", first)
    assert b"arc=pass" in second
    seal = seal_forwarded(second, "second.test", keys, "mx.second.test")
    flat = " ".join(seal.decode().split())
    assert re.search(r"ARC-Seal: i=2;.*cv=pass", flat)
    sealed = seal + second
    assert dkimpy_verify(sealed, txt)[0] == dkimpy.CV_Pass
    ours = await verify_arc(ResolverDNS(resolver), sealed)
    assert (ours.result, ours.instances, ours.sealer) == ("pass", 2, "second.test")


async def test_broken_arriving_chain_is_sealed_with_cv_fail(
    zone: DNSServer, resolver: Resolver, keys: KeyStore
) -> None:
    txt = publish(zone, keys)
    first = await arrive(resolver, "mx.forwarder.test", ORIGINAL)
    first = seal_forwarded(first, "forwarder.test", keys, "mx.forwarder.test") + first
    tampered = first.replace(b"Hello through", b"Pay me through")
    second = await arrive(resolver, "mx.second.test", tampered)
    assert b"arc=fail" in second
    seal = seal_forwarded(second, "second.test", keys, "mx.second.test")
    assert re.search(r"ARC-Seal: i=2;.*cv=fail", " ".join(seal.decode().split()))
    cv, reason = dkimpy_verify(seal + second, txt)
    # RFC 8617 5.2 step 2: a newest seal with cv=fail ends validation (dkimpy says so, cv None).
    assert cv != dkimpy.CV_Pass and "ARC-Seal[2] reported failure" in reason
    assert (await verify_arc(ResolverDNS(resolver), seal + second)).result == "fail"


def test_no_rsa_key_no_from_or_no_results_means_no_seal(tmp_path: Path, keys: KeyStore) -> None:
    only_ed = KeyStore(tmp_path)
    only_ed.generate("forwarder.test", algorithm="ed25519", selector="ed")
    with_results = b"Authentication-Results: mx.forwarder.test; arc=none\r\n" + ORIGINAL
    assert seal_forwarded(with_results, "forwarder.test", only_ed, "mx.forwarder.test") == b""
    no_from = with_results.replace(b"From: Carol <carol@origin.test>\r\n", b"")
    assert seal_forwarded(no_from, "forwarder.test", keys, "mx.forwarder.test") == b""
    # Without our own Authentication-Results there is nothing to vouch for (RFC 8617 5.1).
    assert seal_forwarded(ORIGINAL, "forwarder.test", keys, "mx.forwarder.test") == b""
    assert seal_forwarded(with_results, "forwarder.test", keys, "mx.forwarder.test") != b""
