"""The store as Sieve filtering at delivery sees it (`sieve/delivery.py`).

`SieveFilter.store` is typed `SieveDeliveryStore`, a narrowing by type only of the `Store` that
`app` builds: the filter reads scripts and its vacation/duplicate memory, looks up the folders
`fileinto` names (its own, or another account's that grants it RFC 4314 ``p``, asked of
`acl_rights`), creates one with `:create`, and reads the staged message; it stores no message
itself (the delivery's unit of work does).
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import AccessControl, AccountLookup, BlobStore, Mailboxes, SieveStore


class SieveDeliveryStore(SieveStore, AccountLookup, Mailboxes, AccessControl, BlobStore, Protocol):
    """Sieve at delivery: scripts and memory, folders (own and shared), the staged message."""
