"""DANE (RFC 7672) against a real SMTP peer: TLSA records from the loopback DNS server, which
sets the AD bit on the names of its "signed" zone as a trusted validating resolver would
(``[dns] dnssec = "trust-ad"``); certificates from a test CA."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from mailwright.queue.smtp import AttemptError, SMTPSession, TLSOutcome
from mailwright.transport.dane import TLSARecord, match_chain, tlsa_for_certificate
from tests.queue.peer import Peer
from tests.support.dnsserver import DNSServer
from tests.transport.conftest import Issued, PrivateCA
from tests.transport.helpers import dest_zone, make_client

TLSA_NAME = "_25._tcp.mx.dest.test"


def signed_zone(dns: DNSServer, *tlsa: str) -> None:
    dest_zone(dns)
    for rdata in tlsa:
        dns.add(TLSA_NAME, "TLSA", rdata)
    dns.authenticated |= {"dest.test", "mx.dest.test", TLSA_NAME}


def ee_record(issued: Issued) -> str:
    return tlsa_for_certificate(issued.cert).text()  # 3 1 1


async def connect(dns: DNSServer, ca: PrivateCA,
                  port: int) -> tuple[SMTPSession | AttemptError, list[TLSOutcome]]:
    client = make_client(dns, ca, port, dane=True)
    seen: list[TLSOutcome] = []

    async def record(outcome: TLSOutcome) -> None:
        seen.append(outcome)

    client.reporter = record
    try:
        session = await client.connect("dest.test")
    except AttemptError as exc:
        return exc, seen
    await session.close()
    return session, seen


async def test_dane_ee_match_delivers_verified_whatever_the_name(dns_server: DNSServer,
                                                                 ca: PrivateCA) -> None:
    # RFC 7672 3.1.1: DANE-EE pins the key; names and the issuer do not matter
    issued = ca.issue("unrelated-name.test")
    async with Peer(ssl_context=issued.server_context()) as peer:
        signed_zone(dns_server, ee_record(issued))
        session, seen = await connect(dns_server, ca, peer.port)
    assert not isinstance(session, AttemptError), session
    assert session.tls and session.verified
    assert [(o.policy_type, o.result_type, o.mx_host) for o in seen] == [
        ("tlsa", "", "mx.dest.test")]
    assert seen[0].policy_string == (ee_record(issued),)


async def test_dane_ee_mismatch_fails_temporarily_and_is_reported(dns_server: DNSServer,
                                                                  ca: PrivateCA) -> None:
    issued = ca.issue("mx.dest.test")  # valid in web PKI terms, but not the pinned key
    other = ca.issue("mx.dest.test")
    async with Peer(ssl_context=issued.server_context()) as peer:
        signed_zone(dns_server, ee_record(other))
        result, seen = await connect(dns_server, ca, peer.port)
        assert peer.messages == []
    assert isinstance(result, AttemptError)
    assert result.temporary and result.status == "4.7.5"
    assert "DANE" in result.text and "no TLSA record" in result.text
    assert [(o.policy_type, o.result_type) for o in seen] == [("tlsa", "validation-failure")]


async def test_dane_unauthenticated_tlsa_is_ignored(dns_server: DNSServer, ca: PrivateCA) -> None:
    """Without the AD bit the TLSA records could be forged: they must not be used (RFC 7672
    2.2), so a record that does not match does not stop delivery either."""
    issued = ca.issue("mx.dest.test")
    async with Peer(ssl_context=issued.server_context()) as peer:
        signed_zone(dns_server, ee_record(ca.issue("x.test")))
        dns_server.authenticated.clear()
        session, _ = await connect(dns_server, ca, peer.port)
    assert not isinstance(session, AttemptError), session
    assert session.tls and not session.verified


async def test_dane_insecure_mx_disables_dane(dns_server: DNSServer, ca: PrivateCA) -> None:
    """RFC 7672 2.2.1: a signed TLSA RRset behind an unsigned MX RRset is not used."""
    issued = ca.issue("mx.dest.test")
    async with Peer(ssl_context=issued.server_context()) as peer:
        signed_zone(dns_server, ee_record(ca.issue("x.test")))
        dns_server.authenticated.discard("dest.test")
        session, _ = await connect(dns_server, ca, peer.port)
    assert not isinstance(session, AttemptError), session
    assert not session.verified


async def test_dane_insecure_address_records_disable_dane(dns_server: DNSServer,
                                                         ca: PrivateCA) -> None:
    """RFC 7672 2.2.2: no TLSA lookup for a host whose address records are not authenticated."""
    issued = ca.issue("mx.dest.test")
    async with Peer(ssl_context=issued.server_context()) as peer:
        signed_zone(dns_server, ee_record(ca.issue("x.test")))
        dns_server.authenticated.discard("mx.dest.test")
        session, _ = await connect(dns_server, ca, peer.port)
    assert not isinstance(session, AttemptError), session
    assert not session.verified
    assert not any(q.rdtype == "TLSA" for q in dns_server.queries)


async def test_dane_ta_matches_the_issuer_and_checks_the_name(dns_server: DNSServer,
                                                            ca: PrivateCA) -> None:
    ta = tlsa_for_certificate(ca.cert, usage=2, selector=1, mtype=2).text()  # 2 1 2 (SHA-512)
    good = ca.issue("mx.dest.test")
    async with Peer(ssl_context=good.server_context(chain=True)) as peer:
        signed_zone(dns_server, ta)
        session, _ = await connect(dns_server, ca, peer.port)
    assert not isinstance(session, AttemptError), session
    assert session.verified

    dns_server.records.clear()
    wrong_name = ca.issue("other.test")
    async with Peer(ssl_context=wrong_name.server_context(chain=True)) as peer:
        signed_zone(dns_server, ta)
        result, _ = await connect(dns_server, ca, peer.port)
    assert isinstance(result, AttemptError)
    assert "does not name mx.dest.test" in result.text


async def test_dane_secure_tlsa_without_starttls_is_refused(dns_server: DNSServer,
                                                            ca: PrivateCA) -> None:
    issued = ca.issue("mx.dest.test")
    async with Peer() as peer:  # no STARTTLS offered: a downgrade attack looks like this
        signed_zone(dns_server, ee_record(issued))
        result, seen = await connect(dns_server, ca, peer.port)
        assert peer.messages == []
    assert isinstance(result, AttemptError) and result.temporary
    assert "does not offer STARTTLS" in result.text
    assert [o.result_type for o in seen] == ["starttls-not-supported"]


def test_dane_matching_types_and_selectors(ca: PrivateCA) -> None:
    issued = ca.issue("mx.dest.test")
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    spki = issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ok = [TLSARecord(3, 0, 0, der), TLSARecord(3, 0, 1, hashlib.sha256(der).digest()),
          TLSARecord(3, 1, 2, hashlib.sha512(spki).digest())]
    for record in ok:
        assert match_chain([record], [der], "any.test") is None, record
    assert match_chain([TLSARecord(3, 1, 1, b"\0" * 32)], [der], "x") is not None
    assert match_chain(ok, [], "x") == "the server sent no certificate"
    assert not TLSARecord(1, 1, 1, b"").usable and not TLSARecord(3, 2, 1, b"").usable


@pytest.mark.parametrize("usage", [0, 1])
async def test_dane_pkix_usages_are_unusable_for_smtp(dns_server: DNSServer, ca: PrivateCA,
                                                      usage: int) -> None:
    """RFC 7672 3.1.3: PKIX-TA/PKIX-EE records are ignored; a secure RRset with no usable
    record still makes TLS mandatory but authenticates nothing."""
    issued = ca.issue("mx.dest.test")
    record = tlsa_for_certificate(issued.cert, usage=usage).text()
    async with Peer(ssl_context=issued.server_context()) as peer:
        signed_zone(dns_server, record)
        session, _ = await connect(dns_server, ca, peer.port)
    assert not isinstance(session, AttemptError), session
    assert session.tls and not session.verified
