"""`mailwright dns-records`: the MTA-STS, TLS-RPT and TLSA records for the inbound side."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailwright.cli.main import main
from mailwright.config import load_config
from mailwright.transport.mtasts import parse_policy, parse_record, policy_id
from mailwright.transport.tlsrpt import parse_record as parse_tlsrpt_record
from mailwright.web.https import policy_text as served_policy


def test_dns_records_prints_mta_sts_tls_rpt_and_tlsa(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "a"), "--domain", "example.test",
                 "--hostname", "mx.example.test"]) == 0
    capsys.readouterr()
    assert main(["-c", str(tmp_path / "a" / "mailwright.toml"), "dns-records",
                 "example.test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = {line.split()[0]: line for line in lines if not line.startswith(";")}

    sts = records["_mta-sts.example.test."]
    txt = sts.split(" TXT ", 1)[1].strip().strip('"').encode()
    # the id is derived from the very text the https listener serves for this config
    config = load_config(tmp_path / "a" / "mailwright.toml")
    policy_text = served_policy(SimpleNamespace(config=config))  # type: ignore[arg-type]
    assert parse_record([txt]) == policy_id(policy_text)
    assert parse_policy(policy_text.encode()).matches("mx.example.test")
    enforced = replace(config, mtasts=replace(config.mtasts, mode="enforce"))
    assert policy_id(served_policy(SimpleNamespace(config=enforced))) != policy_id(policy_text)

    rpt = records["_smtp._tls.example.test."]
    assert parse_tlsrpt_record([rpt.split(" TXT ", 1)[1].strip().strip('"').encode()]) == [
        "mailto:postmaster@example.test"]

    [cert_file] = (tmp_path / "a").rglob("cert.pem")
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    tlsa = records["_25._tcp.mx.example.test."]
    assert tlsa.endswith(f" TLSA 3 1 1 {hashlib.sha256(spki).hexdigest()}")
