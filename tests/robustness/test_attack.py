"""Attacks found against a server made with `init` and `serve`, replayed over real sockets.

* Brute force interleaved with another account's right password: the guessed account is banned
  for the guessing address, the other accounts behind that address are not locked out.
* Raw TCP connections to the IMAPS port (and the other implicit-TLS ports) that never send a
  ClientHello are counted at accept.
* Idle POP3 connections cannot take the connections the MX needs; sessions that never log in
  are hung up on after `login_timeout`, however busy they keep themselves.
* The loopback plaintext-login exemption: never through a PROXY header without an address, and
  it can be switched off.

Each test acts as its own client addresses (127.0.x.y), so counts do not leak between tests.
"""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, MailwrightServer, free_port_base

from .netclients import LineClient, imap_login, metrics, pop3_login

pytestmark = pytest.mark.slow

ALICE = "alice@example.test"
BOB = "bob@example.test"


def _server(root: Path, extra: str, *, users: tuple[str, ...] = (ALICE, BOB)) -> MailwrightServer:
    srv = MailwrightServer(root)
    with srv.cfg.open("a") as f:
        f.write("\n[mailauth]\nverify = false\n" + extra)
    for user in users:
        srv.add_user(user)
    return srv


# -- brute force ----------------------------------------------------------------------------

PROXIED_IMAP_PORT_OFFSET = 7  # an extra IMAP listener behind PROXY, at base + 7


@pytest.fixture(scope="module")
def bans(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    root = tmp_path_factory.mktemp("bans")
    base = free_port_base()
    srv = MailwrightServer(root / "mw", port_base=base)
    with srv.cfg.open("a") as f:
        f.write(
            "\n[mailauth]\nverify = false\n"
            "\n[limits]\n"
            "rate_limit_exempt = []\n"
            # the defaults' thresholds (10 per account, 50 per address); short delays only
            'auth_failure_delay = "0.01s"\nauth_max_failure_delay = "0.02s"\n'
            "\n[[listener]]\n"
            'protocol = "imap"\naddress = "127.0.0.1"\n'
            f"port = {base + PROXIED_IMAP_PORT_OFFSET}\n"
            'proxy_protocol = true\nproxy_trusted = ["127.0.0.1/32"]\n'
        )
    for user in (ALICE, BOB, "carol@example.test"):
        srv.add_user(user)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _login_ok(lines: list[bytes]) -> bool:
    return bool(lines) and lines[-1].startswith(b"a OK")


def test_attack_guesses_interleaved_with_another_accounts_success_are_banned(
    bans: MailwrightServer,
) -> None:
    # Nine wrong passwords for alice, then bob's right one, from the same address, repeated:
    # before, bob's success cleared the address's count and alice could be guessed for ever.
    attacker = "127.0.20.1"
    port = bans.port("imap")
    for _round in range(3):
        for i in range(9):
            greeting, lines = imap_login(port, attacker, ALICE, f"guess{_round}-{i}")
            assert greeting.startswith(b"* OK"), greeting  # never refused at connect
            assert lines and lines[-1].startswith(b"a NO"), lines
        _, lines = imap_login(port, attacker, BOB, PASSWORD)
        assert _login_ok(lines), lines  # bob behind the same NAT: slowed, never locked out
    # alice's right password is refused from the guessing address, on every protocol...
    _, lines = imap_login(port, attacker, ALICE, PASSWORD)
    assert lines and lines[-1].startswith(b"a NO"), lines
    greeting, answer = pop3_login(bans.port("pop3"), attacker, ALICE, PASSWORD)
    assert greeting.startswith(b"+OK") and answer.startswith(b"-ERR"), (greeting, answer)
    # ...while the other accounts there still log in, and alice does from elsewhere
    _, lines = imap_login(port, attacker, "carol@example.test", PASSWORD)
    assert _login_ok(lines), lines
    _, lines = imap_login(port, "127.0.20.2", ALICE, PASSWORD)
    assert _login_ok(lines), lines


def test_attack_sprayer_over_many_accounts_bans_the_address(bans: MailwrightServer) -> None:
    # 50 failures from one address over many (mostly unknown) accounts: the whole address is
    # refused at connect, the right password of a real account included. (A few more may be
    # needed: the count leaks 50 per hour, and argon2 is slow on a loaded machine.)
    # A session that never logs in is hung up on after `login_timeout` (1 min), which 50 slow
    # failures on a loaded machine can outlast: the sprayer then connects again, as a real one
    # would, and the failures keep counting against its address.
    sprayer = "127.0.21.1"
    c: LineClient | None = None
    banned = False
    for i in range(80):
        if c is None:
            c = LineClient(bans.port("imap"), sprayer)
            greeting = c.line()
            if greeting.startswith(b"* BYE"):
                banned = b"failed logins" in greeting
                break
            assert greeting.startswith(b"* OK"), greeting
        try:
            c.send(b'a%d LOGIN "user%d@example.test" "x"\r\n' % (i, i))
            lines = c.tagged(b"a%d" % i)
        except OSError:  # hung up on while our command was in flight (RST): connect again
            lines = []
        if lines and b"failed logins" in lines[-1]:
            banned = True
            break
        if not lines or not lines[-1].startswith(b"a%d NO" % i):  # hung up on: connect again
            c.close()
            c = None
    if c is not None:
        c.close()
    assert banned, f"not banned after {i + 1} failed logins"
    greeting, _ = imap_login(bans.port("imap"), sprayer, BOB, PASSWORD)
    assert greeting.startswith(b"* BYE"), greeting
    _, lines = imap_login(bans.port("imap"), "127.0.21.2", BOB, PASSWORD)
    assert _login_ok(lines), lines


# -- loopback exemption ---------------------------------------------------------------------


def _proxied_imap_login(srv: MailwrightServer, header: bytes) -> list[bytes]:
    c = LineClient(srv.base + PROXIED_IMAP_PORT_OFFSET, "127.0.0.1")
    try:
        c.send(header)
        assert c.line().startswith(b"* OK")
        c.send(b'a LOGIN "%s" "%s"\r\n' % (BOB.encode(), PASSWORD.encode()))
        return c.tagged(b"a")
    finally:
        c.close()


def test_attack_proxy_unknown_is_not_loopback(bans: MailwrightServer) -> None:
    # HAProxy reaches us from 127.0.0.1; a header without an address leaves only that address,
    # which says nothing of the client: no plaintext login without TLS.
    lines = _proxied_imap_login(bans, b"PROXY UNKNOWN\r\n")
    assert lines[-1].startswith(b"a NO [PRIVACYREQUIRED]"), lines
    lines = _proxied_imap_login(bans, b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")  # v2 LOCAL
    assert lines[-1].startswith(b"a NO [PRIVACYREQUIRED]"), lines
    lines = _proxied_imap_login(bans, b"PROXY TCP4 203.0.113.7 127.0.0.1 4000 143\r\n")
    assert lines[-1].startswith(b"a NO [PRIVACYREQUIRED]"), lines
    # a header that names a loopback client is believed, and a direct loopback client too
    lines = _proxied_imap_login(bans, b"PROXY TCP4 127.0.22.1 127.0.0.1 4000 143\r\n")
    assert _login_ok(lines), lines
    _, lines = imap_login(bans.port("imap"), "127.0.22.2", BOB, PASSWORD)
    assert _login_ok(lines), lines


# -- TLS ports, budgets, login deadline -------------------------------------------------------

PER_IP = 20


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = _server(
        tmp_path_factory.mktemp("strict") / "mw",
        "\n[limits]\n"
        f"max_connections_per_ip = {PER_IP}\n"
        'tls_handshake_timeout = "20s"\n'
        'login_timeout = "3s"\n',
    )
    srv.edit_config("[tls]\n", "[tls]\nallow_plaintext_loopback = false\n")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes `sock` (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_attack_tls_connections_without_client_hello_count_at_accept(
    strict: MailwrightServer,
) -> None:
    source = "127.0.23.1"
    held: list[socket.socket] = []
    try:
        for _ in range(PER_IP * 3):
            held.append(socket.create_connection(("127.0.0.1", strict.port("imaps")), timeout=30,
                                                 source_address=(source, 0)))  # fmt: skip
        # Those beyond the per-address cap are closed at once, without waiting for the
        # handshake deadline (before: all were held for the 30 s handshake timeout)...
        beyond = held[PER_IP:]
        assert all(_closed_within(s, 10) for s in beyond)
        # ...while those within it wait for their handshake (20 s here)
        assert not any(_closed_within(s, 0.01) for s in held[:PER_IP])
        # A normal client from another address is served meanwhile.
        c = LineClient(strict.port("imaps"), "127.0.23.2", tls=True)
        assert c.line().startswith(b"* OK")
        c.send(b'a LOGIN "%s" "%s"\r\n' % (ALICE.encode(), PASSWORD.encode()))
        assert c.tagged(b"a")[-1].startswith(b"a OK")
        c.close()
        # The ones within the cap are dropped at the handshake deadline.
        assert all(_closed_within(s, 120) for s in held[:PER_IP])
        # ... which frees the address's budget again.
        c = LineClient(strict.port("imaps"), source, tls=True)
        assert c.line().startswith(b"* OK")
        c.close()
    finally:
        for s in held:
            s.close()


@pytest.mark.parametrize("protocol", ["submissions", "pop3s", "https"])
def test_attack_every_tls_listener_counts_at_accept(strict: MailwrightServer, protocol: str) -> None:
    """The other implicit-TLS listeners take the same path as IMAPS: connections that send no
    ClientHello are counted at accept, those past the per-address cap closed at once."""
    source = {"submissions": "127.0.23.11", "pop3s": "127.0.23.12", "https": "127.0.23.13"}
    held: list[socket.socket] = []
    try:
        for _ in range(PER_IP + 5):
            held.append(socket.create_connection(("127.0.0.1", strict.port(protocol)),
                                                 timeout=30,
                                                 source_address=(source[protocol], 0)))  # fmt: skip
        assert all(_closed_within(s, 10) for s in held[PER_IP:])
        assert not any(_closed_within(s, 0.01) for s in held[:PER_IP])
    finally:
        for s in held:
            s.close()


def test_attack_sessions_that_never_log_in_are_hung_up_on(strict: MailwrightServer) -> None:
    source = "127.0.24.1"
    pop = LineClient(strict.port("pop3"), source)
    assert pop.line().startswith(b"+OK")
    imap = LineClient(strict.port("imap"), source)
    assert imap.line().startswith(b"* OK")
    sub = LineClient(strict.port("submission"), source)
    assert sub.line().startswith(b"220")
    sieve = LineClient(strict.port("managesieve"), source)
    while not (line := sieve.line()).startswith(b"OK"):  # capabilities, then OK (RFC 5804 1.7)
        assert line, "ManageSieve closed before its greeting ended"
    logged_in = LineClient(strict.port("pop3s"), source, tls=True)
    assert logged_in.line().startswith(b"+OK")
    logged_in.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
    assert logged_in.line().startswith(b"+OK") and logged_in.line().startswith(b"+OK")
    # keep the IMAP session busy with NOOPs: the login deadline counts from the connect
    started = time.monotonic()
    bye = b""
    while time.monotonic() - started < 60:
        imap.send(b"n NOOP\r\n")
        lines = imap.tagged(b"n")
        if not lines or lines[0].startswith(b"* BYE"):
            bye = lines[0] if lines else b"(closed)"
            break
        time.sleep(0.3)
    assert bye, "an IMAP session that never logged in was kept for a minute"
    rest = b"".join(iter(pop.line, b""))
    assert rest.startswith(b"-ERR Disconnected"), rest
    rest = b"".join(iter(sub.line, b""))
    assert rest.startswith(b"421 4.7.0"), rest
    rest = b"".join(iter(sieve.line, b""))
    assert rest.startswith(b'BYE "Disconnected'), rest
    # the logged-in session is not affected
    logged_in.send(b"STAT\r\n")
    assert logged_in.line().startswith(b"+OK")
    for c in (pop, imap, sub, sieve, logged_in):
        c.close()


def test_attack_plaintext_loopback_exemption_can_be_switched_off(strict: MailwrightServer) -> None:
    # `[tls] allow_plaintext_loopback = false`: loopback clients need TLS like everybody else.
    greeting, answer = pop3_login(strict.port("pop3"), "127.0.25.1", ALICE, PASSWORD)
    assert greeting.startswith(b"+OK") and answer.startswith(b"-ERR"), answer
    _, lines = imap_login(strict.port("imap"), "127.0.25.1", ALICE, PASSWORD)
    assert lines[-1].startswith(b"a NO [PRIVACYREQUIRED]"), lines


def test_attack_plaintext_loopback_exemption_on_by_default(bans: MailwrightServer) -> None:
    greeting, answer = pop3_login(bans.port("pop3"), "127.0.25.2", BOB, PASSWORD)
    assert answer.startswith(b"+OK"), (greeting, answer)


@pytest.fixture(scope="module")
def budgets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = _server(
        tmp_path_factory.mktemp("budgets") / "mw",
        "\n[limits]\nmax_connections = 300\nlogin_timeout = \"10m\"\n",
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_attack_300_idle_pop3_connections_do_not_stop_smtp(budgets: MailwrightServer) -> None:
    # 300 POP3 connections from six addresses (50 each, the per-address cap) that never log
    # in; before, they took the whole node's budget of 300 and the MX answered 421.
    held: list[LineClient] = []
    busy = 0
    try:
        for i in range(300):
            c = LineClient(budgets.port("pop3"), f"127.0.26.{1 + i // 50}")
            greeting = c.line()
            if greeting.startswith(b"-ERR [SYS/TEMP] Too many connections"):
                busy += 1
                c.close()
            else:
                assert greeting.startswith(b"+OK"), greeting
                held.append(c)
        assert busy > 0  # POP3 hit its own budget...
        body = f"From: <x@remote.test>\r\nTo: <{ALICE}>\r\nSubject: mx\r\n\r\nhi\r\n"
        with smtplib.SMTP("127.0.0.1", budgets.port("smtp"), timeout=60) as smtp:
            assert smtp.sendmail("x@remote.test", [ALICE], body.encode()) == {}
        # ...and so did submission and IMAP clients not
        c = LineClient(budgets.port("imap"), "127.0.26.9")
        assert c.line().startswith(b"* OK")
        c.close()
        seen = metrics(budgets.port("http"))
        assert seen["mailwright_connections_active"] >= len(held)
        assert seen["mailwright_connections_refused_busy_total"] >= busy
    finally:
        for c in held:
            c.close()
