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
