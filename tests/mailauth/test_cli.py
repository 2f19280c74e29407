from __future__ import annotations

import base64
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
from cryptography.hazmat.primitives import serialization

from mailwright.cli.main import main
from mailwright.mailauth import KeyStore
from mailwright.mailauth.dmarc import parse_record


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    assert main(["init", str(tmp_path / "mw"), "--domain", "example.test", "--port-base", "20000"]) == 0
    cfg = tmp_path / "mw" / "mailwright.toml"
    monkeypatch.setenv("MAILWRIGHT_CONFIG", str(cfg))
    return cfg


def test_cli_dkim_generate_prints_a_record_matching_the_stored_key(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["dkim", "generate", "Example.TEST", "--algorithm", "ed25519", "--selector", "s1"]) == 0
    out = capsys.readouterr().out
    zone = dns.zone.from_text(out, origin="example.test.", relativize=False, check_origin=False)
    rdataset = zone.find_rdataset("s1._domainkey.example.test.", "TXT")
    txt = b"".join(next(iter(rdataset)).strings).decode()
    [key] = KeyStore(config.parent / "data").keys("example.test")
    assert (key.selector, key.algorithm) == ("s1", "ed25519")
    private = serialization.load_pem_private_key(key.private_pem, None)
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert txt == f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    pem = config.parent / "data" / "dkim" / "example.test" / "s1.ed25519.pem"
    assert pem.stat().st_mode & 0o077 == 0
    # A second key on the same selector is refused with a one-line error and exit 1.
    assert main(["dkim", "generate", "example.test", "--algorithm", "rsa", "--selector", "s1"]) == 1
    assert "s1" in capsys.readouterr().err
    assert main(["dkim", "generate", "example.test", "--selector", "bad selector"]) == 2
    assert main(["dkim", "generate", "exa/mple.test"]) == 2


def test_cli_dns_records_parse_back(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dkim", "generate", "example.test", "--selector", "r1"]) == 0
    assert main(["dkim", "generate", "example.test", "--algorithm", "ed25519", "--selector", "e1"]) == 0
    capsys.readouterr()
    assert main(["dns-records", "example.test"]) == 0
    out = capsys.readouterr().out
    zone = dns.zone.from_text(out, origin="example.test.", relativize=False, check_origin=False)

    def rrs(name: str, rdtype: str) -> list[str]:
        rdataset = zone.find_rdataset(name, rdtype)
        return [r.to_text() for r in rdataset]

    def txt(name: str) -> str:
        rdataset = zone.find_rdataset(name, "TXT")
        return b"".join(next(iter(rdataset)).strings).decode()

    assert rrs("example.test.", "MX") == ["10 mail.example.test."]
    assert txt("example.test.") == "v=spf1 mx -all"
    assert txt("mail.example.test.") == "v=spf1 a -all"
    keys = {k.selector: k for k in KeyStore(config.parent / "data").keys("example.test")}
    assert txt("r1._domainkey.example.test.") == keys["r1"].txt_record()
    assert txt("e1._domainkey.example.test.") == keys["e1"].txt_record()
    record = parse_record(txt("_dmarc.example.test."))
    assert record.policy.value == "reject"
    expected = {
        "_submission": 20587,
        "_submissions": 20465,
        "_imap": 20143,
        "_imaps": 20993,
        "_pop3": 20110,
        "_pop3s": 20995,
    }
    for service, port in expected.items():
        assert rrs(f"{service}._tcp.example.test.", "SRV") == [f"0 1 {port} mail.example.test."]
    names = {str(n) for n in zone.nodes}
    assert all(n.endswith("example.test.") for n in names)
    assert {dns.rdatatype.to_text(rds.rdtype) for node in zone.nodes.values() for rds in node} == {
        "MX",
        "TXT",
        "SRV",
        "TLSA",  # DANE (RFC 7672) for the certificate's key
    }


def test_cli_dns_records_without_keys_says_how(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["dns-records", "example.test", "--dmarc-policy", "quarantine"]) == 0
    out = capsys.readouterr().out
    assert "mailwright dkim generate example.test" in out
    assert '"v=DMARC1; p=quarantine; adkim=r; aspf=r"' in out
