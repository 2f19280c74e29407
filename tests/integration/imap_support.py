"""A real Mailwright IMAP server for integration tests: config file, SQLite store, TLS
certificate, ``net.server.ListenerSet`` with the ``imap`` and ``imaps`` listeners (and
``smtp`` when that listener exists), argon2id passwords with small cost parameters."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher

from mailwright.accounts.authenticator import Authenticator
from mailwright.app import AppContext, ProtocolUnavailable, build_context, handler_for
from mailwright.config import load_config
from mailwright.net.server import ListenerSet
from mailwright.store.api import Account, DeliveryTarget, MessageRecord, Store
from mailwright.tls import make_self_signed

DOMAIN = "example.test"
PASSWORD = "imap test password"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "messages"


@cache
def cheap_hash(password: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


@dataclass
class ImapServer:
    ctx: AppContext
    listeners: ListenerSet
    host: str
    port: int
    tls_port: int
    cert: Path
    smtp_port: int | None
    root: Path

    @property
    def store(self) -> Store:
        return self.ctx.store

    def client_ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert))
        context.check_hostname = False
        return context

    async def add_user(self, local: str = "alice") -> Account:
        if not await self.store.has_domain(DOMAIN):
            await self.store.add_domain(DOMAIN)
        return await self.store.add_account(f"{local}@{DOMAIN}", cheap_hash(PASSWORD))

    async def deliver(self, account: Account, data: bytes, mailbox: str = "INBOX") -> MessageRecord:
        w = self.store.blob_writer()
        w.write(data)
        blob = await w.finish()
        [rec] = await self.store.deliver(blob, [DeliveryTarget(account.id, mailbox)])
        return rec

    async def stop(self) -> None:
        await self.listeners.shutdown(grace=2.0)
        await self.ctx.store.close()


async def start_imap_server(root: Path, *, smtp: bool = False) -> ImapServer:
    host = "127.0.0.1"
    cert, key = root / "cert.pem", root / "key.pem"
    make_self_signed("mail.example.test", cert, key)
    (root / "data").mkdir(exist_ok=True)
    lines = [
        "[server]", 'hostname = "mail.example.test"', 'data_dir = "data"',
        "[tls]", 'cert = "cert.pem"', 'key = "key.pem"',
        "[storage]", "fsync = false",
        "[[listener]]", 'protocol = "imap"', f'address = "{host}"', "port = 0",
        "[[listener]]", 'protocol = "imaps"', f'address = "{host}"', "port = 0",
    ]
    if smtp:
        # no DNS in tests: mail authentication results are recorded as not checked
        lines[lines.index("[[listener]]"):lines.index("[[listener]]")] = ["[mailauth]", "verify = false"]
        lines += ["[[listener]]", 'protocol = "smtp"', f'address = "{host}"', "port = 0"]
    (root / "mailwright.toml").write_text("\n".join(lines) + "\n")
    config = load_config(root / "mailwright.toml")
    ctx = await build_context(config)
    ctx.authenticator = Authenticator(ctx.store, base_delay=0.01, max_delay=0.02)
    ctx.outbound = None
    listeners = ListenerSet(ctx.ssl_context)
    for lc in config.listeners:
        try:
            handler = handler_for(ctx, lc)
        except ProtocolUnavailable:
            continue
        await listeners.add(lc, handler)
    ports = {lc.protocol: port for lc, port in listeners.bound()}
    return ImapServer(ctx, listeners, host, ports["imap"], ports["imaps"], cert,
                      ports.get("smtp"), root)


def corpus_messages(limit: int | None = None) -> list[Path]:
    if not CORPUS.is_dir():
        return []
    files = sorted(CORPUS.glob("*.eml"))
    return files[:limit] if limit else files
