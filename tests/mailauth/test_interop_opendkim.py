"""DKIM interoperability with OpenDKIM (Debian's `opendkim` package), both directions.

OpenDKIM's test mode (`opendkim -t FILE`) runs the milter's verify or sign path on a file; keys
come from its TestDNSData data set instead of DNS, and the header it would add is printed as an
INSHEADER line at -vvv.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.support.dnsserver import DNSServer

from mailwright.mailauth import KeyStore, sign_outbound
from mailwright.mailauth.dkim import verify_dkim
from mailwright.mailauth.dnsquery import ResolverDNS

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("opendkim") is None,
        reason="OpenDKIM is not installed (apt-get install -y opendkim opendkim-tools)",
    ),
]

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@receiver.test\r\n"
    b"Subject: interop\r\n"
    b"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <interop@sender.test>\r\n"
    b"\r\n"
    b"Hello,  with  odd   spacing \t \r\n"
    b"\r\n"
    b"and trailing blank lines\r\n\r\n\r\n"
)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    store = KeyStore(tmp_path_factory.mktemp("keys"))
    store.generate("sender.test", algorithm="rsa", selector="r1")
    store.generate("sender.test", algorithm="ed25519", selector="e1")
    return store


def opendkim(tmp_path: Path, settings: dict[str, str], message: bytes) -> str:
    conf = tmp_path / "opendkim.conf"
    lines = {"Syslog": "no", "RequireSafeKeys": "no", **settings}
    conf.write_text("".join(f"{k} {v}\n" for k, v in lines.items()))
    msg = tmp_path / "message.eml"
    msg.write_bytes(message)
    proc = subprocess.run(
        ["opendkim", "-x", str(conf), "-t", str(msg), "-vvv"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return proc.stdout.decode() + proc.stderr.decode()


def inserted(output: str, name: str) -> str:
    m = re.search(rf"INSHEADER: idx=\d+ hname='{name}' hvalue='(.*?)'\n", output, re.DOTALL)
    assert m is not None, output
    return m.group(1)


def dns_data(tmp_path: Path, keystore: KeyStore) -> str:
    path = tmp_path / "dnsdata"
    path.write_text(
        "".join(f"{k.dns_name} {k.txt_record()}\n" for k in keystore.keys("sender.test"))
    )
    return f"file:{path}"


def test_interop_opendkim_verifies_our_signatures(tmp_path: Path, keystore: KeyStore) -> None:
    signed = sign_outbound(MESSAGE, "sender.test", keystore) + MESSAGE
    out = opendkim(tmp_path, {"Mode": "v", "TestDNSData": dns_data(tmp_path, keystore)}, signed)
    results = inserted(out, "Authentication-Results")
    assert re.search(r"dkim=pass \(2048-bit key\)[^;]*header\.a=rsa-sha256", results), results
    assert re.search(r"dkim=pass [^;]*header\.a=ed25519-sha256", results), results


def test_interop_opendkim_detects_changed_body(tmp_path: Path, keystore: KeyStore) -> None:
    signed = sign_outbound(MESSAGE, "sender.test", keystore) + MESSAGE
    tampered = signed.replace(b"Hello,", b"Howdy,")
    out = opendkim(tmp_path, {"Mode": "v", "TestDNSData": dns_data(tmp_path, keystore)}, tampered)
    results = inserted(out, "Authentication-Results")
    assert "dkim=pass" not in results and "dkim=fail" in results, results


@pytest.mark.parametrize(("selector", "algorithm"), [("r1", "rsa"), ("e1", "ed25519")])
async def test_interop_we_verify_opendkim_signatures(
    tmp_path: Path,
    keystore: KeyStore,
    zone: DNSServer,
    dns: ResolverDNS,
    selector: str,
    algorithm: str,
) -> None:
    key_file = keystore.domain_dir("sender.test") / f"{selector}.{algorithm}.pem"
    settings = {
        "Mode": "s",
        "Domain": "sender.test",
        "Selector": selector,
        "KeyFile": str(key_file),
        "SignatureAlgorithm": f"{algorithm}-sha256",
        "Canonicalization": "relaxed/simple",
    }
    out = opendkim(tmp_path, settings, MESSAGE)
    value = inserted(out, "DKIM-Signature")
    header = ("DKIM-Signature: " + value).replace("\n", "\r\n").encode() + b"\r\n"
    signed = header + MESSAGE
    for key in keystore.keys("sender.test"):
        zone.add(key.dns_name, "TXT", key.txt_record())
    [outcome] = await verify_dkim(dns, signed)
    assert (outcome.result, outcome.algorithm) == ("pass", f"{algorithm}-sha256"), outcome
    [bad] = await verify_dkim(dns, signed.replace(b"Hello,", b"Howdy,"))
    assert bad.result == "fail"
