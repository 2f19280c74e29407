"""The store as ManageSieve sees it: Sieve scripts only.

`ManageSieveSession.store` is typed `ManageSieveStore`, a narrowing by type only of the `Store`
that `app` builds, so mypy proves the session reads and writes the account's scripts and
nothing else (`tests/test_layers.py` checks that `managesieved` never names the wide `Store`).
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import SieveStore


class ManageSieveStore(SieveStore, Protocol):
    """The ManageSieve session's store (RFC 5804): the account's scripts, one active."""
