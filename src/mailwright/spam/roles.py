"""The store as the spam filter sees it: the roles of `store.api` it uses, and no other.

`SpamFilter.store` is typed `SpamFilterStore`, a narrowing by type only of the `Store` that
`app` builds; the classifier and the envelope checks ask for `SpamStore` alone, the trainer
for `TrainerStore`. mypy proves that the spam filter changes nothing but its own counts,
positions and envelope state (`tests/test_layers.py` checks that `spam` never names the wide
`Store`).
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import (
    AccountLookup,
    BlobStore,
    Mailboxes,
    Messages,
    SpamOverrides,
    SpamStore,
)


class TrainerStore(AccountLookup, Mailboxes, Messages, BlobStore, SpamStore, Protocol):
    """The trainer (`trainer.py`): every account's mailboxes read through their change log
    (`Messages.changes_since`), the messages read, the lessons and positions written."""


class SpamFilterStore(TrainerStore, SpamOverrides, Protocol):
    """The spam filter (`service.SpamFilter`): the trainer's roles, and the administrator's
    overrides of `[spam]`."""
