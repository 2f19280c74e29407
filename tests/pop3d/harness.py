"""Real components for POP3 tests: a SQLite store with accounts, and a listening server.

Nothing is mocked: the store is the SQLite backend, passwords are argon2id, the server is
``net.server.ListenerSet`` with the POP3 listener factory and real TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailwright.app import AppContext, handler_for
from mailwright.config import ListenerConfig
from mailwright.delivery.ingest import stage_bytes
from mailwright.net.server import Handler, ListenerSet
from mailwright.pop3d.listener import create
from mailwright.store.api import Account, MessageRecord, Store
from tests.support.listening import (
    ListeningServer,
    cheap_hash,
    listener,
    start_listeners,
    write_config,
)
from tests.support.listening import corpus_messages as corpus_messages
from tests.support.listening import fast_authenticator as fast_authenticator

DOMAIN = "example.test"
PASSWORD = "correct horse battery"


async def add_user(store: Store, local: str, password: str = PASSWORD) -> Account:
    if not await store.has_domain(DOMAIN):
        await store.add_domain(DOMAIN)
    return await store.add_account(f"{local}@{DOMAIN}", cheap_hash(password))


async def add_message(
    store: Store, account: Account, data: bytes, mailbox: str = "INBOX"
) -> MessageRecord:
    box = await store.get_mailbox(account.id, mailbox)
    assert box is not None
    return await store.append(box.id, await stage_bytes(store, data))


@dataclass
class Pop3Server(ListeningServer):
    ctx: AppContext
    listeners: ListenerSet
    port: int  # pop3, STLS offered
    tls_port: int  # pop3s, implicit TLS
    cert: Path
    host: str
    imap_port: int | None = None


async def start_server(
    root: Path, host: str = "127.0.0.1", *, imap: bool = False, proxy: bool = False
) -> Pop3Server:
    proxied = ["proxy_protocol = true", 'proxy_trusted = ["127.0.0.0/8"]'] if proxy else []
    path = write_config(
        root,
        *listener("pop3", host, *proxied),
        *listener("pop3s", host),
        *(listener("imap", host) if imap else []),
    )

    def handler(ctx: AppContext, lc: ListenerConfig) -> Handler:
        return create(ctx, lc) if lc.protocol.startswith("pop3") else handler_for(ctx, lc)

    ctx, listeners, ports = await start_listeners(path, handler, keep_outbound=True)
    return Pop3Server(
        ctx, listeners, ports["pop3"], ports["pop3s"], root / "cert.pem", host, ports.get("imap")
    )
