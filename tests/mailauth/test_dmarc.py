from __future__ import annotations

import pytest
from tests.support.dnsserver import Behaviour, DNSServer

from mailwright.mailauth.dmarc import (
    AuthIdentifier,
    DMARCRecordError,
    DMARCResult,
    Policy,
    aligned,
    discover,
    evaluate,
    organizational_domain,
    parse_record,
)
from mailwright.mailauth.dnsquery import ResolverDNS


def test_dmarc_parse_record_defaults_and_tags() -> None:
    r = parse_record("v=DMARC1; p=quarantine; sp=reject; adkim=s; pct=50; rua=mailto:a@b.test")
    assert (r.policy, r.subdomain_policy, r.adkim, r.aspf, r.pct) == (
        Policy.QUARANTINE,
        Policy.REJECT,
        "s",
        "r",
        50,
    )
    assert r.rua == ("mailto:a@b.test",)
    assert parse_record("v=DMARC1;p=reject").policy is Policy.REJECT
    assert parse_record("v = DMARC1 ; p = none ; unknown=tag").policy is Policy.NONE


@pytest.mark.parametrize(
    "text",
    ["p=reject; v=DMARC1", "v=DMARC2; p=reject", "v=DMARC1", "v=DMARC1; p=bogus", "v=DMARC1; p=reject; adkim=x"],
)
def test_dmarc_parse_record_rejects_invalid(text: str) -> None:
    with pytest.raises(DMARCRecordError):
        parse_record(text)


def test_dmarc_bad_policy_with_rua_acts_as_none() -> None:
    # RFC 7489 6.6.3: an invalid p= with a valid rua= is processed as p=none.
    assert parse_record("v=DMARC1; p=bogus; rua=mailto:r@x.test").policy is Policy.NONE


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("example.com", "example.com"),
        ("mail.example.com", "example.com"),
        ("a.b.c.example.org", "example.org"),
        ("www.example.co.uk", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("shop.example.com.au", "example.com.au"),
        ("localhost", "localhost"),
        ("Mail.Example.COM.", "example.com"),
    ],
)
def test_dmarc_organizational_domain(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


def test_dmarc_alignment_modes() -> None:
    assert aligned("mail.example.com", "example.com", "r")
    assert aligned("example.com", "news.example.com", "r")
    assert not aligned("mail.example.com", "example.com", "s")
    assert aligned("EXAMPLE.com", "example.com.", "s")
    assert not aligned("example.co.uk", "other.co.uk", "r")
    assert not aligned("", "example.com", "r")


@pytest.mark.parametrize(
    ("identifier", "from_domain"),
    [
        # ICANN suffixes a built-in list of "well-known second-level registries" never had:
        # each pair is two unrelated registrants, whose org domains must differ
        ("bank.com.kz", "attacker.com.kz"),
        ("mail.shop.org.mt", "evil.org.mt"),
        ("news.gov.ie", "phish.gov.ie"),
        ("a.ltd.co.im", "b.ltd.co.im"),
        # the private part of the list: one hosting provider's customers are not one organisation
        ("victim.github.io", "attacker.github.io"),
        ("victim.blogspot.com", "attacker.blogspot.com"),
    ],
)
def test_dmarc_unrelated_domains_under_a_public_suffix_do_not_align(
    identifier: str, from_domain: str
) -> None:
    assert organizational_domain(identifier) != organizational_domain(from_domain)
    assert not aligned(identifier, from_domain, "r")
    # while a subdomain of the same registrant still aligns in relaxed mode
    assert aligned("mx." + from_domain, from_domain, "r")


def test_dmarc_public_suffix_list_is_the_packaged_one() -> None:
    from mailwright.mailauth.dmarc import psl_source

    assert psl_source().startswith("publicsuffixlist ")


async def test_dmarc_discovery_falls_back_to_organizational_domain(
    zone: DNSServer, dns: ResolverDNS
) -> None:
    zone.add("_dmarc.example.test", "TXT", "v=DMARC1; p=reject; sp=quarantine")
    found = await discover(dns, "a.b.example.test")
    assert found.record is not None and found.domain == "example.test"
    assert found.record.policy_for("a.b.example.test", found.domain) is Policy.QUARANTINE
    zone.add("_dmarc.own.example.test", "TXT", "v=DMARC1; p=none")
    own = await discover(dns, "own.example.test")
    assert own.domain == "own.example.test" and own.record is not None
    assert own.record.policy_for("own.example.test", own.domain) is Policy.NONE


async def test_dmarc_discovery_edge_cases(zone: DNSServer, dns: ResolverDNS) -> None:
    assert (await discover(dns, "nothing.test")).record is None
    zone.add("_dmarc.two.test", "TXT", "v=DMARC1; p=reject", "v=DMARC1; p=none")
    assert (await discover(dns, "two.test")).record is None  # several records: no DMARC
    zone.add("_dmarc.other.test", "TXT", "some other text", "v=DMARC1; p=reject")
    assert (await discover(dns, "other.test")).record is not None
    zone.set_behaviour("_dmarc.broken.test", Behaviour.SERVFAIL)
    assert (await discover(dns, "broken.test")).temperror


async def test_dmarc_evaluate_results(zone: DNSServer, dns: ResolverDNS) -> None:
    zone.add("_dmarc.example.test", "TXT", "v=DMARC1; p=reject")
    found = await discover(dns, "example.test")
    spf_pass = AuthIdentifier("bounce.example.test", "pass")
    dkim_pass = AuthIdentifier("example.test", "pass")
    other = AuthIdentifier("attacker.test", "pass")
    assert evaluate(found, "example.test", spf_pass, []).result is DMARCResult.PASS
    assert evaluate(found, "example.test", other, [dkim_pass]).result is DMARCResult.PASS
    failed = evaluate(found, "example.test", other, [other])
    assert (failed.result, failed.disposition) == (DMARCResult.FAIL, Policy.REJECT)
    maybe = evaluate(found, "example.test", AuthIdentifier("example.test", "temperror"), [])
    assert maybe.result is DMARCResult.TEMPERROR
    sampled = parse_record("v=DMARC1; p=reject; pct=10")
    found_sampled = type(found)(sampled, "example.test")
    assert evaluate(found_sampled, "example.test", other, [], sample=lambda: 0.05).disposition is Policy.REJECT
    assert evaluate(found_sampled, "example.test", other, [], sample=lambda: 0.5).disposition is Policy.QUARANTINE
