"""Real components for POP3 tests: a SQLite store with accounts, and a listening server.

Nothing is mocked: the store is the SQLite backend, passwords are argon2id, the server is
``net.server.ListenerSet`` with the POP3 listener factory and real TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailwright.app import AppContext, build_context, handler_for
from mailwright.config import load_config
from mailwright.delivery.ingest import stage_bytes
from mailwright.net.server import ListenerSet
from mailwright.pop3d.listener import create
from mailwright.store.api import Account, MessageRecord, Store
from mailwright.tls import make_self_signed
from tests.support.listening import ListeningServer, cheap_hash, fast_authenticator
from tests.support.listening import corpus_messages as corpus_messages

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
