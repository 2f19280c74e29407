"""What the in-process server harnesses share (tests/smtpd/harness.py, tests/pop3d/harness.py,
tests/integration/imap_support.py): the config file of a server on port 0 with a self-signed
certificate, its start (real store, quick authenticator, `ListenerSet`), cheap password hashes,
the client's TLS context, the shutdown, and the message corpus."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher

from mailwright.accounts.authenticator import Authenticator
from mailwright.app import AppContext, build_context
from mailwright.config import ListenerConfig, load_config
from mailwright.net.server import Handler, ListenerSet
from mailwright.store.api import Store
from mailwright.tls import make_self_signed
from tests.support.backends import SQLITE, Backend

# The repository's own message corpus (tests/corpus/README.md).
CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "messages"
HOSTNAME = "mail.example.test"


@cache
def cheap_hash(password: str) -> str:
    """A real argon2id hash with small cost parameters, so each login verifies quickly."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


def fast_authenticator(store: Store) -> Authenticator:
    # The failure delay is real, only short, so tests with wrong passwords stay quick.
    return Authenticator(store, base_delay=0.01, max_delay=0.02)


def corpus_messages(limit: int | None = None) -> list[Path]:
    """The repository's corpus files (tests/corpus/messages) in a fixed order."""
    files = sorted(CORPUS.glob("*.eml"))
    return files[:limit] if limit else files


def listener(protocol: str, host: str, *options: str) -> list[str]:
    """The config lines of one listener on a port the kernel picks."""
    return ["[[listener]]", f'protocol = "{protocol}"', f'address = "{host}"', "port = 0", *options]


def write_config(
    root: Path, *lines: str, hostname: str = HOSTNAME, backend: Backend = SQLITE
) -> Path:
    """`root`/mailwright.toml: a self-signed certificate (made once), data/, the store on
    ``backend`` and no fsync, then ``lines`` (further sections, then the listeners)."""
    cert, key = root / "cert.pem", root / "key.pem"
    if not cert.exists():
        make_self_signed(hostname, cert, key)
    (root / "data").mkdir(exist_ok=True)
    path = root / "mailwright.toml"
    path.write_text("\n".join([
        "[server]", f'hostname = "{hostname}"', 'data_dir = "data"',
        "[tls]", 'cert = "cert.pem"', 'key = "key.pem"',
        "[storage]", "fsync = false", *backend.storage_lines(),
        *lines,
        "",
    ]))
    return path


async def start_listeners(
    config_path: Path,
    handler: Callable[[AppContext, ListenerConfig], Handler | None],
    *,
    keep_outbound: bool,
) -> tuple[AppContext, ListenerSet, dict[str, int]]:
    """The context (real store, quick authenticator; the outbound queue service built but not
    started, or none), every listener ``handler`` gives a handler for, and their bound ports."""
    config = load_config(config_path)
    ctx = await build_context(config)
    ctx.authenticator = fast_authenticator(ctx.store)
    if not keep_outbound:
        ctx.outbound = None
    listeners = ListenerSet(ctx.ssl_context)
    for lc in config.listeners:
        h = handler(ctx, lc)
        if h is not None:
            await listeners.add(lc, h)
    return ctx, listeners, {lc.protocol: port for lc, port in listeners.bound()}


class ListeningServer:
    """Base of the harnesses' server dataclasses (their fields name these three)."""

    ctx: AppContext
    listeners: ListenerSet
    cert: Path

    @property
    def store(self) -> Store:
        return self.ctx.store

    def client_ssl(self) -> ssl.SSLContext:
        """Trusts the server's self-signed certificate; the name is not checked."""
        context = ssl.create_default_context(cafile=str(self.cert))
        context.check_hostname = False
        return context

    async def stop(self) -> None:
        await self.listeners.shutdown(grace=2.0)
        await self.ctx.store.close()
