"""Spam defence for the MX: DNS lists, pregreet, greylisting, rate limits, a learning classifier,
reputation from history, optional rspamd/SpamAssassin, and a reason for every verdict.

Modules, one concern each: `settings` (the `[spam]` table), `dnslists` (RFC 5782 lookups),
`envelope` (greylisting, rate limits), `tokens` (bounded MIME walk and tokenisation), `bayes`
(the classifier's arithmetic), `classifier` (models in the store), `checks` (authentication and
header tests), `external` (rspamd, spamd), `report` (X-Spam-* fields), `trainer` (learning from
users' moves and flags), `service` (the `SpamFilter` the SMTP session and the CLI call).
"""

from .settings import SpamConfigError, SpamSettings

__all__ = ["SpamConfigError", "SpamSettings"]
