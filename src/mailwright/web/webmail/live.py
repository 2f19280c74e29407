"""Live updates for open webmail pages: the change hub that wakes IMAP IDLE, as Server-Sent
Events (HTML Living Standard 9.2).

The hub carries only (mailbox, modseq), so a page is told which mailbox changed and fetches
what it shows again; a lost or merged wake-up loses nothing. A comment line every
`KEEPALIVE` seconds keeps proxies from closing an idle stream and notices a gone browser.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from mailwright.store.api import StoreError
from mailwright.web.roles import WebmailStore

KEEPALIVE = 25.0
# A page whose account gains a mailbox reconnects (the browser does that by itself after
# `retry`), so the subscriptions stay a fixed set per stream.
RETRY_MS = 3000


async def change_events(store: WebmailStore, account_id: int,
                        keepalive: float = KEEPALIVE) -> AsyncIterator[bytes]:
    """SSE bytes: `event: ready` once subscribed, then `event: change` with
    {"mailbox": id, "unseen": n, "messages": n} for each change."""
    boxes = await store.list_mailboxes(account_id)
    subs = [store.changes.subscribe(b.id) for b in boxes]
    try:
        # `ready` comes once the subscriptions exist: the page then fetches what it shows
        # once more, so nothing that changed before the stream was open is missed
        yield f"retry: {RETRY_MS}\nevent: ready\ndata: {{}}\n\n".encode()
        while True:
            waiters = {asyncio.ensure_future(s.wait()): s for s in subs}
            try:
                done, _ = await asyncio.wait(waiters, timeout=keepalive,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for fut in waiters:
                    fut.cancel()
            if not done:
                yield b": keepalive\n\n"
                continue
            changed = {waiters[f].mailbox_id for f in done}
            changed |= {s.mailbox_id for s in subs if s.pending}
            for sub in subs:
                if sub.mailbox_id in changed:
                    sub.clear()
            for mailbox_id in sorted(changed):
                try:
                    status = await store.mailbox_status(mailbox_id)
                except StoreError:  # deleted meanwhile
                    continue
                data = json.dumps({"mailbox": mailbox_id, "unseen": status.unseen,
                                   "messages": status.messages})
                yield f"event: change\ndata: {data}\n\n".encode()
    finally:
        for sub in subs:
            sub.close()
