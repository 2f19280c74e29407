"""A real Mailwright IMAP server for integration tests: config file, store (SQLite unless a
backend is given), TLS certificate, ``net.server.ListenerSet`` with the ``imap`` and ``imaps``
listeners (and ``smtp`` when that listener exists), argon2id passwords with small cost
parameters."""

from __future__ import annotations

import imaplib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwright.app import AppContext, handler_for
from mailwright.config import ListenerConfig
from mailwright.net.server import Handler, ListenerSet
from mailwright.store.api import Account, DeliveryTarget, MessageRecord
from tests.support.backends import SQLITE, Backend
from tests.support.listening import (
    ListeningServer,
    cheap_hash,
    listener,
    start_listeners,
    write_config,
)
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
    #: each IMAP listener's hibernation home (imapd/hibernate.py), by protocol key
    homes: dict[str, Any] = field(default_factory=dict)

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
    tag = imap._new_tag()
    imap.send(tag + b" IDLE\r\n")
    assert imap.readline().startswith(b"+ ")
    idling()
    got = [imap.readline(), imap.readline()]
    imap.send(b"DONE\r\n")
    assert imap.readline().startswith(tag + b" OK")
    return got


async def start_imap_server(root: Path, *, smtp: bool = False,
                            backend: Backend = SQLITE) -> ImapServer:
    host = "127.0.0.1"
    homes: dict[str, Any] = {}
    path = write_config(
        root,
        # no DNS in tests: mail authentication results are recorded as not checked
        *(["[mailauth]", "verify = false"] if smtp else []),
        *listener("imap", host),
        *listener("imaps", host),
        *(listener("smtp", host) if smtp else []),
        backend=backend,
    )

    def handler(ctx: AppContext, lc: ListenerConfig) -> Handler | None:
        h = handler_for(ctx, lc)
        if getattr(h, "home", None) is not None:
            homes[lc.protocol] = h.home  # type: ignore[union-attr, attr-defined]
        return h

    ctx, listeners, ports = await start_listeners(path, handler, keep_outbound=False)
    cert = root / "cert.pem"
    return ImapServer(ctx, listeners, host, ports["imap"], ports["imaps"], cert,
                      ports.get("smtp"), root, homes)
