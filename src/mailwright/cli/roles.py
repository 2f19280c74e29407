"""The store as each operator command sees it: the roles of `store.api` a command uses.

`cli/common.py` opens the one `Store` (the composition root, like `app`); each command's
function asks for the roles it uses (one role of `store.api`, or one of these intersections),
a narrowing by type only, so mypy proves for instance that `mailwright sieve` touches nothing
but accounts looked up and Sieve scripts. `tests/test_layers.py` checks that no CLI module but
`common.py` names the wide `Store`.
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import (
    AccountLookup,
    Accounts,
    BlobStore,
    Mailboxes,
    Maintenance,
    Messages,
    Queue,
    SieveStore,
    WebState,
)


class SieveAdmin(AccountLookup, SieveStore, Protocol):
    """`mailwright sieve`: an account's scripts, by its address."""


class MailboxCheck(AccountLookup, Mailboxes, Messages, Maintenance, Protocol):
    """`mailwright check`: the store's own check, and every mailbox's counters against its
    messages."""


class Importing(AccountLookup, Mailboxes, Messages, BlobStore, Protocol):
    """`mailwright import`: mailboxes found or created, messages staged and appended in
    batches (`Messages.append_many`), what is there already read to skip duplicates."""


class QueueInspect(Queue, BlobStore, Protocol):
    """`mailwright queue show`: the entries of a queue id and their message."""


class UserAdmin(Accounts, WebState, Protocol):
    """`mailwright user`: accounts, aliases and send-as grants, and the admin role of the web
    interface (an account setting, `WebState`)."""
