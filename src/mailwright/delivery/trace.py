"""The message trace, as the services record it: who decided what about a message, and why.

House rules:
- An event that belongs to a decision made durable in a store transaction rides in that
  transaction (`FanOut.deliver_each(trace=...)`, `Queue.queue_update(trace=...)`); an event
  with no transaction of its own (a refusal) is recorded by `record_later` in the background,
  so a refusal never waits for the store and a store failure never changes a reply.
- The trace explains; it never decides. Recording failures are logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence

from mailwright.store.api import StoreError, Trace, TraceEvent

log = logging.getLogger("mailwright.trace")

_pending: set[asyncio.Task[None]] = set()
# Refusals come from unauthenticated peers: a flood of them (greylisting, rate limits) must not
# grow a queue of background inserts faster than the store drains it. Beyond this many in
# flight, a refusal's events are dropped and counted; the reply to the peer is the same.
MAX_PENDING = 1000
dropped = 0
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:[ \t]*((?:.|\r\n[ \t])*)", re.IGNORECASE | re.MULTILINE)


def message_id_of(head: bytes) -> str:
    """The Message-ID of a header section (RFC 5322 3.6.4) without angle brackets; "" if none.
    Folded lines are unfolded; only the first field counts."""
    m = _MESSAGE_ID.search(head[:256 * 1024])
    if m is None:
        return ""
    text = re.sub(rb"\r\n[ \t]+", b" ", m.group(1)).strip().decode("utf-8", "replace")
    start, end = text.find("<"), text.find(">")
    if 0 <= start < end:
        text = text[start + 1:end]
    return text.strip()[:998]


async def record(store: Trace, events: Sequence[TraceEvent]) -> None:
    """Record events now (for callers without a transaction to carry them); never raises."""
    try:
        await store.trace_add(events)
    except (StoreError, OSError) as exc:
        log.warning("message trace not recorded: %s", exc)
    except Exception:  # noqa: BLE001 - the trace must never cost a message
        log.exception("message trace not recorded")


def record_later(store: Trace, events: Sequence[TraceEvent]) -> None:
    """Record events in the background (a refusal's reply must not wait for the store)."""
    global dropped
    if not events:
        return
    if len(_pending) >= MAX_PENDING:
        dropped += 1
        if dropped % 1000 == 1:
            log.warning("message trace busy: %d refusals not recorded so far", dropped)
        return
    task = asyncio.get_running_loop().create_task(record(store, list(events)))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def settle() -> None:
    """Wait for the events recorded in the background (shutdown, tests)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)
