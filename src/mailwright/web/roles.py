"""The store as the web interface sees it: the roles of `store.api` each area uses.

`app` builds one `Store`; the web reaches it through `ui.pages.context(request)`, typed
`WebContext`, whose `store` is a `WebStore`: a narrowing by type only (the same object, no
wrapper), so mypy proves what the web interface may do. The webmail's functions ask for
`WebmailStore`, the account pages' helpers for one or two roles each. `tests/test_layers.py`
checks that `web` never names the wide `Store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from mailwright.store.api import (
    AccessControl,
    AccountLookup,
    Accounts,
    BlobStore,
    ChangeFeed,
    Mailboxes,
    Messages,
    Queue,
    SieveStore,
    SpamOverrides,
    SpamStore,
    Trace,
    WebState,
)

if TYPE_CHECKING:
    from mailwright.accounts.authenticator import Authenticator
    from mailwright.accounts.directory import Directory
    from mailwright.config import Config


class WebmailStore(
    AccountLookup, Mailboxes, Messages, BlobStore, AccessControl, ChangeFeed, Protocol,
):
    """The webmail's store (`web/webmail/`): the user's and shared folders, messages read,
    flagged, moved, deleted, drafts and the Sent copy appended, folder changes followed (live
    updates), send-as grants looked up. Shared folders go through the `*_as` operations
    (RFC 4314 rights checked by the store)."""


class FilterStore(SieveStore, Mailboxes, Protocol):
    """The account's filter pages (`web/account/filters.py`): Sieve scripts, and the folder
    names a rule may file into."""


class JunkStore(Mailboxes, Messages, BlobStore, SpamStore, Protocol):
    """The junk training page (`web/account/junk.py`): Junk and INBOX messages, moved and
    flagged like a mail client would, and the classifier's totals."""


class WebStore(
    Accounts, Mailboxes, Messages, BlobStore, AccessControl, ChangeFeed, SieveStore, SpamStore,
    WebState, Queue, Trace, SpamOverrides, Protocol,
):
    """Every role the web interface uses: the webmail's (`WebmailStore`), the account pages'
    (web sessions, settings, app passwords, the own password, filters, junk) and the
    administration's (domains, accounts, aliases, the queue, the message trace, the spam
    settings). Not the maildrop locks, METADATA, URLAUTH, reports, the listing or the store's
    maintenance."""


class WebContext(Protocol):
    """What the web interface reads of `app.AppContext` (read-only), with the store narrowed
    to `WebStore`; `AppContext` satisfies it structurally."""

    @property
    def config(self) -> Config: ...
    @property
    def store(self) -> WebStore: ...
    @property
    def directory(self) -> Directory: ...
    @property
    def authenticator(self) -> Authenticator: ...
    @property
    def hostname(self) -> str: ...
    @property
    def spam(self) -> Any: ...


class MessagePages(Messages, BlobStore, Protocol):
    """A folder's page of messages (`webmail.mailbox.list_page`, `thread_of`): the records and
    their parse-once meta; the webmail's and the junk page's stores are both one."""
