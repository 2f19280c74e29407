"""Session transcripts: greeting, capabilities, LOGIN/AUTHENTICATE, ENABLE, ID, states."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from imap_harness import PASSWORD, imap_server
from tests.support.backends import Backend


@pytest.mark.parametrize("split", [0, 1, 7])
async def test_session_greeting_and_capability(tmp_path: Path, backend: Backend, split: int) -> None:
    async with imap_server(tmp_path, backend) as srv:
        c = srv.client(split=split)
        greet = await c.greeting()
        assert greet.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
        assert b"AUTH=PLAIN" in greet
        out = await c.cmd("a CAPABILITY")
        assert out[0].startswith(b"* CAPABILITY IMAP4rev1 IMAP4rev2")
        assert out[-1] == b"a OK CAPABILITY completed"
        assert await c.cmd("b NOOP") == [b"b OK NOOP completed"]
        out = await c.cmd("c LOGOUT")
        assert out == [b"* BYE Logging out", b"c OK LOGOUT completed"]
        assert await c.task == "logout"


async def test_session_login_disabled_without_tls_from_remote(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = srv.client(loopback=False)
        greet = await c.greeting()
        assert b"LOGINDISABLED" in greet and b"AUTH=PLAIN" not in greet
        out = await c.cmd(f'a LOGIN alice@example.test "{PASSWORD}"')
        assert out == [b"a NO [PRIVACYREQUIRED] Plaintext authentication is disabled; use STARTTLS"]


async def test_session_login_over_tls_from_remote(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = srv.client(loopback=False, tls=True)
        await c.greeting()
        out = await c.cmd(f'a LOGIN alice@example.test "{PASSWORD}"')
        assert out[-1].startswith(b"a OK [CAPABILITY IMAP4rev1 IMAP4rev2")


async def test_session_login_ok_and_failure(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = srv.client()
        await c.greeting()
        out = await c.cmd("a LOGIN alice@example.test wrong")
        assert out == [b"a NO [AUTHENTICATIONFAILED] Authentication failed"]
        out = await c.cmd("b SELECT INBOX")
        assert out == [b"b BAD SELECT: not authenticated"]
        out = await c.cmd(f'c LOGIN alice@example.test "{PASSWORD}"')
        assert out[-1].startswith(b"c OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
        assert b"CONDSTORE" in out[-1] and b"APPENDLIMIT=" in out[-1]
        out = await c.cmd(f'd LOGIN alice@example.test "{PASSWORD}"')
        assert out == [b"d BAD LOGIN: already authenticated"]


async def test_session_login_with_literals(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = srv.client()
        await c.greeting()
        c.send(b"a LOGIN {18}\r\n")
        assert (await c.read_until(rb"\+ "))[-1] == b"+ Ready for literal data"
        pw = PASSWORD.encode()
        c.send(b"alice@example.test {%d+}\r\n%s\r\n" % (len(pw), pw))
        out = await c.read_until(rb"a (OK|NO|BAD)")
        assert out[-1].startswith(b"a OK ")


async def test_session_authenticate_plain_sasl_ir_and_challenge(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = srv.client()
        await c.greeting()
        token = base64.b64encode(b"\x00alice@example.test\x00" + PASSWORD.encode()).decode()
        out = await c.cmd(f"a AUTHENTICATE PLAIN {token}")
        assert out[-1].startswith(b"a OK [CAPABILITY ")
        c2 = srv.client()
        await c2.greeting()
        c2.send(b"b AUTHENTICATE PLAIN\r\n")
        assert (await c2.read_until(rb"\+"))[-1] == b"+ "
        out = await c2.cmd(token.encode(), tag="b")
        assert out[-1].startswith(b"b OK ")
        c3 = srv.client()
        await c3.greeting()
        c3.send(b"c AUTHENTICATE PLAIN\r\n")
        await c3.read_until(rb"\+")
        out = await c3.cmd(b"*", tag="c")
        assert out == [b"c BAD Authentication cancelled"]
        out = await c3.cmd("d AUTHENTICATE CRAM-MD5")
        assert out == [b"d NO [CANNOT] Unsupported authentication mechanism CRAM-MD5"]
        c3.send(b"e AUTHENTICATE PLAIN\r\n")
        await c3.read_until(rb"\+")
        out = await c3.cmd(b"!!notbase64", tag="e")
        assert out == [b"e BAD invalid base64 in SASL response"]


async def test_session_enable_and_id(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        c = await srv.connected()
        out = await c.cmd("a ENABLE CONDSTORE IMAP4rev2 X-UNKNOWN")
        assert out == [b"* ENABLED CONDSTORE IMAP4rev2", b"a OK ENABLE completed"]
        out = await c.cmd("b ENABLE CONDSTORE")
        assert out == [b"* ENABLED", b"b OK ENABLE completed"]
        out = await c.cmd('c ID ("name" "test" "version" NIL)')
        assert out[0] == b'* ID ("name" "Mailwright" "version" "0.1")'


async def test_session_bad_commands_keep_session(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        c = srv.client()
        await c.greeting()
        assert await c.cmd("a FROB") == [b"a BAD unknown command FROB"]
        assert await c.cmd("b FETCH 1 FLAGS") == [b"b BAD FETCH: not authenticated"]
        c.send(b"+++\r\n")
        assert (await c.read_until(rb"\* BAD"))[-1].startswith(b"* BAD expected tag")
        assert await c.cmd("c NOOP") == [b"c OK NOOP completed"]


async def test_session_too_many_bad_commands_disconnects(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        c = srv.client()
        await c.greeting()
        c.send(b"x FROB\r\n" * 60)
        out = await c.read_until(rb"\* BYE")
        assert out[-1] == b"* BYE Too many invalid commands"
        assert await c.task == "closed"


async def test_session_graceful_shutdown_between_commands_and_in_idle(tmp_path: Path, backend: Backend) -> None:
    async with imap_server(tmp_path, backend) as srv:
        await srv.add_user()
        a = await srv.connected()
        b = await srv.connected()
        await b.cmd("b1 SELECT INBOX")
        b.send(b"b2 IDLE\r\n")
        await b.read_until(rb"\+ ")
        srv.closing.set()
        assert (await a.read_until(rb"\* BYE"))[-1] == b"* BYE Server shutting down"
        assert (await b.read_until(rb"\* BYE"))[-1] == b"* BYE Server shutting down"
        assert await a.task == "shutdown"
        assert await b.task == "closed"  # IDLE ended by the shutdown
