"""A real validating resolver for tests: Debian's unbound, on loopback, resolving the test
zones from ``tests.support.dnsserver.DNSServer`` (a stub zone) and validating them against a
trust anchor the test gives. It plays the trusted local resolver of ``[dns] dnssec =
"trust-ad"``: the AD bit on what validates, SERVFAIL on what is bogus.

Usage::

    with Unbound(tmp_path, dns_server, anchors=[zone.anchor()], stub="test.") as resolver:
        Resolver(resolver.nameservers, trust_ad=True)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import dns.message
import dns.query
import dns.rcode

from tests.support.dnsserver import DNSServer

__all__ = ["Unbound"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port: int = udp.getsockname()[1]
    return port


class Unbound:
    def __init__(self, folder: Path, upstream: DNSServer, *, anchors: list[str],
                 stub: str) -> None:
        binary = shutil.which("unbound") or "/usr/sbin/unbound"
        if not Path(binary).exists():
            raise RuntimeError("unbound is not installed (scripts/test.sh installs it)")
        self.binary = binary
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.upstream = upstream
        self.anchors = anchors
        self.stub = stub
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def nameservers(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", self.port)]

    def _config(self) -> Path:
        anchors = "\n".join(f'  trust-anchor: "{a}"' for a in self.anchors)
        host, port = self.upstream.address
        text = f"""server:
  interface: 127.0.0.1
  port: {self.port}
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{self.folder}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  qname-minimisation: no
  module-config: "validator iterator"
  harden-dnssec-stripped: yes
  cache-max-ttl: 1
  cache-max-negative-ttl: 1
  # RFC 6761 names (test., invalid.) are answered NXDOMAIN by unbound itself unless told
  local-zone: "{self.stub}" nodefault
{anchors}
remote-control:
  control-enable: no
stub-zone:
  name: "{self.stub}"
  stub-addr: {host}@{port}
"""
        path = self.folder / "unbound.conf"
        path.write_text(text)
        return path

    def start(self) -> Unbound:
        self.port = _free_port()
        config = self._config()
        check = subprocess.run([self.binary + "-checkconf", str(config)], capture_output=True,
                               text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"unbound-checkconf: {check.stdout}{check.stderr}")
        self.proc = subprocess.Popen([self.binary, "-d", "-c", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        query = dns.message.make_query(self.stub, "SOA")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"unbound exited: {err}")
            try:
                reply = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
            except (dns.exception.Timeout, OSError):
                continue
            if reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL):
                return self
        raise RuntimeError("unbound did not answer within 20 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def __enter__(self) -> Unbound:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
