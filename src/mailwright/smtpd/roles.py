"""The store as the SMTP session sees it: the roles of `store.api` it uses, and no other.

`Services.store` is typed `SmtpStore`, a narrowing by type only of the `Store` that `app` builds
(the same object, no cost), so mypy proves what an SMTP session may do to the store. It stages
message content and hands it to the delivery service (which owns the unit of work that stores
it, `delivery/roles.py`); it never writes mailboxes or the queue itself. `tests/test_layers.py`
checks that `smtpd` never names the wide `Store`.
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import (
    AccountLookup,
    BlobStore,
    Mailboxes,
    Messages,
    ReportData,
    Trace,
    UrlAuthStore,
)


class SmtpStore(
    AccountLookup, BlobStore, Trace, ReportData, Mailboxes, Messages, UrlAuthStore, Protocol,
):
    """The SMTP session's store: local domains, quotas and send-as grants looked up; message
    content staged, read back and discarded; the message trace; DMARC results counted and
    reports received (RFC 7489 7.2); and, for BURL on submission (RFC 4468), what resolving an
    IMAP URL reads (`imapd.roles.UrlStore`: mailboxes, messages, URLAUTH keys)."""
