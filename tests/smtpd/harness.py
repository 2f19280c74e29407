"""Real components for SMTP tests: a store with accounts and a listening server.

Nothing is mocked: a SQLite or PostgreSQL store (tests/support/backends.py), argon2id passwords (cheap parameters), `net.server.ListenerSet`
with the SMTP listener factory, a self-signed certificate and real TLS. The outbound queue is
the real service, not started, so queued entries can be inspected in the store.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg
from tests.support import listening
from tests.support.backends import SQLITE, Backend
from tests.support.listening import ListeningServer, cheap_hash, listener, start_listeners

from mailwright.app import AppContext
from mailwright.net.server import ListenerSet
from mailwright.smtpd.listener import create
from mailwright.store.api import Account, Store

DOMAIN = "example.test"
HOSTNAME = "mail.example.test"
PASSWORD = "correct horse battery"


async def add_user(store: Store, local: str, password: str = PASSWORD, quota: int = 0) -> Account:
    if not await store.has_domain(DOMAIN):
        await store.add_domain(DOMAIN)
    account = await store.add_account(f"{local}@{DOMAIN}", cheap_hash(password))
    if quota:
        await store.update_account(account.id, quota_bytes=quota)
        found = await store.get_account(account.id)
        assert found is not None
        account = found
    return account


def body_of(stored: bytes) -> bytes:
    """The message as the client sent it: after our Return-Path, Received, X-Spam-* and
    Authentication-Results lines."""
    lines = stored.split(b"\r\n")
    i = 0
    while lines[i].startswith(
        (b"Return-Path:", b"Received:", b"X-Spam-", b"Authentication-Results:", b"\t", b" ")
    ):
        i += 1
    return b"\r\n".join(lines[i:])


async def inbox(store: Store, address: str) -> list[bytes]:
    account = await store.find_account(address)
    assert account is not None
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    return [await store.read_blob(r.blob_id) for r in await store.list_messages(box.id)]


@dataclass
class SmtpServer(ListeningServer):
    ctx: AppContext
    listeners: ListenerSet
    host: str
    port: int  # smtp (MX), STARTTLS offered
    submission_port: int  # submission, STARTTLS
    submissions_port: int  # implicit TLS
    cert: Path


def write_config(
    root: Path, host: str = "127.0.0.1", extra: str = "", hostname: str = HOSTNAME,
    backend: Backend = SQLITE,
) -> Path:
    listeners = [ln for proto in ("smtp", "submission", "submissions")
                 for ln in listener(proto, host)]
    return listening.write_config(
        root,
        "[limits]",
        "max_message_size = 100000",
        # No DNS in these tests: results are recorded as not checked.
        "[mailauth]",
        "verify = false",
        extra,
        *listeners,
        hostname=hostname,
        backend=backend,
    )


async def start_server(
    root: Path,
    *,
    outbound: bool = False,
    host: str = "127.0.0.1",
    extra: str = "",
    hostname: str = HOSTNAME,
    backend: Backend = SQLITE,
) -> SmtpServer:
    ctx, listeners, ports = await start_listeners(
        write_config(root, host, extra, hostname, backend), create, keep_outbound=outbound
    )
    return SmtpServer(
        ctx,
        listeners,
        host,
        ports["smtp"],
        ports["submission"],
        ports["submissions"],
        root / "cert.pem",
    )


class Conversation:
    """Core and session wired together in-process, as the listener does, minus the socket.

    `tls=True` stands for a TLS connection; STARTTLS completes at once.
    """

    def __init__(
        self,
        ctx: AppContext,
        mode: str = "smtp",
        *,
        tls: bool = False,
        peer_ip: str = "192.0.2.10",
        max_message_size: int = 100000,
        max_recipients: int = 100,
    ) -> None:
        from mailwright.smtpd.listener import make_core, mode_for, services_for
        from mailwright.smtpd.session import SessionSettings, SmtpSession

        m = mode_for(mode)
        self.core = make_core(
            ctx.hostname,
            m,
            tls_active=tls,
            tls_available=True,
            max_message_size=max_message_size,
            max_recipients=max_recipients,
        )
        self.session = SmtpSession(
            services_for(ctx),
            SessionSettings(mode=m, max_message_size=max_message_size, min_free_bytes=0),
            peer_ip=peer_ip,
            tls=tls,
        )
        self.core.greet()
        self.greeting = self.core.data_to_send()

    async def send(self, data: bytes | str) -> list[str]:
        """Feed client bytes (str gets CRLF line ends); the reply lines that came back."""
        from mailwright.proto import smtp
        from mailwright.smtpd.listener import answer

        if isinstance(data, str):
            data = "".join(line + "\r\n" for line in data.split("\n")).encode("utf-8")
        core = self.core
        core.receive_data(data)
        while True:
            event = core.next_event()
            if event is smtp.NEED_DATA:
                break
            assert event is not smtp.PAUSED
            await answer(core, self.session, event)
            if isinstance(event, smtp.StartTLS):
                core.tls_started()
                self.session.tls_started()
        return core.data_to_send().decode("utf-8").splitlines()

    async def cmd(self, line: str) -> str:
        """One command, its last reply line."""
        lines = await self.send(line)
        assert lines, f"no reply to {line!r}"
        return lines[-1]


SQLITE_REFUSE = (
    "CREATE TRIGGER refuse_queue BEFORE INSERT ON queue"
    " BEGIN SELECT RAISE(ABORT, 'queue refused'); END"
)
PG_REFUSE = (
    "CREATE OR REPLACE FUNCTION refuse_queue() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION 'queue refused'; END $$",
    "CREATE TRIGGER refuse_queue BEFORE INSERT ON queue"
    " FOR EACH ROW EXECUTE FUNCTION refuse_queue()",
)


def refuse_queue_rows(store: Store, on: bool = True) -> None:
    """Make the database itself refuse new queue rows (or stop refusing)."""
    from mailwright.store.postgres import PostgresStore  # type: ignore[attr-defined]
    from mailwright.store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.data_dir / "mailwright.db") as conn:
            conn.execute(SQLITE_REFUSE if on else "DROP TRIGGER refuse_queue")
        return
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.dsn, autocommit=True) as pg:
        if on:
            for stmt in PG_REFUSE:
                pg.execute(stmt.encode())
        else:
            pg.execute("DROP TRIGGER refuse_queue ON queue")
