"""ACME against Pebble over real sockets: issuance by tls-alpn-01 and by http-01, every TLS
listener presenting the issued certificate, renewal without a restart, `tls status`, and the
MTA-STS policy fetched over HTTPS verified against Pebble's root."""

from __future__ import annotations

import http.client
import smtplib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.dnsserver import DNSServer
from tests.support.pebble import Pebble, free_port
from tests.support.server import MailwrightServer, wait_for
from tests.support.workers import worker_of, worker_pids

NAMES = ("mail.example.test", "autoconfig.example.test", "mta-sts.example.test")


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        for name in NAMES:
            server.add(name, "A", "127.0.0.1")
        yield server


def acme_server(root: Path, pebble_dir: Path, dns: DNSServer, *, challenge: str, workers: int = 1,
                ) -> tuple[MailwrightServer, Pebble]:
    srv = MailwrightServer(root / "mw", workers=workers)
    # Pebble validates at the port of the challenge under test only; the other points nowhere,
    # so an issuance proves that challenge was answered.
    alpn = challenge == "tls-alpn-01"
    pebble = Pebble(pebble_dir, dns=dns.config_value,
                    http_port=free_port() if alpn else srv.port("http"),
                    tls_port=srv.port("https") if alpn else free_port())
    srv.edit_config('key = "tls/key.pem"\n', 'key = "tls/key.pem"\nacme = true\n')
    with srv.cfg.open("a") as fh:
        fh.write(f'\n[acme]\ndirectory = "{pebble.directory}"\nemail = "postmaster@example.test"\n'
                 f'ca_file = "{pebble.ca_file}"\nnames = ["autoconfig.example.test", '
                 f'"mta-sts.example.test"]\nchallenge = "{challenge}"\ncheck_interval = "1s"\n'
                 '\n[mtasts]\nmode = "enforce"\nmax_age = "1d"\n')
    return srv, pebble


def issued(srv: MailwrightServer, pebble: Pebble, proto: str = "imaps") -> x509.Certificate:
    """Wait for the listener to present a Pebble certificate; on a hang, say what the server
    and Pebble logged."""
    try:
        return wait_for(f"an ACME certificate on {proto}",
                        lambda: (c := presented(srv.port(proto))) and issued_by_pebble(c, pebble)
                        and c, deadline=90)  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\nserver:\n{''.join(srv.stderr)[-3000:]}\n"
                             f"pebble:\n{''.join(pebble.log)[-3000:]}") from None


def presented(port: int, server_hostname: str = "mail.example.test") -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, \
            ctx.wrap_socket(sock, server_hostname=server_hostname) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def issued_by_pebble(cert: x509.Certificate, pebble: Pebble) -> bool:
    intermediate = x509.load_pem_x509_certificates(pebble.intermediate_pem())[0]
    return cert.issuer == intermediate.subject


def https_get(port: int, host: str, path: str, cafile: bytes) -> tuple[str, str]:
    """One HTTP/1.1 request over TLS verified for `host` against `cafile`: status line, body."""
    ctx = ssl.create_default_context(cadata=cafile.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, \
            ctx.wrap_socket(sock, server_hostname=host) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


def starttls_certificate(port: int) -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.starttls(context=ctx)
        assert isinstance(smtp.sock, ssl.SSLSocket)
        der = smtp.sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def http_metrics(srv: MailwrightServer) -> str:
    c = http.client.HTTPConnection("127.0.0.1", srv.port("http"), timeout=30)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def every_worker_presents(srv: MailwrightServer, serial: int, proto: str = "imaps") -> None:
    """With several workers: handshakes until each worker has answered one, every one of them
    presenting the certificate `serial` (a worker that missed the new one would show it)."""
    if srv.workers == 1:
        return
    assert srv.proc is not None
    workers = worker_pids(srv.proc.pid)
    assert len(workers) == srv.workers, "ACME must not reduce the workers"
    seen: set[int] = set()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", srv.port(proto)), timeout=30) as sock, \
                ctx.wrap_socket(sock, server_hostname="mail.example.test") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            assert x509.load_der_x509_certificate(der).serial_number == serial
            pid = worker_of(srv.proc.pid, tls)
            if pid is not None:
                seen.add(pid)
        if seen == set(workers):
            return
    raise AssertionError(f"200 handshakes reached workers {seen} of {workers}")


@pytest.mark.parametrize("workers", [1, 2])
def test_tls_alpn_01_issues_renews_in_place_and_serves_mta_sts(
    tmp_path: Path, dns: DNSServer, workers: int
) -> None:
    """With two workers the validation connections may reach either: each has the challenge
    certificate, and each loads the issued and the renewed certificate."""
    srv, pebble = acme_server(tmp_path, tmp_path / "pebble", dns, challenge="tls-alpn-01",
                              workers=workers)  # fmt: skip
    try:
        srv.start()
        pid = srv.proc.pid if srv.proc else 0
        first = issued(srv, pebble)
        every_worker_presents(srv, first.serial_number)
        san = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(san.get_values_for_type(x509.DNSName)) == set(NAMES)
        # Every implicit-TLS listener shares the context: POP3S and submissions present it too.
        for proto in ("pop3s", "submissions", "https"):
            assert presented(srv.port(proto)).serial_number == first.serial_number
        acme_files = srv.dir / "data" / "acme"
        for name in ("account.key", "key.pem", "cert.pem"):
            assert (acme_files / name).stat().st_mode & 0o777 == 0o600

        status = srv.cli("tls", "status")
        assert "acme: yes" in status and "mta-sts.example.test" in status
        assert "Pebble Intermediate" in status and "(in use)" in status

        # MTA-STS over real HTTPS: verified against Pebble's root for mta-sts.<domain>.
        root = pebble.root_pem()
        line, body = https_get(srv.port("https"), "mta-sts.example.test",
                               "/.well-known/mta-sts.txt", root)
        assert line.startswith("HTTP/1.1 200")
        assert body == ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\n"
                        "max_age: 86400\r\n")
        line, body = https_get(srv.port("https"), "autoconfig.example.test",
                               "/mail/config-v1.1.xml", root)
        assert line.startswith("HTTP/1.1 200") and "<emailProvider" in body

        # A forced renewal: new connections see the new certificate, same process.
        srv.cli("tls", "renew")
        second = wait_for("the renewed certificate on IMAPS",
                          lambda: (c := presented(srv.port("imaps")))
                          and c.serial_number != first.serial_number and c, deadline=90)
        assert issued_by_pebble(second, pebble)
        every_worker_presents(srv, second.serial_number)
        assert srv.proc is not None and srv.proc.pid == pid and srv.proc.poll() is None
        assert presented(srv.port("submissions")).serial_number == second.serial_number
        # STARTTLS too: the MX's upgrade uses the same reloaded context.
        assert starttls_certificate(srv.port("smtp")).serial_number == second.serial_number
        worker = '{worker="0"}' if workers > 1 else ""  # the primary obtains them
        # another worker may answer the scrape: the primary's row is at most a second old
        metrics = wait_for("the second issuance in /metrics", lambda: (
            m := http_metrics(srv)) and f"mailwright_acme_certificates_issued_total{worker} 2" in m
            and m, deadline=30)  # fmt: skip
        assert f"mailwright_acme_failing{worker} 0" in metrics
    finally:
        srv.stop()
        pebble.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_http_01_issues_and_restart_reuses_the_certificate(tmp_path: Path, dns: DNSServer,
                                                           workers: int) -> None:  # fmt: skip
    srv, pebble = acme_server(tmp_path, tmp_path / "pebble", dns, challenge="http-01",
                              workers=workers)  # fmt: skip
    try:
        srv.start()
        cert = issued(srv, pebble)
        every_worker_presents(srv, cert.serial_number)
        srv.stop()
        # The next start serves the stored certificate from the first handshake on.
        srv.start()
        assert presented(srv.port("imaps")).serial_number == cert.serial_number
    finally:
        srv.stop()
        pebble.stop()
