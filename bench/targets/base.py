"""What a workload needs from a server under test, whatever the server is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import procmem


@dataclass(frozen=True, slots=True)
class Population:
    """The same users and mailbox contents on every server.

    ``maildirs`` maps a user's local part to a Maildir (LF line ends) preloaded into its INBOX.
    """

    users: tuple[str, ...]
    maildirs: dict[str, Path] = field(default_factory=dict)
    #: users whose argon2id hash uses cheap parameters (FAST_HASH) on every server alike, so
    #: that 10,000 IDLE logins do not take half an hour of CPU before memory can be measured
    fast_hash_users: tuple[str, ...] = ()


#: argon2id parameters of the fast_hash_users (the others get argon2-cffi's defaults, RFC 9106)
FAST_HASH = {"time_cost": 1, "memory_cost": 4096, "parallelism": 1}


def password_hashes(population: Population, password: str) -> dict[str, str]:
    """One argon2id hash per user, the same strings handed to every server."""
    from argon2 import PasswordHasher

    strong = PasswordHasher().hash(password)
    fast = PasswordHasher(**FAST_HASH).hash(password)  # type: ignore[arg-type]
    return {u: fast if u in population.fast_hash_users else strong for u in population.users}


class Target:
    """A server under test. Subclasses start it, stop it and say what it offers."""

    name = "target"
    #: protocols this kind of server speaks at all (smtp, imap, pop3)
    speaks: frozenset[str] = frozenset()
    #: True when SMTP's 250 after DATA means the message is already in the mailbox
    delivers_before_250 = False

    def __init__(self) -> None:
        self.endpoints: dict[str, tuple[str, int]] = {}
        #: protocol -> why it cannot be measured on this server in this run
        self.unavailable: dict[str, str] = {}
        self.version = "?"
        self.label = self.name

    def setup(self, population: Population) -> None:
        """Configure in the scratch directory and load users and mailboxes (before start)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def root_pids(self) -> list[int]:
        raise NotImplementedError

    def pids(self) -> list[int]:
        return procmem.tree(self.root_pids())

    def count(self, user: str) -> int | None:
        """Messages in the user's INBOX, or None when this server cannot tell cheaply."""
        return None

    def availability(self, protocol: str) -> str | None:
        """None when ``protocol`` can be measured, else the reason it cannot."""
        if protocol not in self.speaks:
            return f"{self.name} does not speak {protocol}"
        if protocol in self.unavailable:
            return self.unavailable[protocol]
        if protocol not in self.endpoints:
            return f"no {protocol} listener"
        return None

    def endpoint(self, protocol: str) -> tuple[str, int]:
        return self.endpoints[protocol]
