"""The operator's actions on the outbound queue, shared by `mailwright queue` and the web
interface's /admin/queue pages.

A queue id (the one in `250 2.0.0 Ok: queued as ...`, `Received:` and the logs) names one
message; a message for several destination domains has one entry per domain under that id,
and the actions here take them together.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mailwright.store.api import Queue, QueueEntry


def normalize_queue_id(text: str) -> str | None:
    value = text.strip().upper()
    if not value or len(value) > 64 or not value.isalnum() or not value.isascii():
        return None
    return value


async def entries(store: Queue, queue_id: str) -> list[QueueEntry]:
    """The entries of one message (by its queue id, or an entry's number)."""
    queue_id = queue_id.upper()
    return [e for e in await store.queue_list()
            if (e.queue_id or str(e.id)).upper() == queue_id]


async def delete(store: Queue, queue_id: str) -> list[str]:
    """Drop the message's entries without a bounce; the domains dropped."""
    return [e.domain for e in await entries(store, queue_id) if await store.queue_delete(e.id)]


async def retry(store: Queue, queue_id: str) -> list[str]:
    """Make the message's entries due now; the domains. A node delivering it keeps its lease."""
    return [e.domain for e in await entries(store, queue_id) if await store.queue_retry(e.id)]


def age(created: datetime, now: datetime) -> str:
    seconds = int((now - created).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pending(entry: QueueEntry) -> int:
    """Recipients still to be delivered."""
    return sum(1 for r in entry.recipients if r.status in ("scheduled", "tempfail"))


def header_lines(data: bytes, limit: int = 50) -> list[str]:
    """The message's header section, line by line (for showing an entry)."""
    end = data.find(b"\r\n\r\n")
    header = data if end < 0 else data[:end]
    return header.decode("utf-8", "replace").split("\r\n")[:limit]
