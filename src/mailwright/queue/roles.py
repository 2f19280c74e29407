"""The store as the outbound queue service sees it: the roles of `store.api` it uses.

`Outbound.store` is typed `QueueStore`, a narrowing by type only of the `Store` that `app`
builds, so mypy proves that the queue service leases, updates and adds queue entries, reads
message content, counts TLS sessions (RFC 8460) and records the message trace, and touches no
mailbox, account or other user data. `queue/operator.py` asks for `Queue` alone.
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import AccountLookup, BlobStore, Queue, ReportData, Trace


class QueueStore(Queue, BlobStore, ReportData, Trace, AccountLookup, Protocol):
    """The queue service's store: the queue with its leases, message content (staged for DSNs
    and reports, read for delivery), TLS-RPT results, the message trace, and the local domains
    (a DSN's sender)."""
