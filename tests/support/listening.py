"""What the in-process server harnesses share (tests/smtpd/harness.py, tests/pop3d/harness.py,
tests/integration/imap_support.py): cheap password hashes, a quick authenticator, the client's
TLS context and the shutdown of a `ListenerSet` over a real store, and the message corpus."""

from __future__ import annotations

import ssl
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher

from mailwright.accounts.authenticator import Authenticator
from mailwright.app import AppContext
from mailwright.net.server import ListenerSet
from mailwright.store.api import Store

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "messages"


@cache
def cheap_hash(password: str) -> str:
    """A real argon2id hash with small cost parameters, so each login verifies quickly."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


def fast_authenticator(store: Store) -> Authenticator:
    # The failure delay is real, only short, so tests with wrong passwords stay quick.
    return Authenticator(store, base_delay=0.01, max_delay=0.02)


def corpus_messages(limit: int | None = None) -> list[Path]:
    """Corpus files in a fixed order; empty when ../shared/corpus is not there."""
    if not CORPUS.is_dir():
        return []
    files = sorted(CORPUS.glob("*.eml"))
    return files[:limit] if limit else files


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
