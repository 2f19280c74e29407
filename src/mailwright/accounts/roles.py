"""The store as the account services see it: the roles of `store.api` they use.

The directory resolves recipients with `AccountLookup` alone; the authenticator reads an
account, its second factor and its app passwords (`LoginStore`); the administration helpers of
`admin.py` (shared by the CLI and the web admin) ask for `Accounts` or `WebState`. All are
narrowings by type of the one `Store` that `app` builds.
"""

from __future__ import annotations

from typing import Protocol

from mailwright.store.api import AccountLookup, WebState


class LoginStore(AccountLookup, WebState, Protocol):
    """The authenticator's store: the account of an address, its TOTP setting and app
    passwords (`WebState`)."""
