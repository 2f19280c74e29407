"""The store as POP3 sees it: the roles of `store.api` the POP3 session uses, and no other.

`app` hands the session the whole `Store`; `Pop3Session.store` keeps it typed as `Pop3Store`,
a narrowing by type only (the same object, no cost), so mypy proves that POP3 reads the
maildrop, marks, moves or expunges messages and takes the maildrop lock, and does nothing else
(`tests/test_layers.py` checks that `pop3d` never names the wide `Store`).
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import AccountLookup, BlobStore, Mailboxes, MaildropLocks, Messages


class Pop3Store(AccountLookup, Mailboxes, Messages, BlobStore, MaildropLocks, Protocol):
    """The POP3 session's store: the account (its `pop3_keep` setting), INBOX and Trash, the
    messages and their content, and the RFC 1939 8 maildrop lock."""
