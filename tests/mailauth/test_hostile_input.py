"""Whatever a peer sends, authentication returns a verdict and never raises."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.dnsserver import DNSServer

from mailwright.dns.resolver import Resolver
from mailwright.mailauth import Action, verify_inbound
from mailwright.mailauth.spf import _parse_record, _PermError

HOSTILE_HEADERS = [
    b"DKIM-Signature: v=1; a=rsa-sha256; d=; s=; b=; bh=; h=from\r\n",
    b"DKIM-Signature: v=1; a=rsa-sha256; d=x.test; s=a b; b=AA; bh=AA; h=from\r\n",
    b"DKIM-Signature: v=1; a=ed25519-sha256; d=x.test; s=s; b=!!; bh=??; h=from\r\n",
    b"DKIM-Signature: v=1; a=rsa-sha1; d=x.test; s=s; b=AA; bh=AA; h=from\r\n",
    b"DKIM-Signature: v=1; v=1; a=; d=\xff\xfe; s=\x00\r\n",
    b"DKIM-Signature: " + b"a=b; " * 2000 + b"\r\n",
    b"DKIM-Signature:\r\n",
    b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=x.test; s=s; b=AA\r\n",
    b"ARC-Seal: i=999999; cv=pass; d=x.test; s=s; b=AA\r\n",
    b"ARC-Message-Signature: i=1; a=rsa-sha256; d=x.test; s=s; h=arc-seal; bh=AA; b=AA\r\n",
    b"ARC-Authentication-Results: i=1; x.test; none\r\n",
    b"Authentication-Results: \r\n",
    b"Authentication-Results: ((((\r\n",
    b"From: \"a@bank.test\" <>\r\n",
    b"From: =?utf-8?b?w6k=?= <\xc3\xa9@\xc3\xa9.test>\r\n",
    b"From: a@b.test, c@d.test\r\n",
    b"From: (comment) <a@[192.0.2.1]>\r\n",
]


@pytest.mark.parametrize("extra", HOSTILE_HEADERS)
async def test_hostile_headers_give_a_verdict(zone: DNSServer, resolver: Resolver, extra: bytes) -> None:
    zone.add("_dmarc.x.test", "TXT", "v=DMARC1; p=reject")
    zone.add("s._domainkey.x.test", "TXT", "v=DKIM1; k=rsa; p=notbase64!!")
    msg = extra + b"From: a@x.test\r\nSubject: s\r\n\r\nbody\r\n"
    verdict = await verify_inbound(
        resolver,
        hostname="mx.test",
        client_ip="192.0.2.1",
        helo="[192.0.2.1]",
        mail_from="",
        message_bytes=msg,
    )
    assert verdict.header.startswith(b"Authentication-Results: mx.test;")
    assert verdict.action in set(Action)


@pytest.mark.parametrize("ip", ["not-an-ip", "", "::ffff:192.0.2.1", "[IPv6:2001:db8::1]"])
async def test_hostile_client_ip_and_helo(resolver: Resolver, ip: str) -> None:
    verdict = await verify_inbound(
        resolver,
        hostname="mx.test",
        client_ip=ip,
        helo="\x00bad helo\xff",
        mail_from="@",
        message_bytes=b"From: a@x.test\r\n\r\n",
    )
    assert verdict.header.startswith(b"Authentication-Results: mx.test;")


@given(st.text(max_size=200))
def test_spf_parser_raises_only_permerror(text: str) -> None:
    try:
        _parse_record(text)
    except _PermError:
        pass


header_names = st.sampled_from(
    [b"DKIM-Signature", b"ARC-Seal", b"ARC-Message-Signature", b"From", b"Authentication-Results"]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(header_names, st.binary(max_size=80)), max_size=6), st.binary(max_size=60))
def test_verify_inbound_random_headers(
    dns_server: DNSServer, fields: list[tuple[bytes, bytes]], body: bytes
) -> None:
    msg = b"".join(name + b": " + value.replace(b"\n", b" ") + b"\r\n" for name, value in fields)
    msg += b"\r\n" + body
    resolver = Resolver(nameservers=dns_server.nameservers, timeout=0.3, lifetime=0.6)
    verdict = asyncio.run(
        verify_inbound(
            resolver,
            hostname="mx.test",
            client_ip="192.0.2.1",
            helo="h.test",
            mail_from="a@h.test",
            message_bytes=msg,
        )
    )
    assert verdict.header.startswith(b"Authentication-Results: mx.test;")
