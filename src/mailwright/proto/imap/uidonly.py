"""UIDONLY (RFC 9586): once a client has enabled it, message sequence numbers are gone from
the session, in both directions.

This module holds the request side, a pure check on the parsed command: RFC 9586 3 says a
command that names messages by sequence number (FETCH, STORE, SEARCH, COPY, MOVE, SORT,
THREAD and REPLACE without the UID prefix, or a search key that is a sequence set) gets a
tagged ``BAD [UIDREQUIRED]``.  The response side (``UIDFETCH`` instead of ``FETCH``,
``VANISHED`` instead of ``EXPUNGE``) is the session's.
"""

from __future__ import annotations

from mailwright.proto.imap import ast
from mailwright.proto.imap.errors import ProtocolError

_NUMBERED = (
    ast.Fetch, ast.Store, ast.Search, ast.Copy, ast.Move, ast.Sort, ast.Thread, ast.Replace,
)


def _uses_sequence_numbers(key: ast.SearchKey) -> bool:
    if isinstance(key, ast.SearchSequence):
        return not key.set.saved  # "$" holds UIDs (RFC 5182)
    if isinstance(key, ast.SearchAnd):
        return any(_uses_sequence_numbers(k) for k in key.keys)
    if isinstance(key, ast.SearchOr):
        return _uses_sequence_numbers(key.left) or _uses_sequence_numbers(key.right)
    if isinstance(key, ast.SearchNot):
        return _uses_sequence_numbers(key.key)
    return False


def check_uid_only(cmd: ast.Command) -> None:
    """Raise ``BAD [UIDREQUIRED]`` if *cmd* uses message sequence numbers (RFC 9586 3)."""
    if isinstance(cmd, _NUMBERED) and not cmd.uid:
        raise ProtocolError(
            "Message sequence numbers are not allowed once UIDONLY is enabled",
            tag=cmd.tag, code="UIDREQUIRED",
        )
    key = getattr(cmd, "key", None)
    if isinstance(cmd, ast.Search | ast.Sort | ast.Thread | ast.MultiSearch) and key is not None \
            and _uses_sequence_numbers(key):
        raise ProtocolError(
            "Search keys with message sequence numbers are not allowed once UIDONLY is enabled",
            tag=cmd.tag, code="UIDREQUIRED",
        )
