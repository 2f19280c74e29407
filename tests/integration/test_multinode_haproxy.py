"""Two `mailwright serve` nodes on one PostgreSQL database, behind a real HAProxy.

HAProxy (Debian's) speaks PROXY protocol v2 to every listener it forwards to. The client
connects from 127.0.0.2 while HAProxy reaches the nodes from 127.0.0.1, so the address that
shows in the Received header and in the node's connection log can only have come through the
PROXY header. Skipped when haproxy, PostgreSQL or the protocol listeners are missing.
"""

from __future__ import annotations

import imaplib
import json
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pg import fresh_dsn
from tests.support.server import PASSWORD, MailwrightServer

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy (Debian package)"),
]

CLIENT_IP = "127.0.0.2"  # the "outside world"; HAProxy itself talks to the nodes from 127.0.0.1
USER = "bob@example.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):  # bounded wait for haproxy to bind
        if proc.poll() is not None:
            raise RuntimeError("haproxy exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"haproxy did not listen on {port}")


def _node(root: Path, dsn: str) -> MailwrightServer:
    srv = MailwrightServer(root)
    srv.edit_config('backend = "sqlite"\ndsn = ""', f'backend = "postgres"\ndsn = {json.dumps(dsn)}')
    text = srv.cfg.read_text()
    # every listener accepts PROXY v2, from HAProxy's address only
    text = re.sub(
        r'(\[\[listener\]\]\nprotocol = "\w+"\naddress = "127\.0\.0\.1"\nport = \d+\n)',
        r'\1proxy_protocol = true\nproxy_trusted = ["127.0.0.1/32"]\n',
        text,
    )
    text += "\n[mailauth]\nverify = false\n"
    srv.cfg.write_text(text)
    return srv


class Cluster:
    def __init__(self, a: MailwrightServer, b: MailwrightServer, ports: dict[str, int]) -> None:
        self.a, self.b, self.ports = a, b, ports


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    dsn = fresh_dsn()
    root = tmp_path_factory.mktemp("multinode")
    a = _node(root / "a", dsn)
    b = _node(root / "b", dsn)
    a.cli("domain", "add", "example.test")  # one database: what node A adds, node B knows
    a.add_user(USER)
    ports = {name: _free_port() for name in ("smtp_a", "imap_b", "imaps_b", "imap_a")}
    cfg = root / "haproxy.cfg"
    cfg.write_text(
        "global\n    maxconn 256\n\n"
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 60s\n"
        "    timeout server 60s\n\n"
        + "".join(
            f"frontend fe_{name}\n    bind 127.0.0.1:{port}\n    default_backend be_{name}\n\n"
            f"backend be_{name}\n    server n 127.0.0.1:{node.port(proto)} send-proxy-v2\n\n"
            for name, port, node, proto in (
                ("smtp_a", ports["smtp_a"], a, "smtp"),
                ("imap_b", ports["imap_b"], b, "imap"),
                ("imaps_b", ports["imaps_b"], b, "imaps"),
                ("imap_a", ports["imap_a"], a, "imap"),
            )
        )
    )
    haproxy = subprocess.Popen(
        ["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        a.start()
        b.start()
        for port in ports.values():
            _wait_port(port, haproxy)
        yield Cluster(a, b, ports)
    finally:
        haproxy.terminate()
        haproxy.wait(10)
        a.stop()
        b.stop()


def _tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _imap(port: int, *, implicit_tls: bool = False) -> imaplib.IMAP4:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(CLIENT_IP, 0))
    sock.close()  # only to prove the source address is usable; imaplib opens its own
    m: imaplib.IMAP4
    if implicit_tls:
        m = _ImapFrom4SSL("127.0.0.1", port, ssl_context=_tls(), timeout=10)
    else:
        m = _ImapFrom("127.0.0.1", port, timeout=10)
        m.starttls(_tls())
    m.login(USER, PASSWORD)
    return m


class _ImapFrom(imaplib.IMAP4):
    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection(
            (self.host, self.port), timeout=timeout, source_address=(CLIENT_IP, 0)
        )


class _ImapFrom4SSL(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection(
            (self.host, self.port), timeout=timeout, source_address=(CLIENT_IP, 0)
        )
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined,no-any-return]


def _send(port: int, subject: str) -> None:
    body = (
        f"From: <carol@remote.test>\r\nTo: <{USER}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@remote.test>\r\n\r\nHello from outside.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(CLIENT_IP, 0)) as s:
        s.ehlo("client.remote.test")
        s.sendmail("carol@remote.test", [USER], body.encode())


def _fetch_all(m: imaplib.IMAP4) -> list[bytes]:
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    return [bytes(part[1]) for part in data if isinstance(part, tuple)]


def test_multinode_smtp_on_a_imap_on_b_client_address_survives(cluster: Cluster) -> None:
    _send(cluster.ports["smtp_a"], "via-a")
    m = _imap(cluster.ports["imap_b"])
    try:
        typ, _ = m.select("INBOX")
        assert typ == "OK"
        raw = next(r for r in _fetch_all(m) if b"Subject: via-a" in r)
    finally:
        m.logout()
    received = raw.split(b"\r\n\r\n", 1)[0]
    assert CLIENT_IP.encode() in received, received.decode(errors="replace")
    # node B logged the IMAP session under the client's address, not HAProxy's
    for _ in range(100):  # the connection line is written when the session ends
        if any("proto=imap" in line and f"peer={CLIENT_IP}" in line for line in cluster.b.stderr):
            break
        time.sleep(0.05)
    assert any(f"peer={CLIENT_IP}" in line for line in cluster.b.stderr), cluster.b.stderr[-5:]


def test_multinode_implicit_tls_behind_proxy(cluster: Cluster) -> None:
    m = _imap(cluster.ports["imaps_b"], implicit_tls=True)
    try:
        typ, _ = m.select("INBOX")
        assert typ == "OK"
    finally:
        m.logout()


def test_multinode_idle_on_b_hears_delivery_on_a(cluster: Cluster) -> None:
    m = _imap(cluster.ports["imap_b"])
    try:
        typ, data = m.select("INBOX")
        assert typ == "OK"
        before = int(data[0] or 0)
        tag = m._new_tag().decode()  # type: ignore[attr-defined]
        m.send(f"{tag} IDLE\r\n".encode())
        assert m.readline().startswith(b"+")
        started = time.monotonic()
        _send(cluster.ports["smtp_a"], "idle-wake")
        line = b""
        while b"EXISTS" not in line:  # the socket timeout (10 s) bounds the wait
            line = m.readline()
        latency = time.monotonic() - started
        print(f"IDLE on node B woke {latency * 1000:.0f} ms after SMTP began on node A")
        assert int(line.split()[1]) > before
        m.send(b"DONE\r\n")
        while not m.readline().startswith(tag.encode()):
            pass
    finally:
        m.logout()


def test_multinode_concurrent_appends_on_both_nodes(cluster: Cluster) -> None:
    results: dict[str, list[int]] = {}

    def appender(name: str, port: int) -> None:
        m = _imap(port)
        uids = []
        try:
            for i in range(10):
                msg = f"Subject: {name}-{i}\r\n\r\nx\r\n".encode()
                typ, data = m.append("Archive", None, None, msg)
                assert typ == "OK"
                match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
                assert match, data
                uids.append(int(match.group(1)))
        finally:
            m.logout()
        results[name] = uids

    threads = [
        threading.Thread(target=appender, args=("a", cluster.ports["imap_a"])),
        threading.Thread(target=appender, args=("b", cluster.ports["imap_b"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {"a", "b"}
    all_uids = results["a"] + results["b"]
    assert sorted(all_uids) == list(range(1, 21))  # unique, no gap
    for uids in results.values():
        assert uids == sorted(uids)
