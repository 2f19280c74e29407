"""The keys of per-account settings (`Store.account_setting`), in one place.

Settings are small strings kept beside the account, for what only some accounts have.
"""

from __future__ import annotations

ADMIN = "admin"  # "1": the admin role (the web interface's /admin/ pages)
TOTP = "totp"  # the base32 TOTP secret (RFC 6238) once the account has a second factor
TOTP_LAST = "totp_last"  # the last TOTP time step accepted (a code is never taken twice)
