"""Maildir and mbox import/export: every folder, flag, keyword, internal date and byte survives."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailwright.cli.common import opened_store
from mailwright.config import load_config
from tests.conftest import CORPUS
from tests.corpus.oracle import own_messages

Snapshot = dict[str, list[tuple[str, tuple[str, ...], int]]]


def mw(cfg: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwright", "-c", str(cfg), *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )


def snapshot(cfg: Path, user: str) -> Snapshot:
    """Per mailbox: (content hash, flags, internal date) of every message, in UID order."""

    async def go() -> Snapshot:
        async with opened_store(load_config(cfg)) as store:
            acc = await store.find_account(user)
            assert acc is not None
            out: Snapshot = {}
            for mb in await store.list_mailboxes(acc.id):
                out[mb.name] = [(r.blob_id, tuple(sorted(r.flags)), int(r.timestamp))
                                for r in await store.list_messages(mb.id)]
            return out

    return asyncio.run(go())


@pytest.fixture
def inst(tmp_path: Path) -> Path:
    r = subprocess.run(
        [sys.executable, "-m", "mailwright", "init", str(tmp_path / "i"), "--domain", "example.test"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    cfg = tmp_path / "i" / "mailwright.toml"
    for user in ("alice", "bob", "carol"):
        r = mw(cfg, "user", "add", f"{user}@example.test", "--password-stdin", stdin="pw\n")
        assert r.returncode == 0, r.stderr
    return cfg


# name -> (bytes, mtime); LF line ends, as Maildirs on disk have them
SOURCE: dict[str, bytes] = {
    "cur/1000.a:2,S": b"From: a@x.test\nSubject: seen only\n\nFrom the start\n>From quoted\n>>From twice\n",
    "cur/1001.b:2,D": b"Subject: draft only\n\nunfinished\n",
    "cur/1002.c:2,FPRSTab": b"Subject: every flag\n\nall of them\n\n",
    "new/1003.d": b"Subject: new\n\nnothing set\n",
    "cur/1004.e:2,": b"\x00\x01garbage without any header\n",  # malformed: must still import
    ".Sent/cur/1005.f:2,S": b"Subject: sent\n\nout\n",
    ".Work.Projects/cur/1006.g:2,F": b"Subject: nested\n\nhierarchy\n",
    ".Entw&APw-rfe/cur/1007.h:2,S": b"Subject: non-ASCII folder\n\nEntw\xc3\xbcrfe\n",
    ".Empty/cur/.keep": b"",
}
KEYWORDS = "0 $Label1\n1 Project-X\n"


def make_maildir(root: Path) -> None:
    for name, data in SOURCE.items():
        folder = root / name.rsplit("/", 2)[0] if name.startswith(".") else root
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        if name.endswith(".keep"):
            continue
        (root / name).write_bytes(data)
        ts = 1_700_000_000 + int(re.search(r"(\d{4})\.", name).group(1))  # type: ignore[union-attr]
        os.utime(root / name, (ts, ts))
    (root / "dovecot-keywords").write_text(KEYWORDS)


def maildir_view(root: Path) -> set[tuple[str, bytes, str, int]]:
    """(folder, content, flag letters, mtime) for every message file: names aside, all of it."""
    out = set()
    for f in root.rglob("*"):
        if f.is_file() and f.parent.name in ("cur", "new"):
            kw_file = f.parent.parent / "dovecot-keywords"
            kws = dict(line.split(" ", 1) for line in kw_file.read_text().splitlines()) if (
                kw_file.exists()) else {}
            folder = str(f.parent.parent.relative_to(root))
            letters = f.name.rsplit(":2,", 1)[1] if ":2," in f.name else ""
            flags = ",".join(sorted(kws[str(ord(c) - 97)] if c.islower() else c for c in letters))
            out.add((folder, f.read_bytes(), flags, int(f.stat().st_mtime)))
    return out


def test_migrate_maildir_roundtrip_is_byte_and_flag_exact(inst: Path, tmp_path: Path) -> None:
    src = tmp_path / "Maildir"
    make_maildir(src)
    r = mw(inst, "import", "maildir", str(src), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert "imported 8 message(s) into 5 mailbox(es)" in r.stdout
    assert "1004.e" in r.stderr and "warning" in r.stderr
    snap = snapshot(inst, "alice@example.test")
    assert {"INBOX", "Sent", "Work/Projects", "Entwürfe", "Empty"} <= set(snap)
    flags = {f for _, f, _ in snap["INBOX"]}
    assert ("\\Seen",) in flags and ("\\Draft",) in flags
    assert ("$Forwarded", "$Label1", "Project-X", "\\Answered", "\\Deleted", "\\Flagged",
            "\\Seen") in flags
    assert mw(inst, "check").returncode == 0

    out = tmp_path / "out"
    r = mw(inst, "export", "maildir", str(out), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert "exported 8 message(s)" in r.stdout
    assert maildir_view(out) == maildir_view(src)
    assert (out / ".Empty" / "cur").is_dir()
    assert (out / "dovecot-keywords").read_text() == KEYWORDS

    # exporting again to the same place replaces files, it does not add copies
    assert mw(inst, "export", "maildir", str(out), "--user", "alice@example.test").returncode == 0
    assert maildir_view(out) == maildir_view(src)
    assert sum(1 for f in out.rglob("cur/*")) == 8

    # --crlf: the stored bytes as they are
    crlf = tmp_path / "crlf"
    assert mw(inst, "export", "maildir", str(crlf), "--crlf", "--user", "alice@example.test").returncode == 0
    assert {(a, b.replace(b"\r\n", b"\n"), c, d) for a, b, c, d in maildir_view(crlf)} == maildir_view(src)
    assert all(b"\r\n" in b for _, b, _, _ in maildir_view(crlf) if b"\n" in b)


def test_migrate_reimport_is_idempotent(inst: Path, tmp_path: Path) -> None:
    src = tmp_path / "Maildir"
    make_maildir(src)
    # the same content twice in one folder is two messages, and stays two
    (src / "cur" / "1008.dup:2,").write_bytes(SOURCE["new/1003.d"])
    assert mw(inst, "import", "maildir", str(src), "--user", "alice@example.test").returncode == 0
    before = snapshot(inst, "alice@example.test")
    r = mw(inst, "import", "maildir", str(src), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert "imported 0 message(s)" in r.stdout and "9 already there" in r.stdout
    assert snapshot(inst, "alice@example.test") == before
    r = mw(inst, "import", "maildir", str(src), "--user", "alice@example.test", "--allow-duplicates")
    assert "imported 9 message(s)" in r.stdout
    assert len(snapshot(inst, "alice@example.test")["INBOX"]) == 2 * len(before["INBOX"])


def test_migrate_mbox_roundtrip_every_folder_flags_and_from_lines(inst: Path, tmp_path: Path) -> None:
    src = tmp_path / "Maildir"
    make_maildir(src)
    assert mw(inst, "import", "maildir", str(src), "--user", "alice@example.test").returncode == 0
    alice = snapshot(inst, "alice@example.test")

    box = tmp_path / "mbox"
    r = mw(inst, "export", "mbox", str(box), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert "exported 8 message(s)" in r.stdout  # every folder, not INBOX alone
    inbox = (box / "INBOX.mbox").read_bytes()
    assert (box / "Work" / "Projects.mbox").is_file() and (box / "Entwürfe.mbox").is_file()
    # mboxrd: one more > on every >*From line of a body
    assert b"\n>From the start\n>>From quoted\n>>>From twice\n" in inbox
    # no empty Status:/X-Status: headers; \Seen is Status R, \Draft is X-Status T
    assert re.search(rb"^(X-)?Status: *$", inbox, re.M) is None
    draft = inbox.split(b"Subject: draft only\n", 1)[1].split(b"\n\n", 1)[0]
    assert draft == b"X-Status: T"

    r = mw(inst, "import", "mbox", str(box), "--user", "bob@example.test")
    assert r.returncode == 0, r.stderr
    assert "imported 8 message(s)" in r.stdout
    bob = snapshot(inst, "bob@example.test")
    assert bob == alice  # bytes, flags (\Seen stays \Seen, \Draft stays \Draft), dates
    again = tmp_path / "mbox2"
    assert mw(inst, "export", "mbox", str(again), "--user", "bob@example.test").returncode == 0
    files = sorted(p.relative_to(box) for p in box.rglob("*.mbox"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.mbox"))
    for rel in files:
        assert (box / rel).read_bytes() == (again / rel).read_bytes(), rel
    r = mw(inst, "import", "mbox", str(box), "--user", "bob@example.test")
    assert "imported 0 message(s)" in r.stdout and "8 already there" in r.stdout


def test_migrate_mbox_file_from_another_program(inst: Path, tmp_path: Path) -> None:
    box = tmp_path / "in.mbox"
    box.write_bytes(
        b"From a@x.test Thu Jan  1 00:00:00 2026\nSubject: one\nStatus: RO\nX-Status: A\n\n"
        b">From quoted line\nFrom unquoted mid-paragraph\n\n"
        b"From b@x.test Fri Jan  2 10:20:30 2026\nSubject: two\nX-Keywords: $Label1\n\nbody\n"
        # some writers leave out the empty line before a From_ line
        b"From c@x.test Sat Jan  3 00:00:00 2026\nSubject: three\n\nc\n"
    )
    r = mw(inst, "import", "mbox", str(box), "--user", "carol@example.test", "--mailbox", "Old")
    assert r.returncode == 0, r.stderr
    assert "imported 3 message(s)" in r.stdout
    snap = snapshot(inst, "carol@example.test")["Old"]
    assert [f for _, f, _ in snap] == [("\\Answered", "\\Seen"), ("$Label1",), ()]
    assert [t for _, _, t in snap] == [1767225600, 1767349230, 1767398400]
    assert snap[1][0] == hashlib.sha256(b"Subject: two\r\n\r\nbody\r\n").hexdigest()
    out = tmp_path / "old.mbox"
    r = mw(inst, "export", "mbox", str(out), "--mailbox", "Old", "--user", "carol@example.test")
    assert r.returncode == 0, r.stderr
    text = out.read_bytes()
    assert b"Subject: one\nStatus: RO\nX-Status: A\n\n>From quoted line\n>From unquoted" in text


def test_migrate_errors(inst: Path, tmp_path: Path) -> None:
    r = mw(inst, "import", "maildir", str(tmp_path / "missing"), "--user", "alice@example.test")
    assert r.returncode == 2 and "no such file" in r.stderr
    (tmp_path / "notmd").mkdir()
    r = mw(inst, "import", "maildir", str(tmp_path / "notmd"), "--user", "alice@example.test")
    assert r.returncode == 2 and "not a Maildir" in r.stderr
    src = tmp_path / "md"
    make_maildir(src)
    r = mw(inst, "import", "maildir", str(src), "--user", "nobody@example.test")
    assert r.returncode == 1 and "no such user" in r.stderr
    r = mw(inst, "import", "maildir", str(src), "--mailbox", "X", "--user", "alice@example.test")
    assert r.returncode == 2 and "--mailbox" in r.stderr
    r = mw(inst, "import", "maildir", str(src), "--insecure", "--user", "alice@example.test")
    assert r.returncode == 2 and "import imap" in r.stderr
    r = mw(inst, "export", "mbox", str(tmp_path / "x"), "--mailbox", "Nope", "--user", "alice@example.test")
    assert r.returncode == 1 and "Nope" in r.stderr


@pytest.mark.parametrize("corpus", ["own", "shared"])
def test_migrate_corpus_import_is_lossless(inst: Path, tmp_path: Path, corpus: str) -> None:
    # the repository's corpus always; ../shared/corpus as extra coverage when it is there
    if corpus == "own":
        files = own_messages()
    else:
        msgs = CORPUS / "messages"
        if not msgs.is_dir():
            pytest.skip(f"corpus not found at {msgs} (set MAILWRIGHT_CORPUS)")
        files = sorted(msgs.glob("*.eml"))
    assert files
    md = tmp_path / "corpus-md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i, f in enumerate(files):
        (md / "cur" / f"{i:04d}.corpus:2,S").write_bytes(f.read_bytes())
    r = mw(inst, "import", "maildir", str(md), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert f"imported {len(files)} message(s)" in r.stdout
    out = tmp_path / "out"
    assert mw(inst, "export", "maildir", str(out), "--crlf", "--user", "alice@example.test").returncode == 0
    got = sorted(p.read_bytes() for p in (out / "cur").iterdir())
    want = sorted(re.sub(rb"(?<!\r)\n", b"\r\n", f.read_bytes()) for f in files)
    assert got == want


def test_migrate_corpus_through_mbox_is_byte_and_flag_exact(inst: Path, tmp_path: Path) -> None:
    """The corpus, store -> mbox (--crlf) -> store: every byte and flag comes back; only a
    message that does not end with a line end gains one (docs/operator.md, "Line ends"). Body
    lines with a lone CR before `From ` are in it too: the mboxrd quoting goes by LF-ended lines,
    as the reader splits them, so a `From ` after a lone CR is not quoted (it was, and kept its
    `>` on import)."""
    files = [f.read_bytes() for f in own_messages()]
    files.append(b"Subject: lone CR then From\n\nx\rFrom y Thu Jan  1 00:00:00 2026\n"
                 b"x\r>From z\n")
    letters = ["S", "", "D", "FRS", "T", "PS", "a", "DST"]
    md = tmp_path / "corpus-md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "dovecot-keywords").write_text("0 $Label1\n")
    for i, raw in enumerate(files):
        (md / "cur" / f"{1000 + i}.c:2,{letters[i % len(letters)]}").write_bytes(raw)
    r = mw(inst, "import", "maildir", str(md), "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    assert f"imported {len(files)} message(s)" in r.stdout
    box = tmp_path / "mbox"
    r = mw(inst, "export", "mbox", str(box), "--crlf", "--user", "alice@example.test")
    assert r.returncode == 0, r.stderr
    r = mw(inst, "import", "mbox", str(box), "--user", "bob@example.test")
    assert r.returncode == 0, r.stderr
    assert f"imported {len(files)} message(s)" in r.stdout

    def stored(raw: bytes) -> str:
        crlf = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
        return hashlib.sha256(crlf if crlf.endswith(b"\n") else crlf + b"\r\n").hexdigest()

    alice = snapshot(inst, "alice@example.test")["INBOX"]
    bob = snapshot(inst, "bob@example.test")["INBOX"]
    assert [(stored(raw), f, t) for raw, (_, f, t) in zip(files, alice, strict=True)] == bob
