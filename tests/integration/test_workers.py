"""`serve --workers 2` (issue 16, item 1): a real supervisor with two worker processes, driven
over the network. Which worker holds a connection is read from /proc (`tests.support.workers`):
a test that needs a session on each worker opens connections until it has one on each.

* mail delivered through one worker wakes IDLE sessions on both;
* failed logins on both workers add up to one ban, held by both;
* SIGTERM lets a transaction in flight finish, then stops every worker (exit 0);
* SIGKILL of a worker in the middle of deliveries loses no acknowledged message, and the
  supervisor forks a new worker;
* one address's command rate is the server's, whichever worker takes its commands.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import re
import signal
import smtplib
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import store_backends
from tests.support.server import PASSWORD, MailwrightServer, wait_for
from tests.support.workers import worker_of, worker_pids

pytestmark = pytest.mark.slow

USER = "bob@example.test"
WORKERS = 2
FAILURES_BEFORE_BAN = 4
T = TypeVar("T")


def make_server(root: Path, limits: str = "", backend: str = "sqlite") -> MailwrightServer:
    server = MailwrightServer(root / "mw", workers=WORKERS)
    if backend == "postgres":
        from tests.support.pg import fresh_dsn

        server.edit_config('backend = "sqlite"\ndsn = ""',
                           f'backend = "postgres"\ndsn = {json.dumps(fresh_dsn())}')  # fmt: skip
        server.cli("domain", "add", server.domain)  # `init` put it in the SQLite store
    with server.cfg.open("a") as f:
        f.write("\n[mailauth]\nverify = false\n")  # no DNS here
        if limits:
            f.write(f"\n[limits]\n{limits}")
    server.add_user(USER)
    return server


@pytest.fixture(params=store_backends())
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailwrightServer]:
    srv = make_server(tmp_path, backend=request.param)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def supervisor(server: MailwrightServer) -> int:
    assert server.proc is not None
    return server.proc.pid


def one_on_each_worker(server: MailwrightServer, connect: Callable[[], T],
                       sock: Callable[[T], socket.socket], close: Callable[[T], object]) -> dict[int, T]:
    """Connections, one held by each worker (others are closed as they come)."""
    sup = supervisor(server)
    wait_for("every worker", lambda: len(worker_pids(sup)) == WORKERS, deadline=120)
    held: dict[int, T] = {}
    for _ in range(400):
        conn = connect()
        pid = wait_for("the connection's worker", lambda c=conn: worker_of(sup, sock(c)))  # type: ignore[misc]
        if pid in held:
            close(conn)
        else:
            held[pid] = conn
        if len(held) == WORKERS:
            return held
    raise AssertionError(f"400 connections went to {list(held)} only")


def imap_from(server: MailwrightServer, source: str) -> socket.socket:
    """A plain IMAP connection from the loopback address `source` (one address per test)."""
    s = socket.create_connection(("127.0.0.1", server.port("imap")), 60, source_address=(source, 0))
    s.settimeout(60)
    return s


def message(tag: str) -> bytes:
    return (f"From: carol@remote.test\r\nTo: {USER}\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@remote.test>\r\n\r\nbody of {tag}\r\n").encode()


def test_delivery_through_one_worker_wakes_idle_sessions_on_every_worker(
    server: MailwrightServer,
) -> None:
    def connect() -> imaplib.IMAP4:
        return imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=120)

    sessions = one_on_each_worker(server, connect, lambda i: i.sock, lambda i: i.shutdown())
    idling = {pid: threading.Event() for pid in sessions}
    got: dict[int, list[bytes]] = {}

    def idle(pid: int, imap: imaplib.IMAP4) -> None:
        imap.login(USER, PASSWORD)
        imap.select("INBOX")
        tag = imap._new_tag()  # type: ignore[attr-defined]
        imap.send(tag + b" IDLE\r\n")
        assert imap.readline().startswith(b"+ ")
        idling[pid].set()
        got[pid] = [imap.readline()]  # the first untagged line: the new message (RECENT
        imap.send(b"DONE\r\n")  # may follow, for one of the sessions only)
        while not (line := imap.readline()).startswith(tag):
            assert line.startswith(b"* "), line
        assert line.startswith(tag + b" OK"), line
        imap.logout()

    threads = [threading.Thread(target=idle, args=item) for item in sessions.items()]
    for t in threads:
        t.start()
    for ev in idling.values():
        assert ev.wait(120)
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as s:
        assert s.sock is not None
        smtp_worker = worker_of(supervisor(server), s.sock)
        s.sendmail("carol@remote.test", [USER], message("idle"))
    for t in threads:
        t.join(120)
    # the IDLE session on the worker that did not take the SMTP connection heard of it too
    assert smtp_worker in sessions
    assert got == {pid: [b"* 1 EXISTS\r\n"] for pid in sessions}


def test_failed_logins_on_both_workers_make_one_ban_that_both_hold(tmp_path: Path) -> None:
    server = make_server(tmp_path, (
        f"auth_failures_before_ban = {FAILURES_BEFORE_BAN}\n"
        f"auth_address_failures_before_ban = {FAILURES_BEFORE_BAN}\n"
        'auth_ban_time = "30m"\n'
    ))  # fmt: skip

    def connect() -> socket.socket:
        return imap_from(server, "127.0.3.7")

    transcript: dict[socket.socket, bytes] = {}

    def command(s: socket.socket, line: str) -> bytes:
        data = command_once(s, line)
        transcript[s] = transcript.get(s, b"") + data
        return data

    def command_once(s: socket.socket, line: str) -> bytes:
        s.sendall(line.encode() + b"\r\n")
        tag = line.split(" ", 1)[0].encode()
        data = b""
        while not any(ln.startswith(tag + b" ") for ln in data.split(b"\r\n")):
            chunk = s.recv(4096)
            if not chunk:  # hung up on (after a BYE)
                return data
            data += chunk
        return data

    with server:
        held = one_on_each_worker(server, connect, lambda s: s, lambda s: s.close())
        (first, a), (_second, b) = held.items()
        for s in (a, b):
            assert s.makefile("rb").readline().startswith(b"* OK")
        # half of the failures on each worker: neither alone reaches the threshold
        half = FAILURES_BEFORE_BAN // 2
        for s in (a, b):
            for i in range(half):
                assert b" NO " in command(s, f"t{i} LOGIN {USER} wrong{i}")
        # the right password is refused now on both workers, and the session is ended: the
        # ban is held by each (on one worker, half of the failures came from the other)
        for s in (a, b):
            with contextlib.suppress(OSError):  # the second may have been hung up on already
                s.sendall(f"ok LOGIN {USER} \"{PASSWORD}\"\r\n".encode())
            reply = transcript[s]  # the BYE may have come with the last failure's NO
            with contextlib.suppress(ConnectionResetError):
                while chunk := s.recv(4096):  # until the server hangs up
                    reply += chunk
            assert b"ok OK" not in reply, reply
            assert b"* BYE Too many failed logins" in reply, reply
            s.close()
        # and the address is turned away at connect, whichever worker accepts
        for _ in range(12):
            with connect() as s:
                greeting = s.recv(4096)
                assert b"Too many failed logins" in greeting, greeting
        assert first in worker_pids(supervisor(server))


def test_sigterm_finishes_the_transaction_in_flight_then_stops_every_worker(
    server: MailwrightServer,
) -> None:
    sup = supervisor(server)
    pids = wait_for("every worker", lambda: (p := worker_pids(sup)) and len(p) == WORKERS and p,
                    deadline=120)
    s = smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60)
    s.ehlo("client.remote.test")
    assert s.mail("carol@remote.test")[0] == 250
    assert s.rcpt(USER)[0] == 250
    assert s.docmd("DATA")[0] == 354
    data = message("in-flight")
    s.send(data[:40])
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    wait_for("every worker shutting down",
             lambda: sum("shutting down" in line for line in server.stderr) >= WORKERS)
    s.send(data[40:] + b".\r\n")
    code, text = s.getreply()
    assert code == 250, (text, "".join(server.stderr[-30:]))
    s.quit()
    assert server.proc.wait(60) == 0, "".join(server.stderr[-30:])
    server.proc = None
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")  # gone, and reaped by the supervisor
    [msg] = server.messages(USER)
    assert msg["Subject"] == "in-flight"


def test_sigkill_of_a_worker_in_the_middle_of_deliveries_loses_nothing(
    server: MailwrightServer,
) -> None:
    sup = supervisor(server)
    pids = wait_for("every worker", lambda: (p := worker_pids(sup)) and len(p) == WORKERS and p,
                    deadline=120)
    acked: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def sender(n: int) -> None:
        seq = 0
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as s:
                    while not stop.is_set():
                        seq += 1
                        tag = f"k{n}.{seq}"
                        data = message(tag) + b"x" * 2000 + b"\r\n"
                        s.sendmail("carol@remote.test", [USER], data)
                        with lock:  # 250 to the end of data: promised
                            acked[tag] = data
            except (smtplib.SMTPException, OSError):
                continue  # our worker died under us: connect again

    def count() -> int:
        with lock:
            return len(acked)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    try:
        wait_for("deliveries under way", lambda: count() >= 60, deadline=120)
        victim = pids[-1]
        os.kill(victim, signal.SIGKILL)
        wait_for("a new worker", lambda: victim not in (p := worker_pids(sup)) and len(p) == WORKERS,
                 deadline=120)  # fmt: skip
        after = count()
        wait_for("deliveries after the restart", lambda: count() >= after + 60, deadline=120)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert server.stop() == 0
    with lock:
        promised = dict(acked)
    stored = {m["Subject"]: m for m in server.messages(USER)}
    missing = sorted(set(promised) - set(stored))
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:5]}"
    assert any("worker exited" in line for line in server.stderr)


def test_connection_budgets_count_every_workers_connections(tmp_path: Path) -> None:
    """`max_connections_per_ip` is the server's promise, not each worker's: with one connection
    held on each of two workers, an address capped at two is turned away whichever worker
    accepts; a killed worker's connections stop counting once the supervisor forks its
    successor."""
    server = make_server(tmp_path, "max_connections_per_ip = 2\n")

    def connect() -> socket.socket:
        return imap_from(server, "127.0.4.9")

    def greeting(s: socket.socket) -> bytes:
        return s.makefile("rb").readline()

    with server:
        sup = supervisor(server)
        wait_for("every worker", lambda: len(worker_pids(sup)) == WORKERS, deadline=120)
        held: dict[int, socket.socket] = {}
        for _ in range(400):  # one connection held on each worker, the others closed
            s = connect()
            if not greeting(s).startswith(b"* OK"):
                s.close()  # a closed duplicate's budget may not be given back yet
                time.sleep(0.05)
                continue
            pid = wait_for("the connection's worker", lambda c=s: worker_of(sup, c))  # type: ignore[misc]
            if pid in held:
                s.close()
            else:
                held[pid] = s
            if len(held) == WORKERS:
                break
        assert len(held) == WORKERS, f"connections reached workers {list(held)} only"
        # each worker alone holds one of the two: the third is refused by either of them
        for _ in range(12):
            with connect() as s:
                assert greeting(s) == b"* BYE Too many connections, try again later\r\n"
        victim, victims_conn = next(iter(held.items()))
        os.kill(victim, signal.SIGKILL)
        wait_for("a new worker", lambda: victim not in (p := worker_pids(sup)) and len(p) == WORKERS,
                 deadline=120)  # fmt: skip
        victims_conn.close()
        # the survivor holds one; the dead worker's one no longer counts
        with connect() as s:
            assert greeting(s).startswith(b"* OK")
        for s in held.values():
            s.close()


def scrape(server: MailwrightServer) -> dict[str, dict[str, float]]:
    """`/metrics` of whichever worker answers: metric -> worker -> value."""
    url = f"http://127.0.0.1:{server.port('http')}/metrics"
    with urllib.request.urlopen(url, timeout=60) as r:
        text = r.read().decode()
    out: dict[str, dict[str, float]] = {}
    for m in re.finditer(r'^mailwright_(\w+)\{worker="(\d)"\} (\S+)$', text, re.M):
        out.setdefault(m[1], {})[m[2]] = float(m[3])
    return out


def test_any_worker_answers_metrics_for_every_worker(tmp_path: Path) -> None:
    """A scrape lands on either worker; each answers one sample per worker, so a failed login
    counted by one worker is in every scrape, not in half of them."""
    server = make_server(tmp_path)

    with server:
        held = one_on_each_worker(
            server, lambda: imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=60),
            lambda i: i.sock, lambda i: i.shutdown())  # fmt: skip
        imap = next(iter(held.values()))
        with contextlib.suppress(imaplib.IMAP4.error):
            imap.login(USER, "wrong")
        for i in held.values():
            i.shutdown()

        def failures_seen() -> bool:
            return sum(scrape(server).get("auth_failures_total", {}).values()) == 1

        wait_for("the failure published", failures_seen, deadline=30)
        for _ in range(10):  # whichever worker answers
            seen = scrape(server)
            assert set(seen["auth_failures_total"]) == {"0", "1"}, seen
            assert sum(seen["auth_failures_total"].values()) == 1
            assert set(seen["connections_active"]) == {"0", "1"}


def test_command_rate_of_an_address_is_the_servers_whichever_worker_takes_it(
    tmp_path: Path,
) -> None:
    """`commands_per_second` is per address for the server: an address that spent its burst
    on one worker waits on the other too (each worker with its own bucket gave it the rate
    once per worker). One command a minute, burst one: the first is free, the next, sent
    through the other worker, is held back (counted in `commands_delayed_total`)."""
    server = make_server(tmp_path, "commands_per_second = 0.02\nrate_limit_exempt = []\n")

    def connect() -> socket.socket:
        return imap_from(server, "127.0.5.3")

    def delayed() -> float:
        return sum(scrape(server).get("commands_delayed_total", {}).values())

    with server:
        held = one_on_each_worker(server, connect, lambda s: s, lambda s: s.close())
        (a, b) = held.values()
        for s in (a, b):
            assert s.makefile("rb").readline().startswith(b"* OK")
        a.sendall(b"a1 NOOP\r\n")
        assert a.makefile("rb").readline().startswith(b"a1 OK")
        assert delayed() == 0
        b.sendall(b"b1 NOOP\r\n")  # the address's second command, on the other worker
        wait_for("the second command held back", lambda: delayed() == 1, deadline=30)
        for s in (a, b):
            s.close()
