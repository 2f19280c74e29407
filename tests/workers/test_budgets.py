"""`net.budgets.SharedCounts` across real processes: counts made by one process before `fork`
are seen and summed by every child, each writing only its own row."""

from __future__ import annotations

import os

from mailwright.net.budgets import IP_SLOTS, LocalCounts, SharedCounts


def _in_child(counts: SharedCounts, index: int, opens: int) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            mine = counts.attach(index)
            for _ in range(opens):
                mine.open("imap")
                mine.open_ip("192.0.2.1")
            code = 0
        finally:
            os._exit(code)
    return pid


def test_children_count_into_one_mapping_and_a_cleared_row_is_forgotten() -> None:
    counts = SharedCounts(3, ["smtp", "imap"])
    pids = [_in_child(counts, i, opens=i + 1) for i in range(3)]
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    # 1 + 2 + 3 connections, from three processes, seen by their parent
    assert counts.total() == 6
    assert counts.listener("imap") == 6
    assert counts.listener("smtp") == 0
    assert counts.ip("192.0.2.1") == 6
    assert counts.ip("192.0.2.2") in (0, 6)  # 0 unless it hashes into the same slot
    counts.clear(2)  # worker 2 died: its three connections went with it
    assert (counts.total(), counts.listener("imap"), counts.ip("192.0.2.1")) == (3, 3, 3)


def test_a_worker_closes_what_it_opened_and_unknown_listeners_count_in_the_total() -> None:
    counts = SharedCounts(2, ["imap"], ip_slots=8).attach(1)
    counts.open("imap")
    counts.open("http-added-later")
    counts.open_ip("198.51.100.7")
    assert (counts.total(), counts.listener("imap"), counts.listener("http-added-later")) == (2, 1, 0)
    counts.close("imap")
    counts.close("http-added-later")
    counts.close_ip("198.51.100.7")
    assert (counts.total(), counts.ip("198.51.100.7")) == (0, 0)


def test_addresses_sharing_a_slot_are_counted_together_never_less() -> None:
    counts = SharedCounts(1, ["smtp"], ip_slots=1)  # every address in one slot
    counts.open_ip("192.0.2.1")
    counts.open_ip("2001:db8::1")
    assert counts.ip("203.0.113.5") == 2  # refused early rather than admitted beyond a cap
    assert IP_SLOTS >= 1 << 16


def test_local_counts_forget_an_address_with_no_connection() -> None:
    counts = LocalCounts()
    counts.open("smtp")
    counts.open_ip("192.0.2.1")
    counts.close_ip("192.0.2.1")
    counts.close("smtp")
    assert (counts.total(), counts.listener("smtp"), counts.ip("192.0.2.1")) == (0, 0, 0)
    assert not counts._per_ip
