"""ed25519-sha256 (RFC 8463) through dkimpy on PyNaCl, as dkimpy expects (dkimpy[ed25519])."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import dkim as dkimpy
from tests.support.dnsserver import DNSServer

from mailwright.mailauth import KeyStore, sign_outbound
from mailwright.mailauth.dkim import verify_dkim
from mailwright.mailauth.dnsquery import ResolverDNS

MESSAGE = b"From: a@sender.test\r\nTo: b@x.test\r\nSubject: s\r\n\r\nbody\r\n"


def test_dkimpy_uses_pynacl_and_nothing_is_injected() -> None:
    import nacl.signing

    assert dkimpy.nacl is sys.modules["nacl"]
    assert dkimpy.nacl.signing is nacl.signing
    assert importlib.util.find_spec("mailwright.mailauth._ed25519") is None


async def test_ed25519_sign_and_verify_round_trip(
    tmp_path: Path, zone: DNSServer, dns: ResolverDNS
) -> None:
    store = KeyStore(tmp_path / "data")
    key = store.generate("sender.test", algorithm="ed25519", selector="e")
    zone.add(key.dns_name, "TXT", key.txt_record())
    signed = sign_outbound(MESSAGE, "sender.test", store) + MESSAGE
    assert b"a=ed25519-sha256" in signed
    [outcome] = await verify_dkim(dns, signed)
    assert (outcome.result, outcome.algorithm) == ("pass", "ed25519-sha256")
    [outcome] = await verify_dkim(dns, signed.replace(b"body", b"bodx"))
    assert outcome.result == "fail"


async def test_ed25519_signature_by_another_key_fails(
    tmp_path: Path, zone: DNSServer, dns: ResolverDNS
) -> None:
    store = KeyStore(tmp_path / "data")
    key = store.generate("sender.test", algorithm="ed25519", selector="e")
    other = KeyStore(tmp_path / "other").generate("sender.test", algorithm="ed25519",
                                                   selector="e")
    zone.add(key.dns_name, "TXT", other.txt_record())  # another key published under the name
    signed = sign_outbound(MESSAGE, "sender.test", store) + MESSAGE
    [outcome] = await verify_dkim(dns, signed)
    assert (outcome.result, outcome.algorithm) == ("fail", "ed25519-sha256")
