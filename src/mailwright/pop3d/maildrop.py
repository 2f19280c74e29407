"""The POP3 maildrop: a snapshot of INBOX taken at login, with deletion marks (RFC 1939 5, 8).

Message numbers are positions in the snapshot and never change during a session; messages
that arrive later, or that IMAP expunges meanwhile, do not disturb them.  Deletion marks
live only here until the UPDATE state (RFC 1939 6) applies them in one store call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailwright.store.api import Mailbox, MessageRecord


def uidl_for(uidvalidity: int, uid: int) -> str:
    """The unique-id listing of a message (RFC 1939 7), stable for the message's life.

    It is the IMAP identity (UID + UIDVALIDITY), so IMAP and POP3 agree on which message is
    which.  The layout is Dovecot's default ``%08Xu%08Xv``, so a client that migrates from a
    Dovecot maildrop with preserved UIDs does not download everything again.  At most 16
    characters from 0x21..0x7E, as RFC 1939 7 requires (1 to 70).
    """
    return f"{uid:08X}{uidvalidity:08X}"


@dataclass(frozen=True, slots=True)
class Entry:
    number: int  # 1-based message number in this session (RFC 1939 5)
    uid: int
    size: int  # octets of the stored CRLF form: what RETR sends before dot-stuffing
    blob_id: str
    uidl: str


class NoSuchMessage(Exception):
    """The number is outside the snapshot, or the message is marked deleted."""


class Maildrop:
    def __init__(self, mailbox: Mailbox, records: Sequence[MessageRecord]) -> None:
        self.mailbox = mailbox
        ordered = sorted(records, key=lambda r: r.uid)
        self.entries: tuple[Entry, ...] = tuple(
            Entry(i, r.uid, r.size, r.blob_id, uidl_for(mailbox.uidvalidity, r.uid))
            for i, r in enumerate(ordered, start=1)
        )
        self._deleted: set[int] = set()

    def get(self, number: int) -> Entry:
        if not 1 <= number <= len(self.entries):
            raise NoSuchMessage(f"No message {number}, the maildrop has {len(self.entries)}")
        if number in self._deleted:
            raise NoSuchMessage(f"Message {number} is already deleted")
        return self.entries[number - 1]

    def visible(self) -> list[Entry]:
        """Messages not marked deleted (RFC 1939 5: they must not be listed)."""
        return [e for e in self.entries if e.number not in self._deleted]

    def stat(self) -> tuple[int, int]:
        shown = self.visible()
        return len(shown), sum(e.size for e in shown)

    def delete(self, number: int) -> None:
        self.get(number)
        self._deleted.add(number)

    def reset(self) -> None:
        self._deleted.clear()

    def deleted_uids(self) -> list[int]:
        return sorted(self.entries[n - 1].uid for n in self._deleted)
