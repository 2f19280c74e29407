"""Maildir++ and mboxrd, read and written flag- and byte-exact, for `import` and `export`.

Both formats are read lazily (one message in memory at a time) into `SourceMessage`s and
written from the store's records. What each format can say, and how it maps to IMAP:

Maildir (https://cr.yp.to/proto/maildir.html, Maildir++ folders as Dovecot lays them out):
  * flags are the letters after `:2,`: D \\Draft, F \\Flagged, P $Forwarded, R \\Answered,
    S \\Seen, T \\Deleted; lower-case letters are keywords numbered in the folder's
    `dovecot-keywords` file (`0 $Label1`), as Dovecot does;
  * the internal date is the file's modification time;
  * folder `a/b` is the directory `.a.b`, each level in modified UTF-7 (RFC 3501 5.1.3), a
    literal `.` or `%` inside a level written `%2E` / `%25`.

mboxrd (one file per mailbox):
  * a message starts at a line `From SENDER DATE` at the start of the file, after an empty
    line, or anywhere when the line has the date a From_ line has; the empty line before it
    belongs to the separator, not to the message;
  * body lines matching `>*From ` get one more `>` when written and lose one when read, so
    every line survives the round trip (mboxo and mboxcl formats lose `>From ` lines);
  * flags travel in `Status:` (R \\Seen), `X-Status:` (A \\Answered, F \\Flagged,
    T \\Draft, D \\Deleted) and `X-Keywords:`; these fields, and Dovecot's `X-UID`, `X-IMAP`,
    `X-IMAPbase`, are mbox bookkeeping: import takes them out of the message and export puts
    them back, last in the header, and only when there is a flag to record;
  * the internal date is the date of the `From ` line (UTC).

Line ends: the store keeps CRLF (RFC 5322 2.1); files are written with LF unless `crlf=True`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from mailwright.proto.imap import mutf7

MAILDIR_FLAG_OF_LETTER = {
    "D": "\\Draft", "F": "\\Flagged", "P": "$Forwarded", "R": "\\Answered", "S": "\\Seen",
    "T": "\\Deleted",
}
MAILDIR_LETTER_OF_FLAG = {v: k for k, v in MAILDIR_FLAG_OF_LETTER.items()}
MBOX_XSTATUS = (("\\Answered", "A"), ("\\Flagged", "F"), ("\\Draft", "T"), ("\\Deleted", "D"))
MBOX_META_FIELDS = (b"status", b"x-status", b"x-keywords", b"x-uid", b"x-imap", b"x-imapbase")
SYSTEM = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
_BARE_LF = re.compile(rb"(?<!\r)\n")
_FROM_QUOTED = re.compile(rb"^>*From ")
_FROM_LINE_START = re.compile(rb"^(?=>*From )", re.MULTILINE)
_ASCTIME = re.compile(rb"([A-Z][a-z]{2}) +(\d{1,2}) +(\d{1,2}):(\d\d)(?::(\d\d))? +(\d{4})")


@dataclass(frozen=True, slots=True)
class SourceMessage:
    """One message on its way into the store."""

    mailbox: str
    raw: bytes
    flags: frozenset[str]
    internaldate: datetime | None
    origin: str  # file or position, for warnings


def canonical(raw: bytes) -> bytes:
    """The bytes the store will keep: bare LF made CRLF, as the blob writer does."""
    return _BARE_LF.sub(b"\r\n", raw)


def to_file_line_ends(raw: bytes, crlf: bool) -> bytes:
    return raw if crlf else raw.replace(b"\r\n", b"\n")


# --- Maildir -------------------------------------------------------------------------------------


def _decode_level(level: str) -> str:
    try:
        text = mutf7.decode(level)
    except mutf7.MUTF7Error:
        text = level  # not written by an IMAP server: take the name as it is
    return text.replace("%2E", ".").replace("%25", "%")


def _encode_level(level: str) -> str:
    return mutf7.encode(level.replace("%", "%25").replace(".", "%2E"))


def maildir_folder_path(root: Path, mailbox: str) -> Path:
    if mailbox == "INBOX":
        return root
    return root / ("." + ".".join(_encode_level(p) for p in mailbox.split("/")))


def maildir_folders(root: Path) -> list[tuple[str, Path]]:
    """(mailbox name, folder directory), INBOX first."""
    out = [("INBOX", root)]
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name.startswith(".") and d.name not in (".", "..") and (
            (d / "cur").is_dir() or (d / "new").is_dir()
        ):
            out.append(("/".join(_decode_level(p) for p in d.name[1:].split(".")), d))
    return out


def _keywords_file(folder: Path) -> dict[str, str]:
    """Dovecot's `dovecot-keywords`: keyword number -> name; letter a is 0."""
    out: dict[str, str] = {}
    f = folder / "dovecot-keywords"
    if f.is_file():
        for line in f.read_text("utf-8", "replace").splitlines():
            num, _, name = line.partition(" ")
            if num.isdigit() and name and int(num) < 26:
                out[chr(ord("a") + int(num))] = name
    return out


def maildir_files(folder: Path) -> list[Path]:
    """The folder's messages in delivery order: names start with the delivery time."""
    files: list[Path] = []
    for sub in ("new", "cur"):
        d = folder / sub
        if d.is_dir():
            files += [f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")]
    return sorted(files, key=lambda f: f.name)


def maildir_flags(name: str, keywords: dict[str, str]) -> frozenset[str]:
    flags: set[str] = set()
    if ":2," in name:
        for letter in name.rsplit(":2,", 1)[1]:
            if letter in MAILDIR_FLAG_OF_LETTER:
                flags.add(MAILDIR_FLAG_OF_LETTER[letter])
            elif letter in keywords:
                flags.add(keywords[letter])
    return frozenset(flags)


def read_maildir(root: Path) -> Iterator[SourceMessage]:
    for mailbox, folder in maildir_folders(root):
        keywords = _keywords_file(folder)
        for f in maildir_files(folder):
            mtime = datetime.fromtimestamp(f.stat().st_mtime, UTC)
            yield SourceMessage(mailbox, f.read_bytes(), maildir_flags(f.name, keywords), mtime,
                                str(f))


def count_maildir(root: Path) -> int:
    return sum(len(maildir_files(folder)) for _, folder in maildir_folders(root))


@dataclass(frozen=True, slots=True)
class MaildirFile:
    tmp: Path
    target: Path
    replaces: Path | None  # the file of an earlier export of this message, other flags
    timestamp: float
    crlf: bool

    def write(self, raw: bytes) -> None:
        """Write in tmp/, fsync, date it, then rename into cur/ (the Maildir way: a reader never
        sees a partial file)."""
        with open(self.tmp, "wb") as fh:
            fh.write(to_file_line_ends(raw, self.crlf))
            fh.flush()
            os.fsync(fh.fileno())
        os.utime(self.tmp, (self.timestamp, self.timestamp))
        os.replace(self.tmp, self.target)
        if self.replaces is not None and self.replaces != self.target:
            self.replaces.unlink(missing_ok=True)


class MaildirWriter:
    """Writes one folder. File names are stable (`TIME.MUIDVUIDVALIDITY.mailwright:2,FLAGS`),
    so a second export to the same place replaces files instead of adding copies."""

    def __init__(self, root: Path, mailbox: str, uidvalidity: int, crlf: bool) -> None:
        self.folder = maildir_folder_path(root, mailbox)
        for sub in ("cur", "new", "tmp"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.uidvalidity = uidvalidity
        self.crlf = crlf
        known = _keywords_file(self.folder)
        self.keywords: dict[str, str] = {name: letter for letter, name in known.items()}
        self.existing: dict[str, Path] = {}
        for f in maildir_files(self.folder):
            self.existing[f.name.split(":", 1)[0]] = f
        self.warned: set[str] = set()

    def _letter(self, keyword: str) -> str | None:
        if keyword not in self.keywords:
            if len(self.keywords) >= 26:
                self.warned.add(keyword)
                return None
            self.keywords[keyword] = chr(ord("a") + len(self.keywords))
        return self.keywords[keyword]

    def add(self, uid: int, raw: bytes, flags: Iterable[str], internaldate: datetime) -> None:
        self.place(uid, flags, internaldate).write(raw)

    def place(self, uid: int, flags: Iterable[str], internaldate: datetime) -> MaildirFile:
        """Name the message's file (keyword letters are numbered here, in call order); the
        returned `MaildirFile.write` touches only that file, so writes may run in threads."""
        letters: list[str] = []
        for f in sorted(flags):  # keywords numbered in a stable order
            if f in MAILDIR_LETTER_OF_FLAG:
                letters.append(MAILDIR_LETTER_OF_FLAG[f])
            elif not f.startswith("\\"):
                letter = self._letter(f)
                if letter:
                    letters.append(letter)
        ts = internaldate.timestamp()
        base = f"{int(ts)}.M{uid}V{self.uidvalidity}.mailwright"
        target = self.folder / "cur" / f"{base}:2,{''.join(sorted(letters))}"
        old = self.existing.pop(base, None)
        return MaildirFile(self.folder / "tmp" / base, target, old, ts, self.crlf)

    def finish(self) -> None:
        if self.keywords:
            lines = sorted((ord(letter) - ord("a"), name) for name, letter in self.keywords.items())
            (self.folder / "dovecot-keywords").write_text(
                "".join(f"{n} {name}\n" for n, name in lines), "utf-8")


# --- mboxrd --------------------------------------------------------------------------------------


def _is_blank(line: bytes) -> bool:
    return line in (b"\n", b"\r\n")


def _is_separator(line: bytes, previous_blank: bool) -> bool:
    """A `From ` line starts a message after an empty line, or anywhere when it carries a
    date as From_ lines do (some writers leave out the empty line; body lines that start with
    `From ` are quoted by every mbox writer)."""
    return line.startswith(b"From ") and (previous_blank or _ASCTIME.search(line) is not None)


def _from_line_date(line: bytes) -> datetime | None:
    m = _ASCTIME.search(line)
    if m is None:
        return None
    try:
        mon, day, hh, mm, ss, year = m.groups()
        t = time.strptime(
            f"{mon.decode()} {int(day)} {int(hh)}:{mm.decode()}:{(ss or b'00').decode()} {year.decode()}",
            "%b %d %H:%M:%S %Y")
    except ValueError:
        return None
    return datetime(*t[:6], tzinfo=UTC)


def _split_meta(lines: list[bytes]) -> tuple[list[bytes], frozenset[str]]:
    """Take the mbox bookkeeping fields out of the header; return the message and its flags."""
    flags: set[str] = set()
    out: list[bytes] = []
    in_header = True
    skipping = False
    for line in lines:
        if in_header:
            if _is_blank(line):
                in_header = False
            elif line[:1] in (b" ", b"\t") and skipping:
                continue
            else:
                name, sep, value = line.partition(b":")
                skipping = bool(sep) and name.strip().lower() in MBOX_META_FIELDS
                if skipping:
                    key = name.strip().lower()
                    v = value.strip().decode("ascii", "replace")
                    if key == b"status" and "R" in v:
                        flags.add("\\Seen")
                    elif key == b"x-status":
                        flags.update(f for f, c in MBOX_XSTATUS if c in v)
                    elif key == b"x-keywords":
                        flags.update(k for k in re.split(r"[\s,]+", v) if k and not k.startswith("\\"))
                    continue
        out.append(line)
    return out, frozenset(flags)


def _message(lines: list[bytes], mailbox: str, date: datetime | None, origin: str) -> SourceMessage:
    if lines and _is_blank(lines[-1]):
        lines.pop()  # the empty line that belongs to the next separator
    lines = [line[1:] if _FROM_QUOTED.match(line) and line.startswith(b">") else line
             for line in lines]
    body, flags = _split_meta(lines)
    return SourceMessage(mailbox, b"".join(body), flags, date, origin)


def read_mbox(fh: BinaryIO, mailbox: str, name: str) -> Iterator[SourceMessage]:
    lines: list[bytes] | None = None
    date: datetime | None = None
    previous_blank = True
    n = 0
    for line in fh:
        if _is_separator(line, previous_blank):
            if lines is not None:
                yield _message(lines, mailbox, date, f"{name}#{n}")
            n += 1
            lines, date = [], _from_line_date(line)
        elif lines is not None:
            lines.append(line)
        # text before the first separator is not a message; it is ignored
        previous_blank = _is_blank(line)
    if lines is not None:
        yield _message(lines, mailbox, date, f"{name}#{n}")


def count_mbox(path: Path) -> int:
    n = 0
    previous_blank = True
    with open(path, "rb") as fh:
        for line in fh:
            if _is_separator(line, previous_blank):
                n += 1
            previous_blank = _is_blank(line)
    return n


def mbox_files(root: Path) -> list[tuple[str, Path]]:
    """A directory written by `export mbox`: (mailbox, file) for each `NAME.mbox` below it."""
    out = []
    for f in sorted(root.rglob("*.mbox")):
        if f.is_file():
            out.append((f.relative_to(root).with_suffix("").as_posix(), f))
    return out


def mbox_file_path(root: Path, mailbox: str) -> Path:
    return root.joinpath(*mailbox.split("/")).with_name(mailbox.split("/")[-1] + ".mbox")


_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<([^<>\s]*)>", re.IGNORECASE | re.MULTILINE)


def mbox_entry(raw: bytes, flags: Iterable[str], internaldate: datetime, crlf: bool) -> bytes:
    """One message as written to an mboxrd file, separator line included."""
    nl = b"\r\n" if crlf else b"\n"
    data = raw.replace(b"\r\n", b"\n")
    head_end = data.find(b"\n\n")
    header, body = (data, b"") if head_end < 0 else (data[: head_end + 1], data[head_end + 1 :])
    rp = _RETURN_PATH.search(header)
    sender = (rp.group(1) if rp and rp.group(1) else b"MAILER-DAEMON").decode("ascii", "replace")
    fl = set(flags)
    meta = b""
    if "\\Seen" in fl:
        meta += b"Status: RO\n"
    xs = "".join(c for f, c in MBOX_XSTATUS if f in fl)
    if xs:
        meta += f"X-Status: {xs}\n".encode()
    kws = sorted(f for f in fl if not f.startswith("\\"))
    if kws:
        meta += ("X-Keywords: " + " ".join(kws) + "\n").encode()
    if meta:
        if head_end < 0 and not header.endswith(b"\n"):
            header += b"\n"
        header += meta
    data = header + body
    if not data.endswith(b"\n"):
        data += b"\n"
    # mboxrd quoting by LF-ended lines, the lines read_mbox splits (bytes.splitlines would also
    # split at a lone CR, and a quoted `From ` after one would keep its `>` on import)
    quoted = _FROM_LINE_START.sub(b">", data)
    t = time.gmtime(internaldate.timestamp())
    stamp = time.strftime("%a %b ", t) + f"{t.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", t)
    out = f"From {sender} {stamp}\n".encode() + quoted + b"\n"
    return out.replace(b"\n", nl) if crlf else out
