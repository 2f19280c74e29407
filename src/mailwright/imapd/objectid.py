"""Object identifiers (RFC 8474 OBJECTID), derived from what the store already keeps for good.

* MAILBOXID: the mailbox row's id with its UIDVALIDITY.  Row ids are never reused (SQLite
  AUTOINCREMENT, PostgreSQL sequences) and RENAME keeps both, so the id is the same for the same
  name and UIDVALIDITY, different for every other mailbox, and survives RENAME (RFC 8474 4).
* EMAILID: from the message's content address (the SHA-256 blob id).  Content never changes, so
  the id is immutable, and a COPY or MOVE, which shares the blob, keeps it (RFC 8474 5.1);
  byte-identical messages share it, which RFC 8474 5.1 allows.  JMAP will use the same ids.
* THREADID: not computed; RFC 8474 5.2 then requires NIL in FETCH and no match in SEARCH.

Ids start with a letter naming their kind ("F" mailbox, "M" message), so an EMAILID can never
equal a THREADID or a MAILBOXID.
"""

from __future__ import annotations

from mailwright.store.api import Mailbox


def mailbox_id(mb: Mailbox) -> str:
    return f"F{mb.id}-{mb.uidvalidity}"


def email_id(blob_id: str) -> str:
    # 128 bits of the content hash: objectid = 1*255(ALPHA / DIGIT / "_" / "-") (RFC 8474 7)
    return "M" + blob_id[:32]
