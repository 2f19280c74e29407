"""mbsync (Debian's isync) synchronising a whole account both ways with Mailwright over
STARTTLS: messages, flags, folder creation and deletion, and a last run that transfers
nothing."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.imap_support import PASSWORD, ImapServer, start_imap_server

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (Debian isync) not installed"),
]

USER = "alice@example.test"


def msg(n: int, subject: str) -> bytes:
    return (
        f"From: Bob <bob@example.test>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Message-ID: <sync{n}@example.test>\r\nDate: Wed, 03 Jan 2024 09:00:00 +0000\r\n"
        f"\r\nbody {n}\r\n"
    ).encode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ImapServer]:
    srv = await start_imap_server(tmp_path)
    try:
        yield srv
    finally:
        await srv.stop()


def write_config(srv: ImapServer, root: Path) -> Path:
    maildir = root / "mail"
    maildir.mkdir(exist_ok=True)
    cfg = root / "mbsyncrc"
    cfg.write_text(
        f"""IMAPAccount mw
Host localhost
Port {srv.port}
User {USER}
Pass "{PASSWORD}"
SSLType STARTTLS
CertificateFile {srv.cert}
PipelineDepth 10

IMAPStore remote
Account mw

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
"""
    )
    return cfg


async def mbsync(cfg: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        "mbsync", "-V", "-c", str(cfg), "-a",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    return text


def files(box: Path) -> list[Path]:
    return sorted([*(box / "cur").glob("*"), *(box / "new").glob("*")])


async def remote_state(srv: ImapServer, account_id: int) -> dict[str, list[tuple[str, frozenset[str]]]]:
    out: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for mb in await srv.store.list_mailboxes(account_id):
        recs = await srv.store.list_messages(mb.id)
        items = []
        for r in recs:
            raw = await srv.store.read_blob(r.blob_id)
            subject = next(
                (line[9:].decode() for line in raw.split(b"\r\n") if line.startswith(b"Subject: ")), ""
            )
            items.append((subject, r.flags))
        out[mb.name] = sorted(items, key=lambda x: x[0])
    return out


async def test_mbsync_two_way_sync(server: ImapServer, tmp_path: Path) -> None:
    acc = await server.add_user()
    inbox = await server.store.get_mailbox(acc.id, "INBOX")
    assert inbox is not None
    for i in range(1, 4):
        await server.deliver(acc, msg(i, f"inbox {i}"))
    await server.store.create_mailbox(acc.id, "Work")
    await server.deliver(acc, msg(10, "work 10"), "Work")
    from mailwright.store.api import FlagOp

    await server.store.store_flags(inbox.id, [1], FlagOp.ADD, ["\\Flagged"])
    cfg = write_config(server, tmp_path)
    maildir = tmp_path / "mail"

    # 1. first run: everything comes down
    await mbsync(cfg)
    assert len(files(maildir / "INBOX")) == 3
    assert len(files(maildir / "Work")) == 1
    assert (maildir / "Sent").is_dir() and (maildir / "Trash").is_dir()
    flagged = [f for f in files(maildir / "INBOX") if ":2," in f.name and "F" in f.name.split(":2,")[1]]
    assert len(flagged) == 1

    # 2. changes on both sides
    seen_me = files(maildir / "INBOX")[1]
    if ":2," in seen_me.name:
        seen_me.rename(seen_me.with_name(seen_me.name + "S"))
    else:  # pragma: no cover - mbsync always writes info suffixes in cur/
        seen_me.rename(seen_me.parent.parent / "cur" / (seen_me.name + ":2,S"))
    (maildir / "Work" / "new" / "1700000000.local1.host").write_bytes(
        msg(20, "written locally").replace(b"\r\n", b"\n")
    )
    notes = maildir / "Local" / "Notes"
    for sub in ("cur", "new", "tmp"):
        (notes / sub).mkdir(parents=True)
    (notes / "new" / "1700000001.local2.host").write_bytes(msg(21, "note").replace(b"\r\n", b"\n"))
    doomed = files(maildir / "INBOX")[2]
    doomed.unlink()  # deleting locally expunges remotely (Expunge Both)
    await server.deliver(acc, msg(30, "arrived later"))
    await server.store.create_mailbox(acc.id, "Remote")
    await server.deliver(acc, msg(31, "remote folder"), "Remote")

    await mbsync(cfg)
    state = await remote_state(server, acc.id)
    assert [s for s, _ in state["Work"]] == ["work 10", "written locally"]
    assert [s for s, _ in state["Local/Notes"]] == ["note"]
    assert "Local" in state  # the parent was created too
    seen = [s for s, f in state["INBOX"] if "\\Seen" in f]
    assert len(seen) == 1
    assert len(state["INBOX"]) == 3  # one deleted locally, one arrived
    assert len(files(maildir / "INBOX")) == 3
    assert len(files(maildir / "Remote")) == 1

    # 3. a folder deleted on the server (emptied first) disappears locally
    remote_box = await server.store.get_mailbox(acc.id, "Remote")
    assert remote_box is not None
    await server.store.expunge(remote_box.id, [1])
    await mbsync(cfg)
    await server.store.delete_mailbox(remote_box.id)
    await mbsync(cfg)
    assert not (maildir / "Remote" / "cur").exists()

    # 4. nothing left to do: a last run changes nothing on either side
    before_remote = await remote_state(server, acc.id)
    before_local = {p.relative_to(maildir) for p in maildir.rglob("*") if p.is_file()}
    modseqs = {m.name: m.highestmodseq for m in await server.store.list_mailboxes(acc.id)}
    await mbsync(cfg)
    assert await remote_state(server, acc.id) == before_remote
    assert {p.relative_to(maildir) for p in maildir.rglob("*") if p.is_file()} == before_local
    assert {m.name: m.highestmodseq for m in await server.store.list_mailboxes(acc.id)} == modseqs
