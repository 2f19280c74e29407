"""`mailwright queue list|show ID|flush|delete ID`: the operator's view of the outbound queue.

These commands work on the store directly, so they work whether or not the server runs; a running
server notices a flush at its next poll (a few seconds at most).

ID is the message's queue id, the one the SMTP reply (`250 2.0.0 Ok: queued as FA01BE77D287`),
the `Received:` header and the logs show. A message for several destination domains has one
entry per domain under the same id: `show` shows them all, `delete` drops them all. Deleting an
entry that is being delivered is safe: the delivering node's result is dropped (logged).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from mailwright.cli.common import CLIError, load, with_store
from mailwright.cli.roles import QueueInspect
from mailwright.queue import operator
from mailwright.queue.operator import age, header_lines, normalize_queue_id, pending, when
from mailwright.store.api import QueueEntry


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("queue", parents=[common], help="the outbound queue")
    qsub = s.add_subparsers(dest="action", required=True)
    qsub.add_parser("list", parents=[common], help="one line per queued message and domain")
    x = qsub.add_parser("show", parents=[common], help="everything about one queue entry")
    x.add_argument("id", type=_entry_id)
    qsub.add_parser("flush", parents=[common], help="retry every entry now")
    x = qsub.add_parser("delete", parents=[common], help="drop an entry without a bounce")
    x.add_argument("id", type=_entry_id)
    s.set_defaults(func=cmd_queue)


def _entry_id(text: str) -> str:
    value = normalize_queue_id(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"not a queue id: {text!r}")
    return value


def _line(entry: QueueEntry, now: datetime) -> str:
    due = "now" if entry.next_attempt <= now else when(entry.next_attempt)
    sender = entry.sender or "<>"
    error = f" last_error={entry.last_error!r}" if entry.last_error else ""
    leased = f" leased_by={entry.lease_owner}" if entry.lease_owner else ""
    return (f"{entry.queue_id or entry.id} domain={entry.domain} from={sender} rcpts={pending(entry)}/"
            f"{len(entry.recipients)} age={age(entry.created, now)} attempts={entry.attempts} "
            f"next={due}{leased}{error}")


def cmd_queue(args: argparse.Namespace) -> int:
    config = load(args)
    now = datetime.now(UTC)
    if args.action == "list":
        entries = with_store(config, lambda s: s.queue_list())
        for item in entries:
            print(_line(item, now))
        print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} in the queue")
        return 0
    if args.action == "flush":
        count = with_store(config, lambda s: s.queue_flush())
        print(f"{count} entr{'y' if count == 1 else 'ies'} scheduled for immediate delivery")
        return 0
    if args.action == "delete":
        domains = with_store(config, lambda s: operator.delete(s, args.id))
        if not domains:
            raise CLIError(f"queue delete: no queue entry {args.id}", 1)
        print(f"deleted queue entry {args.id} ({', '.join(domains)})")
        return 0

    async def show(store: QueueInspect) -> tuple[list[QueueEntry], bytes]:
        found = await operator.entries(store, args.id)
        if not found:
            return [], b""
        try:
            data = await store.read_blob(found[0].blob_id)
        except Exception:  # the entry is still worth showing without its content
            data = b""
        return found, data

    entries, data = with_store(config, show)
    if not entries:
        raise CLIError(f"queue show: no queue entry {args.id}", 1)
    for n, entry in enumerate(entries):
        if n:
            print()
        _show(entry, now, data if n == len(entries) - 1 else b"")
    return 0


def _show(entry: QueueEntry, now: datetime, data: bytes) -> None:
    print(f"id: {entry.queue_id or entry.id}")
    print(f"domain: {entry.domain}")
    print(f"sender: {entry.sender or '<>'}")
    print(f"created: {when(entry.created)} (age {age(entry.created, now)})")
    print(f"next attempt: {when(entry.next_attempt)}")
    print(f"attempts: {entry.attempts}")
    print(f"last error: {entry.last_error or '-'}")
    if entry.ret or entry.envid:
        print(f"dsn: ret={entry.ret or '-'} envid={entry.envid or '-'}")
    if entry.extra.get("requiretls") == "1":
        print("requiretls: yes (RFC 8689: verified TLS to a REQUIRETLS server, else bounce)")
    if entry.lease_owner:
        until = when(entry.lease_until) if entry.lease_until else "-"
        print(f"lease: {entry.lease_owner} until {until}")
    print(f"blob: {entry.blob_id}" + (f" ({len(data)} bytes)" if data else ""))
    print("recipients:")
    for r in entry.recipients:
        extra = f" notify={r.notify}" if r.notify else ""
        reply = f" last_reply={r.last_reply!r}" if r.last_reply else ""
        print(f"  {r.address} {r.status}{extra}{reply}")
    if data:
        print("headers:")
        for line in header_lines(data):
            print(f"  {line}")
