"""Memory attacks on IMAP over the network, against a real `mailwright serve` process.

An attacker who has not logged in, or a logged-in one behind COMPRESS=DEFLATE, sends literals
that never end the command. The server must refuse them before reading them (RFC 7888
LITERAL- before login) and bound every command including its literals; its resident memory,
read from /proc/<pid>/status, must not grow by more than 32 MiB (a hard bound: the code
before the connection core grew by the size of what was sent, hundreds of MiB).

Set MAILWRIGHT_MEMORY_FIGURES=1 and run with -s to print the figures for docs/reliability.md.
"""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, MailwrightServer

USER = "alice@example.test"
MiB = 1 << 20
BOUND = 32 * MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailwrightServer]:
    srv = MailwrightServer(tmp_path_factory.mktemp("imapmem") / "mw")
    with srv.cfg.open("a") as f:
        # loopback is the attacker here: no exemptions, no per-address command throttling
        f.write("\n[mailauth]\nverify = false\n\n[limits]\nrate_limit_exempt = []\n"
                "commands_per_second = 10000\n")
    srv.add_user(USER)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _status(server: MailwrightServer) -> dict[str, int]:
    assert server.proc is not None
    out = {}
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024  # kB
    return out


def _attack(server: MailwrightServer, name: str,
            run: Callable[[socket.socket, Callable[[], None]], None],
            prelude: Callable[[socket.socket], None] | None = None) -> int:
    """Run one attack; returns the server's largest resident-memory growth seen (bytes).

    ``prelude(sock)`` runs before the baseline is taken (a login: argon2id itself uses 64 MiB
    for a moment). ``run(sock, sample)`` sends the attack; it calls ``sample()`` as it goes,
    while whatever the server keeps of it is still held (the connection is open)."""
    with socket.create_connection(("127.0.0.1", server.port("imap")), timeout=60) as sock:
        assert sock.recv(4096).startswith(b"* OK")
        if prelude is not None:
            prelude(sock)
        before = _status(server)
        peak = before["VmRSS"]

        def sample() -> None:
            nonlocal peak
            peak = max(peak, _status(server)["VmRSS"])

        try:
            run(sock, sample)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: what it should do
        sample()
    after = _status(server)
    # VmHWM catches a peak between two samples (if it rose above the earlier high-water mark)
    growth = max(peak, after["VmHWM"] if after["VmHWM"] > before["VmHWM"] else 0) - before["VmRSS"]
    if os.environ.get("MAILWRIGHT_MEMORY_FIGURES"):
        print(f"\n{name}: RSS {before['VmRSS'] / MiB:.0f} MiB -> peak {peak / MiB:.0f} MiB,"
              f" growth {growth / MiB:.1f} MiB")
    return growth


def _read_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def test_preauth_append_of_huge_nonsync_literals(server: MailwrightServer) -> None:
    """``a APPEND INBOX {52428800+}`` and 50 MiB, again and again, before login."""
    replies: list[bytes] = []

    def run(sock: socket.socket, sample: Callable[[], None]) -> None:
        block = b"x" * MiB
        for _ in range(3):
            sock.sendall(b"a APPEND INBOX {52428800+}\r\n")
            for i in range(50):
                sock.sendall(block)
                if i % 10 == 9:
                    sample()
            sock.sendall(b" {52428800+}\r\n")
        sample()

    growth = _attack(server, "pre-auth APPEND {52428800+} x3", run)
    assert growth < BOUND, f"server memory grew by {growth / MiB:.0f} MiB"
    # and it said why, before closing (RFC 7888 4: tagged BAD [TOOBIG])
    with socket.create_connection(("127.0.0.1", server.port("imap")), timeout=60) as sock:
        assert sock.recv(4096).startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL- ")
        sock.sendall(b"a APPEND INBOX {52428800+}\r\n")
        replies = [_read_line(sock), _read_line(sock), _read_line(sock)]
    assert replies[0] == b"a BAD [TOOBIG] literal too large\r\n"
    assert replies[1].startswith(b"* BYE")
    assert replies[2] == b""  # closed


def test_preauth_login_literals_never_ending_the_command(server: MailwrightServer) -> None:
    """``a LOGIN {1048576+}`` 1 MiB, then another literal, and another: one command that never
    ends; and the same with literals of 4,096 octets, each allowed, 48 MiB in all."""

    def big(sock: socket.socket, sample: Callable[[], None]) -> None:
        sock.sendall(b"a LOGIN {1048576+}\r\n")
        for i in range(60):
            sock.sendall(b"u" * MiB + b" {1048576+}\r\n")
            if i % 10 == 9:
                sample()

    def small(sock: socket.socket, sample: Callable[[], None]) -> None:
        sock.sendall(b"a ID (")
        piece = b"{4096+}\r\n" + b"k" * 4096 + b" "
        for i in range(48 * 256):
            sock.sendall(piece)
            if i % 1024 == 1023:
                sample()

    for name, run in (("pre-auth LOGIN {1048576+} x60", big),
                      ("pre-auth ID with 12,288 literals of 4 KiB", small)):
        growth = _attack(server, name, run)
        assert growth < BOUND, f"{name}: server memory grew by {growth / MiB:.0f} MiB"


def test_compressed_literal_bomb_after_login(server: MailwrightServer) -> None:
    """After COMPRESS=DEFLATE, about 300 KB on the wire inflate to 300 MiB of literals in one
    SEARCH command that never ends: the inflated octets count against the same limits."""
    out = zlib.decompressobj(-15)
    got = bytearray()

    def login(sock: socket.socket) -> None:
        sock.sendall(f'a LOGIN {USER} "{PASSWORD}"\r\n'.encode())
        assert _read_line(sock).startswith(b"a OK")
        sock.sendall(b"b COMPRESS DEFLATE\r\n")
        assert _read_line(sock) == b"b OK DEFLATE active\r\n"

    def run(sock: socket.socket, sample: Callable[[], None]) -> None:
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = b"TEXT {1048576+}\r\n" + b"t" * MiB + b" "
        sock.sendall(comp.compress(b"c SEARCH "))
        for i in range(300):
            sock.sendall(comp.compress(block) + comp.flush(zlib.Z_SYNC_FLUSH))
            if i % 20 == 19:
                sample()
        sock.sendall(comp.compress(b"ALL\r\nd NOOP\r\n") + comp.flush(zlib.Z_SYNC_FLUSH))
        sock.settimeout(60)
        while b"d OK" not in got and b"d BAD" not in got:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got.extend(out.decompress(chunk))
        sample()

    growth = _attack(server, "COMPRESS bomb: SEARCH with 300 literals of 1 MiB", run, login)
    assert growth < BOUND, f"server memory grew by {growth / MiB:.0f} MiB"
    assert b"c BAD [TOOBIG]" in got, bytes(got[-300:])
    assert b"d OK NOOP completed" in got  # the session goes on after the refused command


def test_append_streams_its_literal_after_login(server: MailwrightServer) -> None:
    """Eight logged-in sessions each in the middle of a 48 MiB APPEND literal: the server holds
    what it has read in staging files, not in memory (one bounded read per session). The code
    before the connection core buffered each command whole: 8 x 44 MiB held at once."""
    size = 48 * MiB
    sent = 44 * MiB
    others: list[socket.socket] = []

    def login(sock: socket.socket) -> None:
        sock.sendall(f'a LOGIN {USER} "{PASSWORD}"\r\n'.encode())
        assert _read_line(sock).startswith(b"a OK")

    def run(sock: socket.socket, sample: Callable[[], None]) -> None:
        socks = [sock, *others]
        for s in socks:
            s.sendall(b"b APPEND INBOX {%d}\r\n" % size)
            assert _read_line(s).startswith(b"+ ")  # RFC 9051 7.5: go ahead with the literal
        block = b"x" * (MiB - 2) + b"\r\n"
        for i in range(sent // MiB):
            for s in socks:
                s.sendall(block)
            if i % 4 == 3:
                sample()
        sample()  # every session is 4 MiB short of the end of its literal

    try:
        for _ in range(7):
            s = socket.create_connection(("127.0.0.1", server.port("imap")), timeout=60)
            others.append(s)
            assert s.recv(4096).startswith(b"* OK")
            login(s)
        growth = _attack(server, "8 sessions each 44 MiB into an APPEND of 48 MiB", run, login)
    finally:
        for s in others:
            s.close()  # mid-literal: the uploads are abandoned, their staging files removed
    assert growth < BOUND, f"server memory grew by {growth / MiB:.0f} MiB"
    # the server goes on: a whole APPEND of 1 MiB is stored
    with socket.create_connection(("127.0.0.1", server.port("imap")), timeout=60) as sock:
        assert sock.recv(4096).startswith(b"* OK")
        login(sock)
        sock.sendall(b"c APPEND INBOX {%d}\r\n" % MiB)
        assert _read_line(sock).startswith(b"+ ")
        sock.sendall(b"y" * (MiB - 2) + b"\r\n\r\n")
        assert _read_line(sock).startswith(b"c OK [APPENDUID ")
