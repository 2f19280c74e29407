from __future__ import annotations

from pathlib import Path

import dkim as dkimpy
import pytest
from dkim.util import parse_tag_value

from mailwright.mailauth import KeyStore, author_domain, sign_outbound
from mailwright.mailauth.headers import split_message

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\n"
    b"To: bob@x.test\r\n"
    b"Cc: carol@x.test\r\n"
    b"Subject: signing\r\n"
    b"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <s@sender.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Received: from somewhere\r\n"
    b"X-Custom: not signed\r\n"
    b"\r\n"
    b"Body text.\r\n"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    s = KeyStore(tmp_path_factory.mktemp("sign"))
    s.generate("sender.test", algorithm="rsa", selector="r")
    s.generate("sender.test", algorithm="ed25519", selector="e")
    return s


def dnsfunc_for(store: KeyStore):  # type: ignore[no-untyped-def]
    records = {k.dns_name + ".": k.txt_record().encode() for k in store.keys("sender.test")}

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name.decode())

    return dnsfunc


def test_signing_both_algorithms_verify_with_dkimpy(store: KeyStore) -> None:
    headers = sign_outbound(MESSAGE, "sender.test", store)
    signed = headers + MESSAGE
    fields, _ = split_message(headers)
    tags = [parse_tag_value(f.value) for f in fields]
    assert [t[b"a"] for t in tags] == [b"rsa-sha256", b"ed25519-sha256"]
    for index in range(2):
        verifier = dkimpy.DKIM(signed)
        assert verifier.verify(idx=index, dnsfunc=dnsfunc_for(store))


def test_signing_recommended_headers_and_from_oversigned(store: KeyStore) -> None:
    headers = sign_outbound(MESSAGE, "sender.test", store)
    tags = parse_tag_value(split_message(headers)[0][0].value)
    signed_fields = [h.strip() for h in tags[b"h"].decode().split(":")]
    assert signed_fields.count("from") == 2  # RFC 6376 8.15: a second From breaks the signature
    assert {"to", "cc", "subject", "date", "message-id", "mime-version", "content-type"} <= set(
        signed_fields
    )
    assert "received" not in signed_fields and "x-custom" not in signed_fields
    assert tags[b"c"] == b"relaxed/relaxed" and tags[b"d"] == b"sender.test"
    # An added From after signing makes the signature fail at dkimpy's verifier.
    forged = headers + b"From: ceo@sender.test\r\n" + MESSAGE
    assert not dkimpy.DKIM(forged).verify(idx=0, dnsfunc=dnsfunc_for(store))


def test_signing_edge_cases(store: KeyStore, tmp_path: Path) -> None:
    assert sign_outbound(MESSAGE, "other.test", store) == b""
    assert sign_outbound(MESSAGE, "other.test", KeyStore(tmp_path)) == b""
    with pytest.raises(ValueError, match="From"):
        sign_outbound(b"Subject: no from\r\n\r\nx\r\n", "sender.test", store)
    assert author_domain(MESSAGE) == "sender.test"
    assert author_domain(b"From: a@x.test\r\nFrom: b@y.test\r\n\r\n") is None
    assert author_domain(b"From: =?utf-8?q?A?= <a@B\xc3\xbcCHER.test>\r\n\r\n") == "xn--bcher-kva.test"
