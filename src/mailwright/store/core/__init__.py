"""The store's rules, written once for every backend.

Each module holds one family of rules as a mixin of `CoreBase`; a backend class inherits
`CoreStore` and implements the hooks of `tx.Backend` (a unit of work, a read, staging a
blob, its blob storage) and the `tx.Tx` primitives in its own SQL. The message rules are here:
delivery of one message to its local recipients (`fanout`), append, flags, expunge, copy,
move, the IMAP sync reads and the shared listing cache (`messages`, `listing`), quotas on all
of those paths included, and reading and collecting message content (`blobs`, over the
backend's `store.blobstore.BlobStorage`). What a backend still holds of its own: the schema,
the blob storage's SQL (reference counts and the rows' content), and PostgreSQL's group
commit and its shared `changes_since` (`store.postgres.changelog`).
"""

from __future__ import annotations

from mailwright.store.core.accounts import Accounts
from mailwright.store.core.accounts_extra import SendAs, SieveScripts
from mailwright.store.core.acl import AccessControl
from mailwright.store.core.blobs import BlobRules
from mailwright.store.core.fanout import FanOut
from mailwright.store.core.mailboxes import Mailboxes
from mailwright.store.core.maintenance import Checks
from mailwright.store.core.messages import MessageRules
from mailwright.store.core.metadata import Metadata
from mailwright.store.core.queue import QueueRules
from mailwright.store.core.recent import RecentMarks
from mailwright.store.core.reports import DmarcData, TlsReporting
from mailwright.store.core.spam import SpamState
from mailwright.store.core.trace import SpamSettingsStore, TraceLog
from mailwright.store.core.urlauth import UrlAuthKeys
from mailwright.store.core.webstate import WebStateRules


class CoreStore(
    Accounts, Mailboxes, QueueRules, SendAs, SieveScripts, SpamState, DmarcData, TlsReporting,
    RecentMarks, Checks, Metadata, UrlAuthKeys, AccessControl, FanOut, TraceLog,
    SpamSettingsStore, WebStateRules, BlobRules, MessageRules,
):
    """Every family of rules the core holds, for a backend to inherit."""


__all__ = ["CoreStore"]
