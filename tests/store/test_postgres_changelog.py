"""`changes_since` on PostgreSQL answered once per change and node (postgres/changelog.py):
the sessions woken by one change share one read, a node's own commit is never missed, and
another node's change is seen once its NOTIFY has arrived."""

from __future__ import annotations

import asyncio

import pytest

from mailwright.store.api import FlagOp
from tests.conftest import new_inbox, stage_blob
from tests.support.pg import Nodes

pytestmark = pytest.mark.postgres

MSG = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n"


async def test_postgres_changes_since_one_read_for_many_sessions(nodes: Nodes) -> None:
    a, _b = nodes
    inbox = await new_inbox(a)
    recs = [await a.append(inbox, await stage_blob(a, MSG + bytes([65 + i]))) for i in range(3)]
    sinces = [0, recs[0].modseq, recs[1].modseq]
    reads = a.changelog.reads
    # twenty sessions woken by one change, at different MODSEQs: one read of the database
    answers = await asyncio.gather(*(a.changes_since(inbox, sinces[k % 3]) for k in range(20)))
    assert a.changelog.reads == reads + 1
    for k, cs in enumerate(answers):
        assert cs.highestmodseq == recs[2].modseq
        assert [m.uid for m in cs.updated] == [r.uid for r in recs if r.modseq > sinces[k % 3]]


async def test_postgres_changes_since_sees_own_commit_at_once(nodes: Nodes) -> None:
    a, _b = nodes
    inbox = await new_inbox(a)
    rec = await a.append(inbox, await stage_blob(a, MSG))
    await a.changes_since(inbox, 0)  # an answer to share
    done = await a.store_flags(inbox, [rec.uid], FlagOp.ADD, ["\\Seen"])
    cs = await a.changes_since(inbox, rec.modseq)  # no NOTIFY awaited: the commit was heard
    assert [(m.uid, m.flags) for m in cs.updated] == [(rec.uid, frozenset({"\\Seen"}))]
    assert cs.highestmodseq == done.updated[0].modseq
    gone = await a.expunge(inbox, [rec.uid])
    cs = await a.changes_since(inbox, rec.modseq)
    assert gone == [rec.uid] and cs.expunged == (rec.uid,) and cs.updated == ()


async def test_postgres_changes_since_other_node_after_notify(nodes: Nodes) -> None:
    a, b = nodes
    inbox = await new_inbox(a)
    await a.append(inbox, await stage_blob(a, MSG))
    first = await a.changes_since(inbox, 0)
    sub = a.changes.subscribe(inbox)
    rec = await b.append(inbox, await stage_blob(b, MSG + b"2"))
    assert await sub.wait(10)  # liveness bound only: a heard b's NOTIFY
    cs = await a.changes_since(inbox, first.highestmodseq)
    assert [m.uid for m in cs.updated] == [rec.uid]
    sub.close()


async def test_postgres_changes_since_never_goes_back(nodes: Nodes) -> None:
    a, _b = nodes
    inbox = await new_inbox(a)
    await a.append(inbox, await stage_blob(a, MSG))
    cs = await a.changes_since(inbox, 0)
    # a caller that knows a later MODSEQ than the shared answer is answered from the database
    reads = a.changelog.reads
    later = await a.changes_since(inbox, cs.highestmodseq + 5)
    assert a.changelog.reads == reads + 1
    assert later.highestmodseq == cs.highestmodseq
