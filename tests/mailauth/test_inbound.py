from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.dnsserver import Behaviour, DNSServer

from mailwright.dns.resolver import Resolver
from mailwright.mailauth import (
    Action,
    DomainAuthPolicy,
    KeyStore,
    sign_outbound,
    verify_inbound,
)
from mailwright.mailauth.authresults import authserv_id_of
from mailwright.mailauth.headers import split_message

HOST = "mx.receiver.test"
IP = "192.0.2.10"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    store = KeyStore(tmp_path_factory.mktemp("data"))
    store.generate("sender.test", algorithm="rsa", selector="r1")
    store.generate("sender.test", algorithm="ed25519", selector="e1")
    return store


def message(
    from_: str = "Alice <alice@sender.test>", body: str = "Hello Bob.\r\n", extra: str = ""
) -> bytes:
    return (
        f"From: {from_}\r\n"
        "To: bob@receiver.test\r\n"
        "Subject: greetings\r\n"
        "Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
        "Message-ID: <1@sender.test>\r\n"
        f"{extra}"
        "\r\n"
        f"{body}"
    ).encode()


def publish(zone: DNSServer, keystore: KeyStore, domain: str = "sender.test") -> None:
    for key in keystore.keys(domain):
        zone.add(key.dns_name, "TXT", key.txt_record())


def signed(keystore: KeyStore, msg: bytes, domain: str = "sender.test") -> bytes:
    return sign_outbound(msg, domain, keystore) + msg


def ar(header: bytes) -> str:
    return header.decode().replace("\r\n\t", " ")


async def verify(resolver: Resolver, msg: bytes, *, mail_from: str = "alice@sender.test",
                 policy: DomainAuthPolicy | None = None, ip: str = IP):  # type: ignore[no-untyped-def]
    return await verify_inbound(
        resolver,
        hostname=HOST,
        client_ip=ip,
        helo="out.sender.test",
        mail_from=mail_from,
        message_bytes=msg,
        policy=policy or DomainAuthPolicy(),
    )


def setup_sender(zone: DNSServer, keystore: KeyStore, dmarc: str = "v=DMARC1; p=reject") -> None:
    publish(zone, keystore)
    zone.add("sender.test", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.add("out.sender.test", "TXT", "v=spf1 ip4:192.0.2.10 -all")
    zone.add("_dmarc.sender.test", "TXT", dmarc)


async def test_inbound_signed_message_passes_everything(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    verdict = await verify(resolver, signed(keystore, message()))
    text = ar(verdict.header)
    assert verdict.action is Action.ACCEPT and verdict.reply is None
    assert text.startswith(f"Authentication-Results: {HOST};")
    assert "spf=pass" in text and "smtp.mailfrom=alice@sender.test" in text
    assert "dkim=pass" in text and "header.a=rsa-sha256" in text
    assert "header.a=ed25519-sha256" in text
    assert [d.result for d in verdict.dkim] == ["pass", "pass"]
    assert "dmarc=pass" in text and "header.from=sender.test" in text
    assert "arc=none" in text
    assert verdict.authenticated_message.startswith(verdict.header)


async def test_inbound_body_altered_after_signing_fails_dkim(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    msg = signed(keystore, message()).replace(b"Hello Bob.", b"Hello Eve.")
    verdict = await verify(resolver, msg)
    assert [d.result for d in verdict.dkim] == ["fail", "fail"]
    assert "body hash" in verdict.dkim[0].reason
    assert "dkim=fail" in ar(verdict.header)
    # SPF still passes and is aligned, so DMARC passes.
    assert verdict.dmarc is not None and verdict.dmarc.result.value == "pass"


async def test_inbound_forged_from_of_reject_domain_is_refused(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    zone.add("attacker.test", "TXT", "v=spf1 ip4:203.0.113.0/24 -all")
    verdict = await verify(
        resolver, message(), mail_from="eve@attacker.test", ip="203.0.113.7"
    )
    assert verdict.action is Action.REJECT
    assert verdict.reply is not None
    assert verdict.reply.encode().startswith(b"550 5.7.1 ")
    assert "dmarc=fail" in ar(verdict.header)
    assert "spf=pass" in ar(verdict.header)  # attacker.test's own SPF passes, unaligned


async def test_inbound_quarantine_policy_goes_to_junk(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore, "v=DMARC1; p=quarantine")
    verdict = await verify(resolver, message(), mail_from="", ip="203.0.113.7")
    assert verdict.action is Action.QUARANTINE
    assert verdict.mailbox == "Junk" and verdict.reply is None
    assert "dmarc=fail" in ar(verdict.header)


async def test_inbound_subdomain_policy_and_pct(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore, "v=DMARC1; p=none; sp=reject")
    verdict = await verify(resolver, message(from_="x@news.sender.test"), ip="203.0.113.7")
    assert verdict.action is Action.REJECT
    zone.set("_dmarc.sender.test", "TXT", "v=DMARC1; p=reject; pct=0")
    verdict = await verify(resolver, message(), ip="203.0.113.7")
    assert verdict.action is Action.QUARANTINE  # outside the 0% sample: one step milder


async def test_inbound_relaxed_alignment_with_subdomain_signer(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore, tmp_path: Path
) -> None:
    setup_sender(zone, keystore)
    other = KeyStore(tmp_path)
    key = other.generate("mail.sender.test", algorithm="ed25519", selector="s")
    zone.add(key.dns_name, "TXT", key.txt_record())
    msg = sign_outbound(message(), "mail.sender.test", other) + message()
    verdict = await verify(resolver, msg, mail_from="", ip="203.0.113.7")
    assert verdict.dmarc is not None and verdict.dmarc.result.value == "pass"
    zone.set("_dmarc.sender.test", "TXT", "v=DMARC1; p=reject; adkim=s")
    verdict = await verify(resolver, msg, mail_from="", ip="203.0.113.7")
    assert verdict.action is Action.REJECT


async def test_inbound_policy_settings_soften_or_disable(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    soft = DomainAuthPolicy(on_dmarc_reject=Action.QUARANTINE)
    verdict = await verify(resolver, message(), ip="203.0.113.7", policy=soft)
    assert verdict.action is Action.QUARANTINE
    report_only = DomainAuthPolicy(dmarc_enforce=False)
    assert verdict.under(report_only).action is Action.ACCEPT
    off = await verify(resolver, message(), ip="203.0.113.7", policy=DomainAuthPolicy(verify=False))
    assert off.action is Action.ACCEPT
    assert off.header == f"Authentication-Results: {HOST}; none\r\n".encode()


async def test_inbound_forged_authentication_results_removed(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    forged = (
        f"Authentication-Results: {HOST.upper()}; dkim=pass header.d=bank.test\r\n"
        f"Authentication-Results: (comment) {HOST}.;\r\n\tdmarc=pass\r\n"
        "Authentication-Results: other.example; spf=pass\r\n"
    )
    msg = signed(keystore, message(extra=forged))
    verdict = await verify(resolver, msg)
    assert verdict.removed_results == 2
    ids = [
        authserv_id_of(f.value)
        for f in split_message(verdict.authenticated_message)[0]
        if f.name == "authentication-results"
    ]
    assert ids == [HOST, "other.example"]
    assert b"bank.test" not in verdict.message
    # Removing them did not break our own DKIM check (A-R is not a signed field).
    assert verdict.dmarc is not None and verdict.dmarc.result.value == "pass"


async def test_inbound_dns_failure_is_temporary(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    zone.set_behaviour("_dmarc.sender.test", Behaviour.SERVFAIL)
    verdict = await verify(resolver, message(), ip="203.0.113.7")
    assert verdict.action is Action.TEMPFAIL
    assert verdict.reply is not None and verdict.reply.code == 451
    assert "dmarc=temperror" in ar(verdict.header)
    zone.clear_behaviour("_dmarc.sender.test")
    # The key lookup fails and SPF fails: DKIM might have passed, so no reject either.
    zone.set_behaviour("r1._domainkey.sender.test", Behaviour.SERVFAIL)
    zone.set_behaviour("e1._domainkey.sender.test", Behaviour.SERVFAIL)
    verdict = await verify(resolver, signed(keystore, message()), ip="203.0.113.7")
    assert [d.result for d in verdict.dkim] == ["temperror", "temperror"]
    assert verdict.action is Action.TEMPFAIL
    assert "dkim=temperror" in ar(verdict.header)


async def test_inbound_multiple_from_rejected(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    msg = message(extra="From: ceo@bank.test\r\n")
    verdict = await verify(resolver, signed(keystore, msg))
    assert verdict.action is Action.REJECT


async def test_inbound_unsigned_without_dmarc_is_accepted(
    zone: DNSServer, resolver: Resolver
) -> None:
    zone.add("plain.test", "TXT", "v=spf1 ~all")
    verdict = await verify(
        resolver, message(from_="a@plain.test"), mail_from="a@plain.test"
    )
    text = ar(verdict.header)
    assert verdict.action is Action.ACCEPT
    assert "spf=softfail" in text and "dkim=none" in text and "dmarc=none" in text


async def test_inbound_missing_key_and_garbage_signature(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    msg = signed(keystore, message())
    zone.remove("r1._domainkey.sender.test")
    garbage = b"DKIM-Signature: this is ; not = = a signature\r\n"
    verdict = await verify(resolver, garbage + msg)
    assert [d.result for d in verdict.dkim] == ["neutral", "permerror", "pass"]


async def test_inbound_bad_input_never_raises(resolver: Resolver) -> None:
    for msg in (b"", b"no header at all", b"\r\n\r\n", b"From: \xff\xfe@\r\n\r\n", b" x\r\n"):
        verdict = await verify(resolver, msg, mail_from="")
        assert verdict.header.startswith(b"Authentication-Results: ")


async def test_inbound_spf_fail_reject_option_and_null_sender(
    zone: DNSServer, resolver: Resolver
) -> None:
    zone.add("strict.test", "TXT", "v=spf1 ip4:198.51.100.1 -all")
    zone.add("out.sender.test", "TXT", "v=spf1 -all")
    msg = message(from_="a@strict.test")
    default = await verify(resolver, msg, mail_from="a@strict.test")
    assert default.action is Action.ACCEPT  # RFC 7489 10.1: no rejection on SPF alone
    assert "spf=fail" in ar(default.header)
    strict = default.under(DomainAuthPolicy(on_spf_fail=Action.REJECT))
    assert strict.action is Action.REJECT
    assert strict.reply is not None and strict.reply.enhanced == "5.7.23"
    null = await verify(resolver, msg, mail_from="")
    assert null.spf is not None and null.spf.domain == "out.sender.test"
    assert "spf=fail" in ar(null.header) and "smtp.helo=out.sender.test" in ar(null.header)
    assert "smtp.mailfrom" not in ar(null.header)


async def test_inbound_dmarc_dns_failure_does_not_delay_exactly_aligned_mail(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    setup_sender(zone, keystore)
    zone.set_behaviour("_dmarc.sender.test", Behaviour.SERVFAIL)
    verdict = await verify(resolver, signed(keystore, message()), ip="203.0.113.7")
    assert verdict.dmarc is not None and verdict.dmarc.result.value == "temperror"
    assert verdict.action is Action.ACCEPT


async def test_inbound_length_limited_signature_with_appended_text_is_not_a_pass(
    zone: DNSServer, resolver: Resolver, keystore: KeyStore
) -> None:
    import dkim as dkimpy

    setup_sender(zone, keystore)
    [_, rsa] = keystore.keys("sender.test")
    msg = message()
    header = dkimpy.sign(msg, b"r1", b"sender.test", rsa.dkimpy_private_key(),
                         include_headers=[b"from"], length=True)
    intact = await verify(resolver, header + msg)
    assert [d.result for d in intact.dkim] == ["pass"]
    appended = await verify(resolver, header + msg + b"Click here: http://evil.test/\r\n")
    assert [d.result for d in appended.dkim] == ["policy"]
