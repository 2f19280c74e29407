"""The HAProxy configuration of docs/deployment.md, run as written, sees every node UP.

The `haproxy` block is taken from the document itself; only the addresses are mapped to this
machine (public 192.0.2.10:P -> a free local port, node 10.0.0.2x:P -> the node's port for P),
the check interval is shortened from 5 s to 1 s, `maxconn` lowered to what the test machine's
file descriptor limit allows, and a stats socket is added to read the
verdicts (`show stat`). Before, the backends with `tcp-check connect` (which sends no PROXY
header unless told `default`) all went DOWN, and the plain checks on the implicit-TLS ports
logged an `OSError: Transport endpoint is not connected` traceback on the node.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import MailwrightServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
STANDARD = {25: "smtp", 587: "submission", 465: "submissions", 143: "imap", 993: "imaps",
            110: "pop3", 995: "pop3s"}  # fmt: skip


def documented_config() -> str:
    match = re.search(r"## HAProxy\n.*?```haproxy\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/deployment.md has no haproxy block under ## HAProxy"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def localise(text: str, node: MailwrightServer, stats: Path) -> str:
    def public(m: re.Match[str]) -> str:
        return f"bind 127.0.0.1:{_free_port()}"

    def server(m: re.Match[str]) -> str:
        return f"server {m.group(1)} 127.0.0.1:{node.port(STANDARD[int(m.group(2))])}"

    text = re.sub(r"bind 192\.0\.2\.10:(\d+)", public, text)
    text = re.sub(r"server (node\d) 10\.0\.0\.2\d:(\d+)", server, text)
    assert "10.0.0." not in text and "192.0.2." not in text, text
    assert " inter 5s " in text
    text = text.replace(" inter 5s ", " inter 1s ")
    text = text.replace("maxconn 20000", "maxconn 1000")  # within this machine's FD limit
    # run in the foreground as the test's user, logging nowhere, with a stats socket
    text = re.sub(r"\n    (log /dev/log.*|user .*|group .*|daemon)(?=\n)", "", text)
    return text.replace("global\n", f"global\n    stats socket {stats} mode 600 level admin\n", 1)


def show_stat(stats: Path) -> list[dict[str, str]]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(stats))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    text = data.decode().lstrip("# ")
    return [row for row in csv.DictReader(io.StringIO(text)) if row["svname"].startswith("node")]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("haproxy-doc") / "mw")
    text = re.sub(  # every mail listener speaks PROXY, trusting only HAProxy's address
        r'(\[\[listener\]\]\nprotocol = "(?!http)\w+"\naddress = "127\.0\.0\.1"\nport = \d+\n)',
        r'\1proxy_protocol = true\nproxy_trusted = ["127.0.0.1/32"]\n',
        srv.cfg.read_text(),
    )
    srv.cfg.write_text(text + "\n[mailauth]\nverify = false\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_haproxy_documented_config_sees_every_backend_up(node: MailwrightServer, tmp_path: Path) -> None:
    assert shutil.which("haproxy"), "haproxy is installed by scripts/test.sh"
    stats = tmp_path / "haproxy.sock"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(localise(documented_config(), node, stats))
    check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        rows: list[dict[str, str]] = []
        deadline = time.monotonic() + 60  # a bound on a hang: checks run every second
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            if stats.exists():
                rows = show_stat(stats)
                # enough checks for a verdict either way: `fall 3` failures or `rise 2` passes
                if rows and all(r["check_status"] not in ("", "INI") for r in rows) and all(
                    int(r["chkfail"] or 0) >= 3 or int(r["lastchg"] or 0) >= 3 for r in rows
                ):
                    break
            time.sleep(0.5)
        verdicts = {(r["pxname"], r["svname"]): (r["status"], r["check_status"]) for r in rows}
        assert len(verdicts) == 3 * 7, verdicts  # three nodes for each of the seven ports
        down = {k: v for k, v in verdicts.items() if v[0] != "UP" or not v[1].endswith("OK")}
        assert not down, down
        assert all(int(r["chkfail"] or 0) == 0 for r in rows), [
            (r["pxname"], r["svname"], r["chkfail"], r["last_chk"]) for r in rows
        ]
    finally:
        proc.terminate()
        proc.wait(10)
    log = "".join(node.stderr)
    assert "Traceback" not in log, log[-3000:]
    # the plain checks on the implicit-TLS ports: one clean line each
    lost = [line for line in node.stderr if "Transport endpoint is not connected" in line]
    assert all("before the handshake" in line or "handshake failed" in line for line in lost), lost
