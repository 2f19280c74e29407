"""The store as IMAP sees it: the roles of `store.api` the IMAP session uses, and no other.

`app` builds one `Store` and hands it to every listener; the IMAP session keeps it typed as
`ImapStore`, so the narrowing costs nothing at run time (no wrapper, the same object) and mypy
proves that nothing in `imapd` calls a role outside this list: IMAP never administers accounts
(it looks them up), and never touches the outbound queue, Sieve scripts, the spam filter's data,
reports, web state or the store's maintenance. `tests/test_layers.py` checks that `imapd`
never names the wide `Store` and that these types only compose roles of `store.api`.
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import (
    AccessControl,
    AccountLookup,
    BlobStore,
    ChangeFeed,
    Listings,
    Mailboxes,
    Messages,
    Metadata,
    UrlAuthStore,
)


class UrlStore(AccountLookup, Mailboxes, Messages, BlobStore, UrlAuthStore, Protocol):
    """What resolving an IMAP URL needs (`imapd/urls.py`: URLFETCH, CATENATE, and the
    submission server's BURL): the owner, the mailbox, the message and its content, the
    mailbox's URLAUTH key."""


class ImapStore(
    AccountLookup, Mailboxes, Messages, BlobStore, Listings, ChangeFeed, Metadata,
    AccessControl, UrlAuthStore, Protocol,
):
    """The IMAP session's store (`Session.store`): accounts looked up (LOGIN's account, QUOTA's
    usage and message limit, other users' names), mailboxes and messages with their listing
    and change feed (SELECT, IDLE, NOTIFY), content (APPEND, FETCH, SEARCH), METADATA, ACL
    (RFC 4314 sharing) and URLAUTH."""
