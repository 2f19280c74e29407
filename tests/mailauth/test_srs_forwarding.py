"""Forwarding over real SMTP: an alias on one instance forwards to another instance.

A serves forwarder.test with the alias fwd@forwarder.test -> bob@recipient.test; B serves
recipient.test and origin.test (carol's domain, whose SPF lists neither server). Carol's mail
reaches A from 127.0.0.1 and is forwarded to B: B sees an SRS0 reverse-path at forwarder.test
(so SPF passes at B for our domain) and an ARC set sealed by forwarder.test that dkimpy's
arc_verify and our verifier accept. A bounce to that SRS address, sent to A's MX, comes back to
carol at B; a forged one is refused with 550 5.1.1.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim as dkimpy
import pytest
from tests.mailauth.test_e2e_instances import instance, publish
from tests.support.dnsserver import DNSServer
from tests.support.server import MailwrightServer, find, serving, wait_for

from mailwright.config import ConfigError, load_config
from mailwright.mailauth import KeyStore
from mailwright.mailauth.srs import SRS, load_secret

pytestmark = pytest.mark.slow

World = tuple[MailwrightServer, MailwrightServer, dict[bytes, bytes]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("srs-e2e")
    with DNSServer() as dns_server:
        a = instance(root, "forwarder.test", dns_server)
        b = instance(root, "recipient.test", dns_server)
        a.set_outbound(port=b.port("smtp"))
        b.set_outbound(port=a.port("smtp"))
        a.cli("dkim", "generate", "forwarder.test")
        publish(dns_server, a.cli("dns-records", "forwarder.test"))
        publish(dns_server, b.cli("dns-records", "recipient.test"))
        for host in ("mail.forwarder.test", "mail.recipient.test"):
            dns_server.add(host, "A", "127.0.0.1")
        # Carol's domain: its mail really comes from 192.0.2.1, so SPF at B fails for it
        # unless the envelope sender is rewritten into forwarder.test (softfail at A, which
        # accepts it: the test connects from 127.0.0.1).
        b.cli("domain", "add", "origin.test")
        dns_server.add("origin.test", "TXT", "v=spf1 ip4:192.0.2.1 ~all")
        dns_server.add("origin.test", "MX", "10 mail.recipient.test.")
        a.cli("alias", "add", "fwd@forwarder.test", "bob@recipient.test")
        b.add_user("bob@recipient.test")
        b.add_user("carol@origin.test")
        txt: dict[bytes, bytes] = {}
        for key in KeyStore(load_config(a.cfg).server.data_dir).keys("forwarder.test"):
            txt[(key.dns_name + ".").encode()] = key.txt_record().encode()
        with serving(a, b):
            yield a, b, txt


def send(server: MailwrightServer, mail_from: str, rcpt: str, raw: str) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), local_hostname="client.origin.test",
                      timeout=30) as client:
        client.sendmail(mail_from, [rcpt], raw.encode())


def forwarded(world: World, subject: str) -> EmailMessage:
    a, b, _ = world
    raw = (f"From: Carol <carol@origin.test>\r\nTo: fwd@forwarder.test\r\nSubject: {subject}\r\n"
           "Message-ID: <" + subject.replace(" ", ".") + "@origin.test>\r\n\r\nHello Bob.\r\n")
    send(a, "carol@origin.test", "fwd@forwarder.test", raw)
    got = wait_for("the forwarded message in bob's INBOX",
                   lambda: find(b.messages("bob@recipient.test"), subject))
    assert isinstance(got, EmailMessage)
    return got


def results_at(msg: EmailMessage, authserv_id: str) -> str:
    ours = [" ".join(str(v).split()) for v in msg.get_all("Authentication-Results") or []
            if str(v).strip().lower().startswith(authserv_id)]
    assert len(ours) == 1, msg.get_all("Authentication-Results")
    return ours[0]


def test_forwarded_envelope_sender_is_srs_and_spf_passes_for_our_domain(world: World) -> None:
    a, b, _ = world
    got = forwarded(world, "srs forwarded")
    return_path = str(got["Return-Path"]).strip("<> ")
    local, _, domain = return_path.rpartition("@")
    assert domain == "forwarder.test"
    assert local.startswith("SRS0=") and local.endswith("=origin.test=carol")
    text = results_at(got, b.hostname)
    assert "spf=pass (matched mx at forwarder.test)" in text
    assert f"smtp.mailfrom={return_path}" in text
    # The address decodes back under A's secret (generated into A's data directory).
    secret = load_secret("", load_config(a.cfg).server.data_dir)
    assert SRS(secret).reverse(return_path) == "carol@origin.test"


def test_forwarded_copy_is_arc_sealed_by_the_forwarding_domain(world: World) -> None:
    a, b, txt = world
    got = forwarded(world, "arc sealed")
    seal = " ".join(str(got["ARC-Seal"]).split())
    assert "i=1" in seal and "cv=none" in seal and "d=forwarder.test" in seal
    aar = " ".join(str(got["ARC-Authentication-Results"]).split())
    assert aar.startswith(f"i=1; {a.hostname}") and "spf=softfail" in aar
    assert "arc=pass" in results_at(got, b.hostname)
    raw = next(r for r in b.mailbox("bob@recipient.test") if b"arc sealed" in r)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return txt.get(name if name.endswith(b".") else name + b".", b"")

    cv, _, reason = dkimpy.arc_verify(raw, dnsfunc=dnsfunc)
    assert cv == dkimpy.CV_Pass, reason


def test_bounce_to_srs_address_reaches_the_original_sender(world: World) -> None:
    a, b, _ = world
    got = forwarded(world, "to be bounced")
    srs_address = str(got["Return-Path"]).strip("<> ")
    bounce = (f"From: MAILER-DAEMON@bouncer.test\r\nTo: {srs_address}\r\n"
              "Subject: Undelivered Mail Returned to Sender\r\n\r\nbounced: to be bounced\r\n")
    send(a, "", srs_address, bounce)
    back = wait_for("the bounce in carol's INBOX",
                    lambda: find(b.messages("carol@origin.test"), "bounced: to be bounced"))
    assert isinstance(back, EmailMessage)
    assert str(back["Return-Path"]).strip() in ("<>", "")


def test_forged_or_expired_srs_address_is_refused(world: World) -> None:
    a, _, _ = world
    forged = SRS(b"not the server's secret").forward("victim@origin.test", "forwarder.test")
    expired = SRS(load_secret("", load_config(a.cfg).server.data_dir)).forward(
        "victim@origin.test", "forwarder.test", now=0.0)
    for address in (forged, expired, "SRS0=xx@forwarder.test"):
        with smtplib.SMTP("127.0.0.1", a.port("smtp"), local_hostname="client.origin.test",
                          timeout=30) as client:
            client.ehlo()
            client.mail("")
            code, text = client.rcpt(address)
            assert (code, text[:5]) == (550, b"5.1.1"), (address, code, text)
            assert b"SRS address" in text


def test_srs_config_keys(tmp_path: Path) -> None:
    server = MailwrightServer(tmp_path / "off", "forwarder.test")
    server.edit_config("[server]", '[srs]\nenabled = false\nsecret = "s3"\nmax_age = "7d"\n'
                       'old_secrets = ["s1", "s2"]\n\n[server]')
    srs = load_config(server.cfg).srs
    assert (srs.enabled, srs.secret, srs.max_age, srs.old_secrets) == (
        False, "s3", 7 * 86400.0, ("s1", "s2"))
    server.edit_config('max_age = "7d"', 'max_age = "2h"')
    with pytest.raises(ConfigError, match=r"srs\.max_age"):
        load_config(server.cfg)
