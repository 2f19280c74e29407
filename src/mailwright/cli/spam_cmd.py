"""`mailwright spam train|check`: teach the classifier from files, and see how a message scores.

`train ADDRESS --spam PATH... --ham PATH...` reads message files, Maildirs and mbox files and
teaches ADDRESS's model and the server-wide one (a message taught before with the same label is
skipped; with the other label, the old lesson is taken back first). `check FILE` prints
`score S verdict V`, then one line per reason, exactly as delivery would decide for `--user`;
DNS-based tests (block lists, SPF, DKIM, DMARC) run only with `--peer IP`, the client address
the message would have come from.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
from pathlib import Path
from typing import Any

from mailwright.cli.common import CLIError, load, opened_store
from mailwright.config import Config
from mailwright.spam.classifier import sender_keys
from mailwright.spam.report import strip_spam_fields
from mailwright.spam.service import SpamFilter
from mailwright.spam.settings import SpamSettings
from mailwright.spam.trainer import messages_in


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("spam", parents=[common], help="spam filter: train and check")
    ssub = s.add_subparsers(dest="action", required=True)
    t = ssub.add_parser("train", parents=[common],
                        help="teach ADDRESS's classifier (and the server-wide one)",
                        description="Teach the classifier from message files, Maildirs or "
                        "mbox files: --spam PATH... and/or --ham PATH...")  # fmt: skip
    t.add_argument("address")
    t.add_argument("--spam", nargs="+", default=[], metavar="PATH", type=Path)
    t.add_argument("--ham", nargs="+", default=[], metavar="PATH", type=Path)
    t.set_defaults(func=cmd_train)
    c = ssub.add_parser("check", parents=[common], help="score one message and say why",
                        description="Print 'score S verdict V' (ham, junk or reject) and one "
                        "line per reason. DNS-based tests run only with --peer.")  # fmt: skip
    c.add_argument("file", type=Path)
    c.add_argument("--user", help="judge as delivery to this account would")
    c.add_argument("--peer", help="the client address the message came from")
    c.set_defaults(func=cmd_check)


def as_received(raw: bytes) -> bytes:
    """A message file as SMTP would have carried it: no mbox `From ` line, CRLF line ends."""
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _filter(config: Config, store: Any, resolver: Any) -> SpamFilter:
    settings = SpamSettings.from_mapping(config.spam)
    return SpamFilter(settings, store, resolver, config.server.hostname)


def cmd_train(args: argparse.Namespace) -> int:
    if not args.spam and not args.ham:
        raise CLIError("spam train: give --spam PATH... and/or --ham PATH...", 2)
    for path in [*args.spam, *args.ham]:
        if not path.exists():
            raise CLIError(f"{path}: no such file or directory", 2)
    config = load(args)

    async def go() -> tuple[int, int, int]:
        async with opened_store(config) as store:
            account = await store.find_account(args.address.lower())
            if account is None:
                raise CLIError(f"unknown account: {args.address}", 1)
            spam_filter = _filter(config, store, None)
            classifier = spam_filter.classifier
            counts = {"spam": 0, "ham": 0, "known": 0}
            for label, paths in (("spam", args.spam), ("ham", args.ham)):
                for _name, raw in messages_in(paths):
                    raw = as_received(raw)
                    blob_id = hashlib.sha256(raw).hexdigest()
                    analysis = await classifier.analyse(strip_spam_fields(raw)[0])
                    senders = sender_keys(analysis.document, None)
                    if await classifier.learn(account.id, blob_id, label, analysis,
                                              senders=senders):  # fmt: skip
                        counts[label] += 1
                    else:
                        counts["known"] += 1
            return counts["spam"], counts["ham"], counts["known"]

    spam, ham, known = asyncio.run(go())
    print(f"trained {spam} spam and {ham} ham for {args.address.lower()}"
          f" ({known} already known)")  # fmt: skip
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    if args.peer:
        try:
            ipaddress.ip_address(args.peer)
        except ValueError:
            raise CLIError(f"--peer: {args.peer!r} is not an IP address", 2) from None
    try:
        raw = as_received(args.file.read_bytes())
    except OSError as e:
        raise CLIError(f"{args.file}: {e.strerror}", 2) from None
    config = load(args)

    async def go() -> list[str]:
        async with opened_store(config) as store:
            recipients: list[str] = []
            account_ids: list[int] = []
            if args.user:
                account = await store.find_account(args.user.lower())
                if account is None:
                    raise CLIError(f"unknown account: {args.user}", 1)
                recipients, account_ids = [account.address], [account.id]
            resolver = None
            auth = None
            message = strip_spam_fields(raw)[0]
            if args.peer:
                from mailwright.dns.resolver import from_config
                from mailwright.mailauth import verify_inbound

                resolver = from_config(config)
                sender = _return_path(message)
                auth = await verify_inbound(
                    resolver, hostname=config.server.hostname, client_ip=args.peer, helo="",
                    mail_from=sender, message_bytes=message,
                )  # fmt: skip
                message = auth.message
            spam_filter = _filter(config, store, resolver)
            judgement = await spam_filter.judge(
                message, peer_ip=args.peer or "", recipients=recipients,
                account_ids=account_ids, auth=auth,
            )  # fmt: skip
            return judgement.lines()

    for line in asyncio.run(go()):
        print(line)
    return 0


def _return_path(message: bytes) -> str:
    for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[:50]:
        if line.lower().startswith(b"return-path:"):
            return line[12:].strip().strip(b"<>").decode("ascii", "replace")
    return ""
