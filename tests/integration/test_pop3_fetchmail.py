"""fetchmail (Debian package) downloading the mixed real-world corpus from the real server,
byte-exact, keeping the mail over STLS and deleting it over implicit TLS (pop3s)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.pop3d.harness import (
    PASSWORD,
    Pop3Server,
    add_message,
    add_user,
    corpus_messages,
    start_server,
)

CORPUS = corpus_messages()
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed (apt-get install fetchmail)"),
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Pop3Server]:
    srv = await start_server(tmp_path / "server")
    try:
        yield srv
    finally:
        await srv.stop()


def expected_from_fetchmail(raw: bytes) -> bytes:
    """The corpus message as fetchmail hands it to its MDA after a byte-exact download.

    The store keeps CRLF form (bare LF made CRLF) and POP3 adds a final CRLF if missing.
    fetchmail itself then makes two documented edits: it drops a leading mbox ``From ``
    line, and it ends a header-only message with the empty line that closes the header.
    """
    data = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"From "):
        data = data[data.index(b"\r\n") + 2 :]
    if b"\r\n\r\n" not in data and not data.startswith(b"\r\n"):
        data += b"\r\n"
    return data


async def run_fetchmail(srv: Pop3Server, home: Path, *, implicit_tls: bool, keep: bool) -> tuple[str, list[bytes]]:
    home.mkdir()
    out = home / "out"
    out.mkdir()
    port = srv.tls_port if implicit_tls else srv.port
    options = " ".join(
        [
            "fetchall",
            "keep" if keep else "no keep",
            "no rewrite",  # leave headers alone
            "no stripcr",  # keep CRLF as served
            "ssl" if implicit_tls else "",  # without it, sslcertck makes fetchmail use STLS
            "sslcertck",
            f'sslcertfile "{srv.cert}"',
            'sslcommonname "mail.example.test"',
        ]
    )
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no syslog\nset no bouncemail\n"
        f"poll {srv.host} service {port} proto pop3 auth password bad-header accept\n"
        f'  user "bob@example.test" there with password "{PASSWORD}" is "root" here\n'
        f"  options {options}\n"
        # One file per message, numbered in delivery order (no % in the command: fetchmail expands it).
        f"  mda \"/bin/sh -c 'cat > {out}/m$(ls {out} | wc -l)'\"\n"
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    proc = await asyncio.create_subprocess_exec(
        "fetchmail", "-f", str(rc), "-v", "--nodetach", "--invisible",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    log, _ = await asyncio.wait_for(proc.communicate(), 600)
    text = log.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-3000:]
    files = sorted(out.iterdir(), key=lambda p: int(p.name[1:]))
    return text, [f.read_bytes() for f in files]


async def load_corpus(srv: Pop3Server) -> int:
    account = await add_user(srv.store, "bob")
    for path in CORPUS:
        await add_message(srv.store, account, path.read_bytes())
    return account.id


def check_bytes(got: list[bytes]) -> None:
    assert len(got) == len(CORPUS)
    bad = [p.name for p, data in zip(CORPUS, got, strict=True) if data != expected_from_fetchmail(p.read_bytes())]
    assert bad == []


async def test_pop3_fetchmail_corpus_over_stls_keep(server: Pop3Server, tmp_path: Path) -> None:
    account_id = await load_corpus(server)
    log, got = await run_fetchmail(server, tmp_path / "fm", implicit_tls=False, keep=True)
    assert "POP3> STLS" in log and "POP3< +OK Begin TLS negotiation" in log
    check_bytes(got)
    box = await server.store.get_mailbox(account_id, "INBOX")
    assert box is not None
    left = await server.store.list_messages(box.id)
    assert len(left) == len(CORPUS) and all(r.seen for r in left)


async def test_pop3_fetchmail_corpus_over_pop3s_delete(server: Pop3Server, tmp_path: Path) -> None:
    account_id = await load_corpus(server)
    log, got = await run_fetchmail(server, tmp_path / "fm", implicit_tls=True, keep=False)
    assert "STLS" not in log and "SSL/TLS: using protocol" in log
    assert f"+OK Logging out, {len(CORPUS)} messages deleted" in log
    check_bytes(got)
    box = await server.store.get_mailbox(account_id, "INBOX")
    assert box is not None
    assert await server.store.list_messages(box.id) == []
