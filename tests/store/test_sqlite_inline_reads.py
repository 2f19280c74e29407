"""`store.sqlite.db`: short reads move from the reader threads to the caller's thread once
they have proved short, and go back (for good after a few strikes) when one is not."""

from __future__ import annotations

import threading
from pathlib import Path

from mailwright.store.sqlite.db import Database, ReadCosts, read_site


def test_inline_reads_promoted_after_warm_short_runs_demoted_after_long() -> None:
    costs = ReadCosts()
    site = object()
    for _ in range(ReadCosts.WARM - 1):
        costs.ran_in_pool(site, 0.0001)
    assert not costs.inline(site)
    costs.ran_in_pool(site, 0.0001)
    assert costs.inline(site)
    costs.ran_inline(site, 0.0001)
    assert costs.inline(site)
    costs.ran_inline(site, 0.01)  # one long run on the loop: back to the pool
    assert not costs.inline(site)
    for _strike in range(ReadCosts.STRIKES - 1):
        for _ in range(ReadCosts.WARM):
            costs.ran_in_pool(site, 0.0001)
        assert costs.inline(site)
        costs.ran_inline(site, 0.01)
    for _ in range(ReadCosts.WARM * 2):
        costs.ran_in_pool(site, 0.0001)
    assert not costs.inline(site)  # struck out: stays in the pool


def test_inline_reads_a_slow_pool_run_restarts_the_count() -> None:
    costs = ReadCosts()
    site = object()
    for i in range(ReadCosts.WARM * 2):
        costs.ran_in_pool(site, 0.001 if i == ReadCosts.WARM - 1 else 0.0001)
    assert costs.inline(site)
    other = object()
    for _ in range(ReadCosts.WARM):
        costs.ran_in_pool(other, 0.001)
    assert not costs.inline(other)


def test_inline_reads_site_is_the_rule_in_the_closure() -> None:
    def rule_a(c: object) -> int:
        return 1

    def rule_b(c: object) -> int:
        return 2

    def view(rule):  # type: ignore[no-untyped-def]
        return lambda c: rule(c)

    assert read_site(view(rule_a)) is rule_a.__code__
    assert read_site(view(rule_b)) is rule_b.__code__
    assert read_site(rule_a) is rule_a.__code__


async def test_inline_reads_short_read_runs_on_the_callers_thread(tmp_path: Path) -> None:
    db = Database(tmp_path / "db.sqlite", fsync=False, process_lock=False)
    db.start(lambda c: c.execute("CREATE TABLE t(x)"))
    try:
        threads: list[int] = []

        def op(c: object) -> int:
            threads.append(threading.get_ident())
            return 7

        here = threading.get_ident()
        for _ in range(500):  # a run slowed down by a busy machine starts the count again
            assert await db.read(op) == 7
            if threads[-1] == here:
                break
        assert here not in threads[: ReadCosts.WARM]
        assert threads[-1] == here  # proved short: read on the event loop's thread
        assert db.costs.inline_runs >= 1
        db.inline_reads = False
        assert await db.read(op) == 7
        assert threads[-1] != here
    finally:
        db.stop()
