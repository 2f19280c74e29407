"""Real components for POP3 tests: a SQLite store with accounts, and a listening server.

Nothing is mocked: the store is the SQLite backend, passwords are argon2id, the server is
``net.server.ListenerSet`` with the POP3 listener factory and real TLS.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher

from mailwright.accounts.authenticator import Authenticator
from mailwright.app import AppContext, build_context, handler_for
from mailwright.config import load_config
from mailwright.delivery.ingest import stage_bytes
from mailwright.net.server import ListenerSet
from mailwright.pop3d.listener import create
from mailwright.store.api import Account, MessageRecord, Store
from mailwright.tls import make_self_signed

DOMAIN = "example.test"
PASSWORD = "correct horse battery"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "messages"


def fast_authenticator(store: Store) -> Authenticator:
    # The failure delay is real, only short, so tests with wrong passwords stay quick.
    return Authenticator(store, base_delay=0.01, max_delay=0.02)


@cache
def cheap_hash(password: str) -> str:
    """A real argon2id hash with small cost parameters, so each login verifies quickly."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


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


def corpus_messages(limit: int | None = None) -> list[Path]:
    """Corpus files in a fixed order; empty when ../shared/corpus is not there."""
    if not CORPUS.is_dir():
        return []
    files = sorted(CORPUS.glob("*.eml"))
    return files[:limit] if limit else files


@dataclass
class Pop3Server:
    ctx: AppContext
    listeners: ListenerSet
    port: int  # pop3, STLS offered
    tls_port: int  # pop3s, implicit TLS
    cert: Path
    host: str
    imap_port: int | None = None

    def client_ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert))
        context.check_hostname = False
        return context

    @property
    def store(self) -> Store:
        return self.ctx.store

    async def stop(self) -> None:
        await self.listeners.shutdown(grace=2.0)
        await self.ctx.store.close()


async def start_server(
    root: Path, host: str = "127.0.0.1", *, imap: bool = False, proxy: bool = False
) -> Pop3Server:
    cert, key = root / "cert.pem", root / "key.pem"
    make_self_signed("mail.example.test", cert, key)
    (root / "data").mkdir(exist_ok=True)
    config_path = root / "mailwright.toml"
    config_path.write_text(
        "\n".join(
            [
                "[server]",
                'hostname = "mail.example.test"',
                'data_dir = "data"',
                "[tls]",
                'cert = "cert.pem"',
                'key = "key.pem"',
                "[storage]",
                "fsync = false",
                "[[listener]]",
                'protocol = "pop3"',
                f'address = "{host}"',
                "port = 0",
                *(["proxy_protocol = true", 'proxy_trusted = ["127.0.0.0/8"]'] if proxy else []),
                "[[listener]]",
                'protocol = "pop3s"',
                f'address = "{host}"',
                "port = 0",
                *(["[[listener]]", 'protocol = "imap"', f'address = "{host}"', "port = 0"] if imap else []),
                "",
            ]
        )
    )
    config = load_config(config_path)
    ctx = await build_context(config)
    ctx.authenticator = fast_authenticator(ctx.store)
    listeners = ListenerSet(ctx.ssl_context)
    for lc in config.listeners:
        await listeners.add(lc, create(ctx, lc) if lc.protocol.startswith("pop3") else handler_for(ctx, lc))
    ports = {lc.protocol: port for lc, port in listeners.bound()}
    return Pop3Server(ctx, listeners, ports["pop3"], ports["pop3s"], cert, host, ports.get("imap"))
