"""Maildir and mbox import/export, so people can move in and out.

Import keeps every message byte for byte (LF line ends become CRLF, the store's canonical form),
maps Maildir flags (`:2,DFPRST`) to IMAP flags and Maildir++ folders (`.Sent`, `.A.B`) to
mailboxes. A message that does not look like RFC 5322 is still imported, with a warning:
losing mail because it is malformed is never the right answer.
"""

from __future__ import annotations

import mailbox
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from mailwright.cli.common import CLIError, opened_store
from mailwright.config import Config
from mailwright.delivery.ingest import stage_bytes
from mailwright.store.api import AlreadyExists, Store

_FLAG_OF_LETTER = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
_LETTER_OF_FLAG = {v: k for k, v in _FLAG_OF_LETTER.items()}


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


def _maildir_folders(root: Path) -> Iterator[tuple[str, Path]]:
    yield "INBOX", root
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name.startswith(".") and ((d / "cur").is_dir() or (d / "new").is_dir()):
                yield d.name[1:].replace(".", "/"), d


def _maildir_messages(folder: Path) -> Iterator[tuple[Path, set[str]]]:
    for sub in ("new", "cur"):
        d = folder / sub
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if not f.is_file() or f.name.startswith("."):
                continue
            flags: set[str] = set()
            if ":2," in f.name:
                for letter in f.name.rsplit(":2,", 1)[1]:
                    if letter in _FLAG_OF_LETTER:
                        flags.add(_FLAG_OF_LETTER[letter])
            yield f, flags


async def _mailbox_id(store: Store, account_id: int, name: str) -> int:
    mb = await store.get_mailbox(account_id, name)
    if mb is None:
        try:
            mb = await store.create_mailbox(account_id, name)
        except AlreadyExists:
            mb = await store.get_mailbox(account_id, name)
    assert mb is not None
    return mb.id


def import_mailbox(config: Config, fmt: str, path: Path, user: str) -> int:
    import asyncio

    if not path.exists():
        raise CLIError(f"{path}: no such file or directory", 2)
    if fmt == "maildir" and not (path / "cur").is_dir() and not (path / "new").is_dir():
        raise CLIError(f"{path}: not a Maildir (no cur/ or new/)", 2)

    async def go() -> tuple[int, int]:
        count = warnings = 0
        async with opened_store(config) as store:
            acc = await store.find_account(user)
            if acc is None:
                raise CLIError(f"no such user: {user}", 1)
            items: list[tuple[str, bytes, set[str], datetime | None, str]] = []
            if fmt == "maildir":
                for name, folder in _maildir_folders(path):
                    for f, flags in _maildir_messages(folder):
                        mtime = datetime.fromtimestamp(f.stat().st_mtime, UTC)
                        items.append((name, f.read_bytes(), flags, mtime, str(f)))
            else:
                box = mailbox.mbox(path, create=False)
                for i, msg in enumerate(box):
                    raw = msg.as_bytes()
                    flags = {_FLAG_OF_LETTER[c] for c in msg.get_flags() if c in "RFD"}
                    if "R" in msg.get_flags():
                        flags.add("\\Seen")
                    items.append(("INBOX", raw, flags, None, f"{path}#{i + 1}"))
            for name, raw, flags, date, origin in items:
                reason = looks_malformed(raw)
                if reason:
                    warnings += 1
                    print(f"warning: {origin}: {reason}; imported as is", file=sys.stderr)
                mb_id = await _mailbox_id(store, acc.id, name)
                blob = await stage_bytes(store, raw)
                await store.append(mb_id, blob, flags, date)
                count += 1
        return count, warnings

    count, warnings = asyncio.run(go())
    print(f"imported {count} message(s) for {user}" + (f", {warnings} warning(s)" if warnings else ""))
    return 0


def export_mailbox(config: Config, fmt: str, path: Path, user: str) -> int:
    import asyncio

    async def go() -> int:
        count = 0
        async with opened_store(config) as store:
            acc = await store.find_account(user)
            if acc is None:
                raise CLIError(f"no such user: {user}", 1)
            if fmt == "mbox":
                box = mailbox.mbox(path, create=True)
                box.lock()
            for mb in await store.list_mailboxes(acc.id):
                recs = await store.list_messages(mb.id)
                if fmt == "maildir":
                    folder = path if mb.name == "INBOX" else path / ("." + mb.name.replace("/", "."))
                    for sub in ("cur", "new", "tmp"):
                        (folder / sub).mkdir(parents=True, exist_ok=True)
                for r in recs:
                    raw = await store.read_blob(r.blob_id)
                    if fmt == "maildir":
                        letters = "".join(sorted(_LETTER_OF_FLAG[f] for f in r.flags if f in _LETTER_OF_FLAG))
                        name = f"{int(r.internaldate.timestamp())}.M{r.uid}P{os.getpid()}.mailwright:2,{letters}"
                        target = folder / "cur" / name
                        target.write_bytes(raw)
                        ts = r.internaldate.timestamp()
                        os.utime(target, (ts, ts))
                    elif mb.name == "INBOX":
                        msg = mailbox.mboxMessage(raw.replace(b"\r\n", b"\n"))
                        msg.set_from("MAILER-DAEMON", time.gmtime(r.internaldate.timestamp()))
                        msg.set_flags("".join(c for f, c in (("\\Seen", "R"), ("\\Flagged", "F"), ("\\Answered", "A"), ("\\Draft", "D")) if f in r.flags))
                        box.add(msg)
                    else:
                        continue
                    count += 1
            if fmt == "mbox":
                box.flush()
                box.unlock()
        return count

    count = asyncio.run(go())
    print(f"exported {count} message(s) of {user} to {path}")
    return 0
