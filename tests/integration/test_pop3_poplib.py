"""Python's poplib against the real server: the mixed real-world corpus, byte-exact,
with and without deletion, over STLS and over implicit TLS (pop3s); IN-USE; injection."""

from __future__ import annotations

import asyncio
import poplib
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from mailwright.pop3d.maildrop import uidl_for
from mailwright.store.api import Account, MessageRecord
from tests.pop3d.harness import (
    PASSWORD,
    Pop3Server,
    add_message,
    add_user,
    corpus_messages,
    start_server,
)

USER = "bob@example.test"
CORPUS = corpus_messages()


def canonical(raw: bytes) -> bytes:
    """What the store keeps: bare LF made CRLF (computed here independently of the store)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def as_delivered(stored: bytes) -> bytes:
    """What a POP3 client can recover: the stored bytes, with a final CRLF if they lack one."""
    return stored if stored.endswith(b"\r\n") else stored + b"\r\n"


def from_lines(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


@pytest.fixture(autouse=True)
def long_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # poplib refuses lines over 2048 octets; real mail has longer ones (RFC 5322 allows 998,
    # the corpus has more).  The server must send them untouched, so the client must take them.
    monkeypatch.setattr(poplib, "_MAXLINE", 10 * 1024 * 1024)
    yield


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    srv = await start_server(tmp_path)
    try:
        yield srv
    finally:
        await srv.stop()


async def fill(srv: Pop3Server, files: list[Path]) -> tuple[Account, list[MessageRecord]]:
    account = await add_user(srv.store, "bob")
    records = [await add_message(srv.store, account, f.read_bytes()) for f in files]
    return account, records


async def inbox(srv: Pop3Server, account: Account) -> list[MessageRecord]:
    box = await srv.store.get_mailbox(account.id, "INBOX")
    assert box is not None
    return await srv.store.list_messages(box.id)


def download(client: poplib.POP3, *, delete: bool) -> tuple[list[bytes], list[int], list[str]]:
    client.user(USER)
    client.pass_(PASSWORD)
    count, _size = client.stat()
    listing = [int(line.split()[1]) for line in client.list()[1]]
    uidls = [line.split()[1].decode() for line in client.uidl()[1]]
    bodies = []
    for n in range(1, count + 1):
        _resp, lines, _octets = client.retr(n)
        bodies.append(from_lines(lines))
        if delete:
            client.dele(n)
    client.quit()
    return bodies, listing, uidls


async def check_download(
    srv: Pop3Server, files: list[Path], client_factory: Callable[[], poplib.POP3], *, delete: bool
) -> None:
    account, records = await fill(srv, files)
    box = await srv.store.get_mailbox(account.id, "INBOX")
    assert box is not None
    bodies, listing, uidls = await asyncio.to_thread(
        lambda: download(client_factory(), delete=delete)
    )
    assert len(bodies) == len(files)
    for path, body, size in zip(files, bodies, listing, strict=True):
        expected = canonical(path.read_bytes())
        assert size == len(expected), path.name
        assert body == as_delivered(expected), path.name
    assert uidls == [uidl_for(box.uidvalidity, r.uid) for r in records]
    left = await inbox(srv, account)
    if delete:
        assert left == []
    else:
        assert [r.uid for r in left] == [r.uid for r in records]
        assert all(r.seen for r in left)


async def test_pop3_poplib_corpus_over_stls_keep(server: Pop3Server) -> None:
    def client() -> poplib.POP3:
        c = poplib.POP3(server.host, server.port, timeout=30)
        c.stls(server.client_ssl())
        return c

    await check_download(server, CORPUS, client, delete=False)


async def test_pop3_poplib_corpus_over_pop3s_delete(server: Pop3Server) -> None:
    def client() -> poplib.POP3:
        return poplib.POP3_SSL(server.host, server.tls_port, context=server.client_ssl(), timeout=30)

    await check_download(server, CORPUS, client, delete=True)


async def test_pop3_poplib_dot_stuffing_edge_cases(server: Pop3Server) -> None:
    messages = [
        b"Subject: a\r\n\r\n.\r\n..\r\n.x\r\n",
        b"Subject: b\r\n\r\nno final newline",
        b"Subject: c\r\n\r\nlone cr at end\r",
        b"Subject: d\r\n\r\n\x00nul and \xff 8-bit\r\n",
        b".Starts: with a dot\r\n\r\nbody\r\n",
    ]
    account = await add_user(server.store, "bob")
    for m in messages:
        await add_message(server.store, account, m)

    def run() -> list[bytes]:
        c = poplib.POP3(server.host, server.port, timeout=30)
        c.user(USER)
        c.pass_(PASSWORD)
        out = [from_lines(c.retr(n)[1]) for n in range(1, len(messages) + 1)]
        c.quit()
        return out

    assert await asyncio.to_thread(run) == [as_delivered(m) for m in messages]


async def test_pop3_poplib_second_session_is_in_use(server: Pop3Server) -> None:
    await add_user(server.store, "bob")

    def run() -> str:
        first = poplib.POP3(server.host, server.port, timeout=30)
        first.user(USER)
        first.pass_(PASSWORD)
        second = poplib.POP3(server.host, server.port, timeout=30)
        second.user(USER)
        try:
            second.pass_(PASSWORD)
        except poplib.error_proto as exc:
            message = str(exc)
        else:
            message = "no error"
        second.quit()
        first.quit()
        third = poplib.POP3(server.host, server.port, timeout=30)
        third.user(USER)
        third.pass_(PASSWORD)  # the lock is free again after QUIT
        third.quit()
        return message

    assert "-ERR [IN-USE]" in await asyncio.to_thread(run)


async def test_pop3_poplib_dropped_connection_deletes_nothing(server: Pop3Server) -> None:
    account = await add_user(server.store, "bob")
    for i in range(3):
        await add_message(server.store, account, b"Subject: %d\r\n\r\nx\r\n" % i)

    def drop() -> None:
        c = poplib.POP3(server.host, server.port, timeout=30)
        c.user(USER)
        c.pass_(PASSWORD)
        for n in (1, 2, 3):
            c.dele(n)
        c.sock.close()  # no QUIT: no UPDATE state

    def login_when_unlocked() -> int:
        # The server notices the drop asynchronously; retry until its lock is released.
        for _ in range(200):
            c = poplib.POP3(server.host, server.port, timeout=30)
            c.user(USER)
            try:
                c.pass_(PASSWORD)
            except poplib.error_proto as exc:
                assert b"[IN-USE]" in exc.args[0]
                c.quit()
                time.sleep(0.05)
                continue
            count = c.stat()[0]
            c.quit()
            return count
        raise AssertionError("lock never released")

    await asyncio.to_thread(drop)
    assert await asyncio.to_thread(login_when_unlocked) == 3
    assert len(await inbox(server, account)) == 3


async def test_pop3_stls_discards_pipelined_plaintext(server: Pop3Server) -> None:
    """RFC 2595 4: commands sent in clear behind STLS are not run after the handshake."""
    await add_user(server.store, "bob")

    def run() -> bytes:
        raw = socket.create_connection((server.host, server.port), timeout=30)
        f = raw.makefile("rb")
        assert f.readline().startswith(b"+OK")
        raw.sendall(b"STLS\r\nCAPA\r\nUSER evil\r\n")
        assert f.readline() == b"+OK Begin TLS negotiation\r\n"
        tls = server.client_ssl().wrap_socket(raw, server_hostname="mail.example.test")
        tf = tls.makefile("rb")
        tls.sendall(b"PASS x\r\n")
        first = tf.readline()
        tls.sendall(b"QUIT\r\n")
        tf.readline()
        tls.close()
        return first

    # Had "USER evil" been kept, PASS would be accepted for checking instead of refused.
    assert await asyncio.to_thread(run) == b"-ERR PASS needs a successful USER first\r\n"


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else str(address)


async def test_pop3_plaintext_login_needs_tls_off_loopback(tmp_path: Path) -> None:
    host = non_loopback_address()
    if host is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    srv = await start_server(tmp_path, host=host)
    try:
        await add_user(srv.store, "bob")

        def run() -> tuple[dict[str, list[str]], str, dict[str, list[str]]]:
            c = poplib.POP3(host, srv.port, timeout=30)
            before = c.capa()
            try:
                c.user(USER)
                refused = "accepted"
            except poplib.error_proto as exc:
                refused = exc.args[0].decode()
            c.stls(srv.client_ssl())
            after = c.capa()
            c.user(USER)
            c.pass_(PASSWORD)
            c.quit()
            return before, refused, after

        before, refused, after = await asyncio.to_thread(run)
        assert "STLS" in before and "USER" not in before and "SASL" not in before
        assert refused.startswith("-ERR [AUTH] Plaintext authentication needs TLS")
        assert "USER" in after and after["SASL"] == ["PLAIN"] and "STLS" not in after
    finally:
        await srv.stop()


async def test_pop3_poplib_top_and_uidl_match_store(server: Pop3Server) -> None:
    account = await add_user(server.store, "bob")
    msg = b"Subject: t\r\nFrom: a@b\r\n\r\n1\r\n2\r\n3\r\n"
    await add_message(server.store, account, msg)

    def run() -> tuple[bytes, bytes]:
        c = poplib.POP3_SSL(server.host, server.tls_port, context=server.client_ssl(), timeout=30)
        c.user(USER)
        c.pass_(PASSWORD)
        top = from_lines(c.top(1, 2)[1])
        uidl = c.uidl(1)
        c.quit()
        return top, uidl

    top, uidl = await asyncio.to_thread(run)
    assert top == b"Subject: t\r\nFrom: a@b\r\n\r\n1\r\n2\r\n"
    records = await inbox(server, account)
    box = await server.store.get_mailbox(account.id, "INBOX")
    assert box is not None
    assert uidl == f"+OK 1 {uidl_for(box.uidvalidity, records[0].uid)}".encode()
    assert not records[0].seen  # TOP does not mark \Seen
