"""Crash safety of the embedded store: SIGKILL a busy writer, reopen, check every promise.

Checks after each kill: every acknowledged append is present and byte-exact (unless its expunge
was acknowledged), acknowledged flags and expunges hold, no UID is reused after the restart,
a fan-out to 20 accounts is in all of their INBOXes or in none (and in all once acknowledged),
`check()` finds the store consistent, and the garbage collector leaves no unreferenced blob.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailwright.store.sqlite import SQLiteStore

WORKER = Path(__file__).with_name("crashworker.py")
FANOUT = 20  # as in crashworker.py
REPO = Path(__file__).resolve().parents[2]


def run_round(data_dir: Path, seed: int, rng: random.Random) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(data_dir), str(seed)],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    time.sleep(rng.uniform(0.05, 0.6))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return [line for line in out.splitlines() if line.startswith(("ACK ", "INTENT "))]


async def verify(data_dir: Path, acks: list[str], state: dict[str, object]) -> None:
    store = SQLiteStore(data_dir)
    await store.open()
    try:
        acc = await store.find_account("crash@example.test")
        assert acc is not None
        inbox = await store.get_mailbox(acc.id, "INBOX")
        assert inbox is not None
        present = {r.uid: r for r in await store.list_messages(inbox.id)}
        appended: dict[int, str] = state.setdefault("appended", {})  # type: ignore[assignment]
        expunged: set[int] = state.setdefault("expunged", set())  # type: ignore[assignment]
        seen: set[int] = state.setdefault("seen", set())  # type: ignore[assignment]
        maybe_gone: set[int] = state.setdefault("maybe_gone", set())  # type: ignore[assignment]
        fanned: set[str] = state.setdefault("fanned", set())  # type: ignore[assignment]
        for line in acks:
            what, kind, *rest = line.split()
            if what == "INTENT":
                maybe_gone.update(int(u) for u in rest)
            elif kind == "append":
                uid = int(rest[0])
                assert uid not in appended, f"UID {uid} reused"
                appended[uid] = rest[1]
            elif kind == "expunge":
                expunged.update(int(u) for u in rest)
            elif kind == "seen":
                seen.add(int(rest[0]))
            elif kind == "fanout":
                fanned.add(rest[0])
        for uid, blob_id in appended.items():
            if uid in expunged:
                assert uid not in present
                continue
            if uid in maybe_gone and uid not in present:
                continue
            assert uid in present, f"acknowledged UID {uid} lost"
            assert present[uid].blob_id == blob_id
            data = await store.read_blob(blob_id)
            assert hashlib.sha256(data).hexdigest() == blob_id
            if uid in seen:
                assert "\\Seen" in present[uid].flags
        # one unit of work: every fan-out message is in every fan INBOX, or in none of them
        per_fan = []
        for k in range(FANOUT):
            fan = await store.find_account(f"fan{k:02d}@example.test")
            if fan is None:
                assert not fanned
                break
            box = await store.get_mailbox(fan.id, "INBOX")
            assert box is not None
            blobs = [r.blob_id for r in await store.list_messages(box.id)]
            assert len(blobs) == len(set(blobs))
            per_fan.append(set(blobs))
        if per_fan:
            assert all(b == per_fan[0] for b in per_fan), "a fan-out reached only some accounts"
            assert fanned <= per_fan[0], "an acknowledged fan-out was lost"
        status = await store.mailbox_status(inbox.id)
        assert all(uid < status.uidnext for uid in appended)
        await store.collect_garbage(min_age=0)
        assert await store.check() == []
        files = {p.name for p in (data_dir / "blobs").rglob("*") if p.is_file()}
        referenced = set()
        for account in await store.list_accounts():
            for mb in await store.list_mailboxes(account.id):
                referenced |= {r.blob_id for r in await store.list_messages(mb.id)}
        assert files == referenced
    finally:
        await store.close()


async def test_crash_store_survives_sigkill_rounds(tmp_path: Path) -> None:
    rounds = int(os.environ.get("MAILWRIGHT_CRASH_ROUNDS", "6"))
    rng = random.Random(1234)
    state: dict[str, object] = {}
    total = 0
    for i in range(rounds):
        acks = run_round(tmp_path, i, rng)
        total += len(acks)
        await verify(tmp_path, acks, state)
    assert total > 0
    assert state["fanned"], "no fan-out was acknowledged: the rounds were too short"
