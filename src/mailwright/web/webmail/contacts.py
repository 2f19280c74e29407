"""Address completion from the user's own history: whom they wrote to and who wrote to them.

No address book to keep: the recipients of the newest messages in Sent (To, Cc, Bcc) and the
senders of the newest in the other mailboxes are counted; the ones written to most rank first.
The list is kept per account until one of those mailboxes changes (HIGHESTMODSEQ).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mailwright.mime.model import MessageInfo
from mailwright.web.roles import WebmailStore

from .message import Person, people

SCAN_PER_MAILBOX = 500  # newest messages read per mailbox
MAX_SUGGESTIONS = 10
_SKIP = ("\\Junk", "\\Trash")


@dataclass(frozen=True, slots=True)
class _Known:
    stamp: tuple[tuple[int, int], ...]
    people: list[Person]  # best first


_CACHE: dict[int, _Known] = {}


async def _history(store: WebmailStore, account_id: int) -> list[Person]:
    boxes = [b for b in await store.list_mailboxes(account_id) if b.special_use not in _SKIP]
    stamp = tuple((b.id, b.highestmodseq) for b in boxes)
    known = _CACHE.get(account_id)
    if known is not None and known.stamp == stamp:
        return known.people
    score: Counter[str] = Counter()
    names: dict[str, str] = {}
    for box in boxes:
        records = (await store.list_messages(box.id))[-SCAN_PER_MAILBOX:]
        sent = box.special_use in ("\\Sent", "\\Drafts")
        for rec in records:
            meta = await store.get_meta(rec.blob_id)
            try:
                env = MessageInfo.from_meta(meta).envelope if meta else None
            except (ValueError, KeyError, TypeError):
                env = None
            if env is None:
                continue
            found = (*people(env.to), *people(env.cc), *people(env.bcc)) if sent else \
                people(env.from_)
            for person in found:
                key = person.address.lower()
                if not key:
                    continue
                score[key] += 3 if sent else 1  # written to counts more than written by
                if person.name:
                    names[key] = person.name
    ranked = [Person(names.get(key, ""), key) for key, _ in score.most_common()]
    if len(_CACHE) > 1000:
        _CACHE.clear()
    _CACHE[account_id] = _Known(stamp, ranked)
    return ranked


async def complete(store: WebmailStore, account_id: int, prefix: str,
                   exclude: set[str] | None = None) -> list[Person]:
    """Known correspondents whose address or a word of whose name starts with `prefix`."""
    prefix = prefix.strip().casefold()
    if not prefix:
        return []
    out: list[Person] = []
    for person in await _history(store, account_id):
        if exclude and person.address in exclude:
            continue
        words = [person.address.casefold(), *person.name.casefold().split()]
        if any(w.startswith(prefix) for w in words):
            out.append(person)
            if len(out) >= MAX_SUGGESTIONS:
                break
    return out
