"""`mailwright trace ID`: where the message with this Message-ID or queue id went.

One line per decision, oldest first: the time (UTC), the decision (accepted, rejected,
filtered, delivered, queued, deferred, relayed, bounced, expired, dsn), the queue id, the
recipient it concerns ("-" for the whole message) and the reason. The same events as the web
administration's /admin/trace page; read from the store, so the server need not run.
Exit 0 when something was found, 1 when the trace knows nothing of ID.
"""

from __future__ import annotations

import argparse

from mailwright.cli.common import CLIError, load, with_store
from mailwright.store.api import TraceEvent


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("trace", parents=[common],
                       help="where the message with this Message-ID or queue id went")
    s.add_argument("id", help="a Message-ID (with or without <>) or a queue id")
    s.set_defaults(func=cmd_trace)


def line(event: TraceEvent) -> str:
    """One event as `trace` prints it (control characters of remote replies made visible)."""
    when = event.at.strftime("%Y-%m-%d %H:%M:%S") if event.at else "-"
    detail = "".join(c if c.isprintable() else "?" for c in event.detail)
    return (f"{when} {event.stage:<9} {event.queue_id or '-'} {event.recipient or '-'}"
            f" {detail}")


def cmd_trace(args: argparse.Namespace) -> int:
    key = str(args.id).strip()
    if not key or len(key) > 1000:
        raise CLIError("trace: give a Message-ID or a queue id", 2)
    config = load(args)
    events = with_store(config, lambda s: s.trace_find(key))
    if not events:
        print(f"nothing is known about {key} (events are kept [retention] trace days)")
        return 1
    mids = sorted({e.message_id for e in events if e.message_id})
    if mids:
        print("message-id " + " ".join(f"<{m}>" for m in mids))
    for event in events:
        print(line(event))
    return 0
