"""A real Mailwright IMAP server for integration tests: config file, SQLite store, TLS
certificate, ``net.server.ListenerSet`` with the ``imap`` and ``imaps`` listeners (and
``smtp`` when that listener exists), argon2id passwords with small cost parameters."""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailwright.app import AppContext, ProtocolUnavailable, build_context, handler_for
from mailwright.config import load_config
from mailwright.net.server import ListenerSet
from mailwright.store.api import Account, DeliveryTarget, MessageRecord
from mailwright.tls import make_self_signed
from tests.support.listening import ListeningServer, cheap_hash, fast_authenticator
from tests.support.listening import corpus_messages as corpus_messages

DOMAIN = "example.test"
PASSWORD = "imap test password"


@dataclass
class ImapServer(ListeningServer):
    ctx: AppContext
    listeners: ListenerSet
    host: str
    port: int
    tls_port: int
    cert: Path
    smtp_port: int | None
    root: Path

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



def imaplib_idle(imap: imaplib.IMAP4, idling: Callable[[], object]) -> list[bytes]:
    """IDLE (RFC 9051 6.3.13) through imaplib, which has no IDLE command: calls ``idling`` once
    the server's continuation came, returns the next two untagged lines, ends with DONE."""
    tag = imap._new_tag()  # type: ignore[attr-defined]
    imap.send(tag + b" IDLE\r\n")
    assert imap.readline().startswith(b"+ ")
    idling()
    got = [imap.readline(), imap.readline()]
    imap.send(b"DONE\r\n")
    assert imap.readline().startswith(tag + b" OK")
    return got


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
    ctx.authenticator = fast_authenticator(ctx.store)
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
