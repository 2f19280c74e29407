"""Pebble, Let's Encrypt's ACME test CA (Debian package `pebble`), as a real subprocess.

Its own HTTPS API gets a certificate from a CA made here (`ca_file` for the client); its
validation authority resolves names through a loopback `DNSServer` and connects to the ports
given as `http_port` (http-01) and `tls_port` (tls-alpn-01), i.e. our listeners.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.server import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip


def make_api_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a localhost/127.0.0.1 leaf for Pebble's API: (ca, cert, key) paths."""
    import ipaddress

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble api test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # fmt: skip
    paths = folder / "api-ca.pem", folder / "api-cert.pem", folder / "api-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    _write_key(paths[2], key)
    return paths


class Pebble:
    def __init__(self, folder: Path, *, dns: str, http_port: int, tls_port: int) -> None:
        binary = shutil.which("pebble") or "/usr/bin/pebble"
        # A missing tool is a failure, not a skip: scripts/test.sh installs it.
        assert Path(binary).exists(), "pebble is not installed (apt-get install pebble)"
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file, cert, key = make_api_certificate(folder)
        self.port, self.management_port = free_port(), free_port()
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": http_port, "tlsPort": tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}  # fmt: skip
        cfg = folder / "pebble.json"
        cfg.write_text(json.dumps(config))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_VA_ALWAYS_VALID="0",
                   PEBBLE_WFE_NONCEREJECT="0")  # fmt: skip
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [binary, "-config", str(cfg), "-dnsserver", dns], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        wait_for("pebble to listen", self._listening, deadline=30)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("pebble exited:\n" + "".join(self.log))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def _management(self, path: str) -> bytes:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        url = f"https://127.0.0.1:{self.management_port}{path}"
        with urllib.request.urlopen(url, context=ctx, timeout=30) as resp:
            data: bytes = resp.read()
        return data

    def root_pem(self) -> bytes:
        return self._management("/roots/0")

    def intermediate_pem(self) -> bytes:
        return self._management("/intermediates/0")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
