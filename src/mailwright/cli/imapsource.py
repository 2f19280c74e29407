"""`mailwright import imap HOST`: copy an account from a live IMAP server, as imapsync does.

Every selectable mailbox is read with EXAMINE (read-only, so the source's \\Seen flags do not
change), then `UID FETCH (FLAGS INTERNALDATE RFC822.SIZE)` for the list and
`UID FETCH (BODY.PEEK[])` in batches of at most about 8 MB for the content (RFC 9051 6.4.5).
Mailbox names are decoded from modified UTF-7 (RFC 3501 5.1.3) and the server's hierarchy
delimiter becomes `/`; a mailbox with a special-use attribute (RFC 6154) lands in the local
mailbox with the same use (a server's `Sent Items` becomes `Sent`). \\Recent is not a flag
that can be set (RFC 3501 2.3.2) and is dropped; keywords are kept.

The password comes from `--password-stdin`, `$MAILWRIGHT_IMAP_PASSWORD` or a prompt, never
from the command line (where `ps` would show it).
"""

from __future__ import annotations

import argparse
import getpass
import imaplib
import os
import re
import ssl
import sys
from collections.abc import Iterator
from datetime import datetime

from mailwright.cli.common import CLIError, load
from mailwright.cli.mailfiles import SourceMessage
from mailwright.cli.migrate import Importer, _address, _report, run_import
from mailwright.proto.imap import mutf7
from mailwright.store.api import SPECIAL_USES

BATCH_BYTES = 8 * 1024 * 1024
BATCH_MESSAGES = 200
_LIST = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"(?:\\.|[^"\\])*") ?(?P<name>.*)$', re.I)
_FETCH_UID = re.compile(rb"UID (\d+)", re.I)
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)", re.I)
_FETCH_DATE = re.compile(rb'INTERNALDATE "([^"]+)"', re.I)
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)", re.I)


class ImapSourceError(CLIError):
    pass


def _unquote(s: bytes) -> bytes:
    s = s.strip()
    if len(s) >= 2 and s[:1] == b'"' and s[-1:] == b'"':
        return re.sub(rb"\\(.)", rb"\1", s[1:-1])
    return s


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSource:
    def __init__(self, host: str, port: int, login: str, password: str, tls: str,
                 context: ssl.SSLContext | None, exclude: list[str]) -> None:
        self.host = host
        self.exclude = set(exclude)
        try:
            if tls == "implicit":
                self.imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=context,
                                                            timeout=120)
            else:
                self.imap = imaplib.IMAP4(host, port, timeout=120)
                if tls == "starttls":
                    self.imap.starttls(context)
            self.imap.login(login, password)
        except (OSError, imaplib.IMAP4.error) as e:
            raise ImapSourceError(f"{host}:{port}: {e}", 1) from None

    def close(self) -> None:
        try:
            self.imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass

    def _ok(self, what: str, typ: str, data: list[object]) -> list[object]:
        if typ != "OK":
            raise ImapSourceError(f"{self.host}: {what}: {data!r}", 1)
        return data

    def mailboxes(self) -> list[tuple[str, str, str | None]]:
        """(name as the server spells it, local name, special use) for every selectable one."""
        typ, data = self.imap.list()
        out: list[tuple[str, str, str | None]] = []
        for item in self._ok("LIST", typ, list(data)):
            if item is None:
                continue
            if isinstance(item, tuple):  # the name came as a literal
                line, name_raw = item[0], item[1]
            else:
                assert isinstance(item, bytes)
                line, name_raw = item, None
            m = _LIST.match(line)
            if m is None:
                continue
            attrs = m.group("attrs").decode("ascii", "replace").split()
            if any(a.lower() in ("\\noselect", "\\nonexistent") for a in attrs):
                continue
            raw = name_raw if name_raw is not None else _unquote(m.group("name"))
            wire = raw.decode("utf-8", "replace")
            if wire in self.exclude:
                continue
            try:
                text = mutf7.decode(wire)
            except mutf7.MUTF7Error:
                text = wire
            delim = m.group("delim")
            if delim.upper() != b"NIL":
                d = _unquote(delim).decode("ascii", "replace")
                if d and d != "/":
                    text = "/".join(p.replace("/", "_") for p in text.split(d))
            if text.upper() == "INBOX":
                text = "INBOX"
            uses = {u.lower(): u for u in SPECIAL_USES}  # attributes are case-insensitive
            use = next((uses[a.lower()] for a in attrs if a.lower() in uses), None)
            out.append((wire, text, use))
        return out

    def examine(self, wire: str) -> list[tuple[int, frozenset[str], datetime | None, int]]:
        """(uid, flags, internal date, size) of every message in the mailbox."""
        typ, data = self.imap.select(_quote(wire), readonly=True)
        self._ok(f"EXAMINE {wire}", typ, list(data))
        if int(data[0] or 0) == 0:
            return []
        typ, data = self.imap.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
        out = []
        for item in self._ok(f"FETCH in {wire}", typ, list(data)):
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid = _FETCH_UID.search(line)
            if uid is None:
                continue
            fl = _FETCH_FLAGS.search(line)
            flags = frozenset(f for f in (fl.group(1).decode("utf-8", "replace").split() if fl else [])
                              if f.lower() != "\\recent")
            dm = _FETCH_DATE.search(line)
            date = None
            if dm is not None:
                try:
                    date = datetime.strptime(dm.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")
                except ValueError:
                    date = None
            sm = _FETCH_SIZE.search(line)
            out.append((int(uid.group(1)), flags, date, int(sm.group(1)) if sm else 0))
        out.sort(key=lambda t: t[0])
        return out

    def bodies(self, uids: list[int]) -> dict[int, bytes]:
        typ, data = self.imap.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        got: dict[int, bytes] = {}
        items = self._ok("FETCH BODY", typ, list(data))
        for i, item in enumerate(items):
            if not isinstance(item, tuple):
                continue
            head, body = item[0], item[1]
            m = _FETCH_UID.search(head)
            after = items[i + 1] if i + 1 < len(items) else None
            if m is None and isinstance(after, bytes):
                m = _FETCH_UID.search(after)  # the UID came after the literal
            if m is not None and isinstance(body, bytes):
                got[int(m.group(1))] = body
        return got


def _batches(listing: list[tuple[int, frozenset[str], datetime | None, int]]
             ) -> Iterator[list[tuple[int, frozenset[str], datetime | None, int]]]:
    batch: list[tuple[int, frozenset[str], datetime | None, int]] = []
    size = 0
    for entry in listing:
        if batch and (size + entry[3] > BATCH_BYTES or len(batch) >= BATCH_MESSAGES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry[3]
    if batch:
        yield batch


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get("MAILWRIGHT_IMAP_PASSWORD"):
        password = os.environ["MAILWRIGHT_IMAP_PASSWORD"]
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.login or args.user} on {args.path}: ")
    else:
        raise CLIError("no terminal to ask for the IMAP password: use --password-stdin "
                       "or set MAILWRIGHT_IMAP_PASSWORD", 2)
    if not password:
        raise CLIError("empty password", 2)
    return password


def _context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls == "none":
        return None
    ctx = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else (
        ssl.create_default_context())
    if args.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def cmd_import_imap(args: argparse.Namespace) -> int:
    user = _address(args.user)
    port = args.port or (993 if args.tls == "implicit" else 143)
    if args.ca_file and not os.path.exists(args.ca_file):
        raise CLIError(f"--ca-file: {args.ca_file} does not exist", 2)
    config = load(args)
    if args.tls == "none" and args.path not in ("localhost", "127.0.0.1", "::1"):
        print(f"warning: --tls none sends the password to {args.path} in clear",
              file=sys.stderr)
    password = _password(args)
    src = ImapSource(args.path, port, args.login or user, password, args.tls, _context(args),
                     args.exclude)
    try:
        boxes = src.mailboxes()
        listings = [(wire, name, use, src.examine(wire)) for wire, name, use in boxes]

        def messages(imp: Importer) -> Iterator[SourceMessage]:
            for wire, name, _use, listing in listings:
                if not listing:
                    continue
                src.examine(wire)
                for batch in _batches(listing):
                    got = src.bodies([uid for uid, *_ in batch])
                    for uid, flags, date, _size in batch:
                        if uid not in got:  # expunged meanwhile
                            continue
                        yield SourceMessage(name, got[uid], flags, date,
                                            f"{args.path}/{wire}/{uid}")

        res = run_import(
            config, user, sum(len(lst) for *_, lst in listings), messages,
            allow_duplicates=args.allow_duplicates,
            mailboxes=_local_names(boxes),
        )
    finally:
        src.close()
    _report(res, user)
    return 0


def _local_names(boxes: list[tuple[str, str, str | None]]) -> list[tuple[str, str | None]]:
    return [(name, use) for _, name, use in boxes]
