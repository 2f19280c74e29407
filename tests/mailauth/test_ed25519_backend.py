"""ed25519-sha256 works with PyNaCl and, without it, on the `cryptography` stand-in."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.dnsserver import DNSServer

from mailwright.mailauth import KeyStore, sign_outbound
from mailwright.mailauth.dkim import verify_dkim
from mailwright.mailauth.dnsquery import ResolverDNS

MESSAGE = b"From: a@sender.test\r\nTo: b@x.test\r\nSubject: s\r\n\r\nbody\r\n"

WITHOUT_NACL = textwrap.dedent(
    """
    import sys
    sys.modules["nacl"] = None  # any `import nacl...` now fails as if PyNaCl were absent
    from mailwright.mailauth import KeyStore, sign_outbound
    from mailwright.mailauth.dkim import ED25519_BACKEND, _signatures, _verify_all, KeyAnswer
    assert ED25519_BACKEND == "cryptography", ED25519_BACKEND
    store = KeyStore(sys.argv[1])
    [key] = store.keys("sender.test")
    msg = open(sys.argv[2], "rb").read()
    foreign = open(sys.argv[3], "rb").read()
    keys = {key.dns_name: KeyAnswer((key.txt_record().encode(),))}
    own = sign_outbound(msg, "sender.test", store) + msg
    results = [o.result for m in (own, foreign, foreign.replace(b"body", b"bodx"))
               for o in _verify_all(m, _signatures(m), keys, 1024)]
    print(",".join(results), flush=True)
    sys.stdout.buffer.write(own)
    """
)


async def test_ed25519_without_pynacl_interoperates(
    tmp_path: Path, zone: DNSServer, dns: ResolverDNS
) -> None:
    store = KeyStore(tmp_path / "data")
    key = store.generate("sender.test", algorithm="ed25519", selector="e")
    zone.add(key.dns_name, "TXT", key.txt_record())
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "foreign").write_bytes(sign_outbound(MESSAGE, "sender.test", store) + MESSAGE)
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_NACL, str(tmp_path / "data"), str(tmp_path / "msg"),
         str(tmp_path / "foreign")],
        capture_output=True,
        timeout=120,
        check=True,
    )
    first, _, signed_there = proc.stdout.partition(b"\n")
    assert first.decode() == "pass,pass,fail"
    [outcome] = await verify_dkim(dns, signed_there)
    assert (outcome.result, outcome.algorithm) == ("pass", "ed25519-sha256")
