"""`mailwright import|export`: moving mail in and out without losing or changing any of it.

Sources and targets: a Maildir++ tree, mboxrd files, and (import only) a live IMAP server.
Every folder moves, with its flags, keywords and internal dates (formats: `cli.mailfiles`;
IMAP: `cli.imapsource`). A message that does not look like RFC 5322 is still imported, with a
warning: losing mail because it is malformed is never the right answer.

Re-importing is idempotent: a message whose exact content is already in the target mailbox is
skipped, as many times as it is there (so a mailbox that really holds two copies keeps two).
`--allow-duplicates` turns that off.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mailwright.cli.common import CLIError, load, opened_store
from mailwright.cli.mailfiles import (
    MaildirWriter,
    SourceMessage,
    canonical,
    count_maildir,
    count_mbox,
    maildir_folders,
    mbox_entry,
    mbox_file_path,
    mbox_files,
    read_maildir,
    read_mbox,
)
from mailwright.cli.progress import Progress, progress
from mailwright.cli.roles import Importing
from mailwright.config import Config
from mailwright.delivery.ingest import stage_bytes
from mailwright.store.api import (
    Account,
    AccountLookup,
    AlreadyExists,
    AppendItem,
    StagedBlob,
)


def looks_malformed(raw: bytes) -> str | None:
    """A reason to warn about, or None. Only a warning: the message is imported anyway."""
    if not raw.strip():
        return "empty message"
    if b"\x00" in raw:
        return "contains NUL bytes"
    first = raw.split(b"\n", 1)[0]
    if b":" not in first or first[:1] in (b" ", b"\t"):
        return "does not start with a header field"
    if b"\n\n" not in raw and b"\r\n\r\n" not in raw:
        return "no empty line between header and body"
    return None


# --- import --------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0  # already there (re-import)
    warnings: int = 0
    mailboxes: set[str] = field(default_factory=set)


# Messages staged ahead of their append: each staging is an fsync of its own, so running a few
# at once keeps the disk busy instead of the importer waiting. Bounded in count and in bytes.
# Staged messages are then appended in batches of the same size, one transaction each.
WINDOW_MESSAGES = 32
WINDOW_BYTES = 64 * 1024 * 1024


class Importer:
    """Appends source messages to one account, creating mailboxes as they come.

    Messages are staged concurrently (a bounded window) and appended in source order, a batch
    of consecutive messages of one mailbox per transaction (`Messages.append_many`), so UIDs follow
    the source and a crash leaves whole batches: running the import again completes it.
    """

    def __init__(self, store: Importing, account: Account, *, allow_duplicates: bool,
                 bar: Progress) -> None:
        self.store = store
        self.account = account
        self.allow_duplicates = allow_duplicates
        self.bar = bar
        self.result = ImportResult()
        self._boxes: dict[str, tuple[int, Counter[str]]] = {}
        self._staging: deque[tuple[asyncio.Task[StagedBlob], int, frozenset[str],
                                   datetime | None, int]] = deque()
        self._staging_bytes = 0
        self._batch: list[AppendItem] = []
        self._batch_bytes = 0
        self._batch_mailbox = 0

    async def mailbox(self, name: str, special_use: str | None = None) -> tuple[int, Counter[str]]:
        """The mailbox's id and how many times each content is already in it."""
        if name not in self._boxes:
            mb = await self.store.get_mailbox(self.account.id, name)
            if mb is None and special_use:
                # RFC 6154: the source's `Sent Items` is our `Sent`
                mb = next((m for m in await self.store.list_mailboxes(self.account.id)
                           if m.special_use == special_use), None)
            if mb is None:
                try:
                    mb = await self.store.create_mailbox(self.account.id, name, special_use)
                except AlreadyExists:
                    mb = await self.store.get_mailbox(self.account.id, name)
            if mb is None:
                raise CLIError(f"cannot create mailbox {name!r}", 1)
            present: Counter[str] = Counter(r.blob_id for r in await self.store.list_messages(mb.id))
            self._boxes[name] = (mb.id, present)
            self.result.mailboxes.add(mb.name)
        return self._boxes[name]

    async def add(self, msg: SourceMessage) -> None:
        mb_id, present = await self.mailbox(msg.mailbox)
        blob_id = hashlib.sha256(canonical(msg.raw)).hexdigest()
        if not self.allow_duplicates and present[blob_id] > 0:
            present[blob_id] -= 1  # one copy there accounts for one copy in the source
            self.result.skipped += 1
            self.bar.update()
            return
        reason = looks_malformed(msg.raw)
        if reason:
            self.result.warnings += 1
            self.bar.write(f"warning: {msg.origin}: {reason}; imported as is")
        task = asyncio.create_task(stage_bytes(self.store, msg.raw))
        self._staging.append((task, mb_id, msg.flags, msg.internaldate, len(msg.raw)))
        self._staging_bytes += len(msg.raw)
        while len(self._staging) > WINDOW_MESSAGES or self._staging_bytes > WINDOW_BYTES:
            await self._append_oldest()

    async def _append_oldest(self) -> None:
        task, mb_id, flags, date, size = self._staging.popleft()
        self._staging_bytes -= size
        blob = await task
        if self._batch and self._batch_mailbox != mb_id:
            await self._flush()
        self._batch_mailbox = mb_id
        self._batch.append(AppendItem(blob, tuple(sorted(flags)), date))
        self._batch_bytes += blob.size
        if len(self._batch) >= WINDOW_MESSAGES or self._batch_bytes >= WINDOW_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            await self.store.append_many(self._batch_mailbox, batch)
            self.result.imported += len(batch)
            self.bar.update(len(batch))

    async def finish(self) -> None:
        """Wait for every message in flight."""
        while self._staging:
            await self._append_oldest()
        await self._flush()

    async def abort(self) -> None:
        """After a failure: stop what is in flight (staged files left behind are collected as
        orphans by the store's garbage collector)."""
        tasks = [t for t, *_ in self._staging]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._staging.clear()
        self._batch = []


async def _account(store: AccountLookup, user: str) -> Account:
    acc = await store.find_account(user)
    if acc is None:
        raise CLIError(f"no such user: {user}", 1)
    return acc


def run_import(
    config: Config,
    user: str,
    total: int | None,
    messages: Callable[[Importer], Iterable[SourceMessage]],
    *,
    allow_duplicates: bool,
    mailboxes: Iterable[tuple[str, str | None]] = (),
) -> ImportResult:
    """Import `messages(importer)` into USER's account; `mailboxes` are created even if empty."""

    async def go() -> ImportResult:
        async with opened_store(config) as store:
            acc = await _account(store, user)
            with progress(total, f"import {user}") as bar:
                imp = Importer(store, acc, allow_duplicates=allow_duplicates, bar=bar)
                try:
                    for name, special_use in mailboxes:
                        await imp.mailbox(name, special_use)
                    for msg in messages(imp):
                        await imp.add(msg)
                    await imp.finish()
                except BaseException:
                    await imp.abort()
                    raise
                return imp.result

    return asyncio.run(go())


def _report(res: ImportResult, user: str) -> None:
    line = f"imported {res.imported} message(s) into {len(res.mailboxes)} mailbox(es) of {user}"
    if res.skipped:
        line += f", {res.skipped} already there"
    if res.warnings:
        line += f", {res.warnings} warning(s)"
    print(line)


def cmd_import(args: argparse.Namespace) -> int:
    if args.mailbox and args.format != "mbox":
        raise CLIError("--mailbox is for one mbox file; Maildir and IMAP bring every folder", 2)
    imap_only = ("login", "port", "ca_file", "insecure", "password_stdin", "exclude")
    if args.format != "imap" and (any(getattr(args, k) for k in imap_only) or args.tls != "implicit"):
        raise CLIError("--login, --port, --tls, --ca-file, --insecure, --password-stdin and "
                       "--exclude are for `import imap`", 2)
    if args.format == "imap":
        from mailwright.cli.imapsource import cmd_import_imap

        return cmd_import_imap(args)
    path = Path(args.path)
    if not path.exists():
        raise CLIError(f"{path}: no such file or directory", 2)
    user = _address(args.user)
    config = load(args)
    if args.format == "maildir":
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise CLIError(f"{path}: not a Maildir (no cur/ or new/)", 2)
        folders = [(name, None) for name, _ in maildir_folders(path)]
        res = run_import(config, user, count_maildir(path), lambda _imp: read_maildir(path),
                         allow_duplicates=args.allow_duplicates, mailboxes=folders)
    else:
        if path.is_dir():
            files = mbox_files(path)
            if not files:
                raise CLIError(f"{path}: no NAME.mbox files in this directory", 2)
        else:
            files = [(args.mailbox or "INBOX", path)]

        def messages(_imp: Importer) -> Iterator[SourceMessage]:
            for name, f in files:
                with open(f, "rb") as fh:
                    yield from read_mbox(fh, name, str(f))

        res = run_import(config, user, sum(count_mbox(f) for _, f in files), messages,
                         allow_duplicates=args.allow_duplicates,
                         mailboxes=[(name, None) for name, _ in files])
    _report(res, user)
    return 0


# --- export --------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    path = Path(args.path)
    user = _address(args.user)
    config = load(args)

    async def go() -> tuple[int, int]:
        count = boxes = 0
        async with opened_store(config) as store:
            acc = await _account(store, user)
            mailboxes = await store.list_mailboxes(acc.id)
            if args.mailbox:
                mailboxes = [mb for mb in mailboxes if mb.name == args.mailbox]
                if not mailboxes:
                    raise CLIError(f"{user} has no mailbox {args.mailbox!r}", 1)
            listed = [(mb, await store.list_messages(mb.id)) for mb in mailboxes]
            with progress(sum(len(r) for _, r in listed), f"export {user}") as bar:
                for mb, recs in listed:
                    boxes += 1
                    if args.format == "maildir":
                        w = MaildirWriter(path, mb.name, mb.uidvalidity, args.crlf)
                        # each file is fsync'ed: a few at once in threads, a bounded window
                        writing: deque[asyncio.Future[None]] = deque()
                        for r in recs:
                            f = w.place(r.uid, r.flags, r.internaldate)
                            raw = await store.read_blob(r.blob_id)
                            writing.append(asyncio.ensure_future(asyncio.to_thread(f.write, raw)))
                            while len(writing) > 8:
                                await writing.popleft()
                                count += 1
                                bar.update()
                        while writing:
                            await writing.popleft()
                            count += 1
                            bar.update()
                        w.finish()
                        for kw in sorted(w.warned):
                            bar.write(f"warning: {mb.name}: more than 26 keywords, {kw} not kept")
                        continue
                    target = path if args.mailbox else mbox_file_path(path, mb.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    tmp = target.with_name(target.name + ".tmp")
                    with open(tmp, "wb") as fh:
                        for r in recs:
                            raw = await store.read_blob(r.blob_id)
                            fh.write(mbox_entry(raw, r.flags, r.internaldate, args.crlf))
                            count += 1
                            bar.update()
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, target)  # a second export replaces the file, never appends
        return count, boxes

    count, boxes = asyncio.run(go())
    print(f"exported {count} message(s) in {boxes} mailbox(es) of {user} to {path}")
    return 0


# --- parser --------------------------------------------------------------------------------------


def _address(text: str) -> str:
    from mailwright.address import AddressError, parse_address

    try:
        return str(parse_address(text))
    except AddressError as e:
        raise CLIError(str(e), 2) from None


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Registers both `import` and `export`."""
    s = sub.add_parser(
        "import", parents=[common], help="import a Maildir, mbox files or an IMAP account",
        description="Import every folder with its flags, keywords and internal dates. "
        "Messages already in the target mailbox are skipped, so running it again is safe.")
    s.add_argument("format", choices=["maildir", "mbox", "imap"])
    s.add_argument("path", metavar="PATH|HOST",
                   help="Maildir root; mbox file or a directory of NAME.mbox files; IMAP host")
    s.add_argument("--user", required=True, help="the local account to import into")
    s.add_argument("--mailbox", help="mbox file: the mailbox to import into (default INBOX)")
    s.add_argument("--allow-duplicates", action="store_true",
                   help="import messages even if the same content is already in the mailbox")
    g = s.add_argument_group("IMAP source")
    g.add_argument("--login", help="login name on the IMAP server (default: --user)")
    g.add_argument("--port", type=int, help="default 993 (implicit TLS) or 143")
    g.add_argument("--tls", choices=["implicit", "starttls", "none"], default="implicit")
    g.add_argument("--ca-file", help="CA certificates to verify the server with")
    g.add_argument("--insecure", action="store_true", help="do not verify the certificate")
    g.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input "
                   "(else $MAILWRIGHT_IMAP_PASSWORD, else a prompt)")
    g.add_argument("--exclude", action="append", default=[], metavar="MAILBOX",
                   help="a remote mailbox to leave out (repeatable)")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser(
        "export", parents=[common], help="export to a Maildir or mbox files",
        description="Export every mailbox: a Maildir++ tree, or a directory of NAME.mbox files "
        "(one mboxrd file per mailbox; with --mailbox, PATH is that one file).")
    s.add_argument("format", choices=["maildir", "mbox"])
    s.add_argument("path")
    s.add_argument("--user", required=True)
    s.add_argument("--mailbox", help="export only this mailbox")
    s.add_argument("--crlf", action="store_true",
                   help="keep the stored CRLF line ends (default: LF, as files on Unix have)")
    s.set_defaults(func=cmd_export)
