"""TLS versions and ciphers of every TLS listener, seen by `openssl s_client` (issue 10, item 7).

One real server; every listener that speaks TLS is tried: implicit TLS on submissions, imaps
and pop3s, STARTTLS on smtp, submission (`-starttls smtp`), imap and pop3. For each:

* TLS 1.2 and TLS 1.3 handshakes complete, with an AEAD cipher;
* TLS 1.1 and TLS 1.0 are refused (RFC 8996), and a CBC or static-RSA TLS 1.2 cipher offered
  alone is refused (RFC 9325 4.2);
* a TLS 1.2 renegotiation asked for by the client is refused with a no_renegotiation alert.

On imaps (one SSL context serves every listener) every TLS 1.2 cipher this openssl knows is
offered alone: exactly the three ECDHE-ECDSA AEAD suites are accepted.

Why a refusal is the server's and not the client's: the client is forced to offer the old
versions with `-cipher DEFAULT@SECLEVEL=0` (OpenSSL's default security level would otherwise
forbid them), and `-msg` traces the handshake. A client-side refusal shows as "no protocols
available" / "no ciphers available" and no ClientHello is sent. Here the trace shows our
ClientHello going out (`>>> ... ClientHello`) and no ServerHello coming back (`<<< ...
ServerHello` absent), with "Cipher is (NONE)": the server looked at the offer and ended the
handshake. (The server, through asyncio's SSL transport, closes the connection without sending
a `protocol_version` / `handshake_failure` alert first, so the client reports "unexpected eof"
rather than "alert protocol version"; an alert, if one ever arrives, is accepted too.)

All openssl runs (about 210) happen concurrently once, in a module fixture; each test then
checks one recorded result.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import MailwrightServer

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl (the command) is not installed")

# listener -> the `-starttls` protocol, or None for implicit TLS
LISTENERS: dict[str, str | None] = {
    "submissions": None, "imaps": None, "pop3s": None,
    "smtp": "smtp", "submission": "smtp", "imap": "imap", "pop3": "pop3",
}
OLD_VERSIONS = {"tls1_1": "TLSv1.1", "tls1": "TLSv1"}
# Offered alone with TLS 1.2 on every listener: ECDHE with CBC and SHA-256 (Python's default
# server context accepts it: this is the one the explicit cipher list newly refuses), ECDHE with
# CBC and SHA-1, and static RSA key exchange with CBC (no forward secrecy).
WEAK_CIPHERS = ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "AES128-SHA")
# What the server may agree to in TLS 1.2 with its ECDSA certificate.
STRONG_TLS12 = {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-CHACHA20-POLY1305"}
TLS13_SUITES = {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                "TLS_CHACHA20_POLY1305_SHA256"}
TIMEOUT = 10.0


@dataclass(frozen=True)
class Handshake:
    args: tuple[str, ...]
    returncode: int | None  # None: timed out
    version: str | None  # from "New, TLSv1.x, Cipher is ...": None when none was agreed
    cipher: str | None  # from the same line; None when no cipher was agreed
    attempted: str | None  # "Protocol  :" of a failed session: the version the client tried
    client_hello_sent: bool
    server_hello_received: bool
    server_hellos: int
    alerts_received: tuple[str, ...]
    output: str

    @property
    def completed(self) -> bool:
        return self.cipher is not None and self.server_hello_received

    def explain(self) -> str:
        return f"openssl s_client {' '.join(self.args)} -> rc {self.returncode}\n{self.output}"


def s_client(port: int, starttls: str | None, *args: str, stdin: bytes = b"") -> Handshake:
    argv = ["-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-msg", *args]
    if starttls is not None:
        argv += ["-starttls", starttls]
    assert OPENSSL is not None
    try:
        # stdin at EOF: s_client does the handshake, prints the session and quits ("R" on a
        # line first asks for a renegotiation).
        proc = subprocess.run([OPENSSL, "s_client", *argv], input=stdin, capture_output=True,
                              timeout=TIMEOUT)
        out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(
            errors="replace")
        code = None
    # TLS 1.3 sessions print no "Protocol :" block when stdin closes before a ticket arrives.
    protocol = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
    new = re.search(r"^New, ([^,]+), Cipher is (\S+)", out, re.M)
    agreed = new is not None and new.group(2) != "(NONE)"
    return Handshake(
        args=tuple(argv), returncode=code,
        version=new.group(1) if new and agreed else None,
        cipher=new.group(2) if new and agreed else None,
        attempted=protocol.group(1) if protocol else None,
        client_hello_sent=re.search(r"^>>> .*ClientHello", out, re.M) is not None,
        server_hello_received=re.search(r"^<<< .*ServerHello", out, re.M) is not None,
        server_hellos=len(re.findall(r"^<<< .*ServerHello$", out, re.M)),
        alerts_received=tuple(re.findall(r"^<<< .*Alert.*?, (.*)$", out, re.M)),
        output=out,
    )


def tls12_cipher_names() -> list[str]:
    """Every TLS 1.2 cipher this openssl knows, weak ones included."""
    assert OPENSSL is not None
    listed = subprocess.run([OPENSSL, "ciphers", "-tls1_2", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                            capture_output=True, text=True, timeout=TIMEOUT, check=True)
    return [c for c in listed.stdout.strip().split(":") if c and not c.startswith("TLS_")]


Key = tuple[str, str]  # (listener, case)
Job = tuple[int, str | None, tuple[str, ...], bytes]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Key, Handshake]]:
    root: Path = tmp_path_factory.mktemp("tls")
    server = MailwrightServer(root / "mw")
    jobs: dict[Key, Job] = {}
    for name, starttls in LISTENERS.items():
        port = server.port(name)
        jobs[(name, "tls1_2")] = (port, starttls, ("-tls1_2",), b"")
        jobs[(name, "tls1_3")] = (port, starttls, ("-tls1_3",), b"")
        jobs[(name, "renegotiate")] = (port, starttls, ("-tls1_2",), b"R\n")
        for flag in OLD_VERSIONS:
            jobs[(name, flag)] = (port, starttls, (f"-{flag}", "-cipher", "DEFAULT@SECLEVEL=0"),
                                  b"")
        for weak in WEAK_CIPHERS:
            jobs[(name, weak)] = (port, starttls, ("-tls1_2", "-cipher", f"{weak}@SECLEVEL=0"),
                                  b"")
    # The full TLS 1.2 scan, one cipher at a time, on one listener (one context serves all).
    for cipher in tls12_cipher_names():
        jobs[("imaps", f"scan:{cipher}")] = (
            server.port("imaps"), None, ("-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0"), b"")
    server.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {key: pool.submit(s_client, port, starttls, *args, stdin=stdin)
                       for key, (port, starttls, args, stdin) in jobs.items()}
            done = {key: f.result() for key, f in futures.items()}
        # the server survived all of it and still serves a good client
        after = s_client(server.port("imaps"), None, "-tls1_3")
        assert after.completed, after.explain()
        yield done
    finally:
        server.stop()


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_modern_versions_complete(results: dict[Key, Handshake], listener: str,
                                  version: str) -> None:
    hs = results[(listener, "tls1_2" if version == "TLSv1.2" else "tls1_3")]
    assert hs.completed and hs.returncode == 0, hs.explain()
    assert hs.version == version, hs.explain()
    allowed = STRONG_TLS12 if version == "TLSv1.2" else TLS13_SUITES
    assert hs.cipher in allowed, hs.explain()


def _assert_refused_by_server(hs: Handshake) -> None:
    assert "no protocols available" not in hs.output, "the client refused: " + hs.explain()
    assert "no ciphers available" not in hs.output, "the client refused: " + hs.explain()
    assert hs.client_hello_sent, "no ClientHello went out: " + hs.explain()
    assert not hs.server_hello_received, "the server answered: " + hs.explain()
    assert not hs.completed and hs.returncode not in (0, None), hs.explain()
    # A closed connection (asyncio sends no alert) or a fatal alert; never a warning only.
    assert all("fatal" in a for a in hs.alerts_received), hs.explain()


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize("flag", OLD_VERSIONS)
def test_old_versions_refused(results: dict[Key, Handshake], listener: str, flag: str) -> None:
    hs = results[(listener, flag)]
    assert hs.attempted == OLD_VERSIONS[flag], "the client did not try: " + hs.explain()
    _assert_refused_by_server(hs)


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize("cipher", WEAK_CIPHERS)
def test_weak_tls12_cipher_refused(results: dict[Key, Handshake], listener: str,
                                   cipher: str) -> None:
    _assert_refused_by_server(results[(listener, cipher)])


def test_tls12_cipher_scan(results: dict[Key, Handshake]) -> None:
    """Every TLS 1.2 cipher openssl knows, offered alone: exactly the strong ECDSA ones pass."""
    scan = {key[1].removeprefix("scan:"): hs for key, hs in results.items()
            if key[1].startswith("scan:")}
    assert len(scan) > 30, sorted(scan)  # the scan really ran
    accepted = {name for name, hs in scan.items() if hs.completed}
    assert accepted == STRONG_TLS12, sorted(accepted)
    for name, hs in scan.items():
        if name not in accepted:
            assert not hs.server_hello_received, hs.explain()


@pytest.mark.parametrize("listener", LISTENERS)
def test_renegotiation_refused(results: dict[Key, Handshake], listener: str) -> None:
    """A client-initiated TLS 1.2 renegotiation is answered with a no_renegotiation alert
    (OP_NO_RENEGOTIATION; see RFC 9325 3.5), never with a second ServerHello."""
    hs = results[(listener, "renegotiate")]
    assert hs.version == "TLSv1.2" and "RENEGOTIATING" in hs.output, hs.explain()
    assert hs.server_hellos == 1, hs.explain()
    assert any("no_renegotiation" in a for a in hs.alerts_received), hs.explain()
