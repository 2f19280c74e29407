"""Importing this module registers every IMAP command handler in ``session.HANDLERS``."""

from __future__ import annotations

from mailwright.imapd import (
    cmd_acl,
    cmd_auth,
    cmd_mailbox,
    cmd_metadata,
    cmd_selected,
    context,
    dispatch,
    notify,
)
from mailwright.imapd import cmd_urlauth as cmd_urlauth  # RFC 4467

__all__ = [
    "cmd_acl", "cmd_auth", "cmd_mailbox", "cmd_metadata", "cmd_selected", "context", "dispatch",
    "notify",
]
