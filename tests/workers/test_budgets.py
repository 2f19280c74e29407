"""`net.budgets.SharedCounts` and `SharedRates` across real processes: counts and command-rate
buckets made by one process before `fork` are seen by every child, each writing only its own
row."""

from __future__ import annotations

import os

import pytest

from mailwright.net.budgets import IP_SLOTS, LocalCounts, SharedCounts, SharedRates
from mailwright.net.limits import CommandRateLimiter


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


def _spend_in_child(rates: SharedRates, index: int, commands: int, now: float) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            limiter = CommandRateLimiter(10, burst=5, clock=lambda: now,
                                         table=rates.attach(index))  # fmt: skip
            code = 0 if all(limiter.delay_for("192.0.2.1") == 0.0 for _ in range(commands)) else 3
        finally:
            os._exit(code)
    return pid


def test_an_address_gets_the_rate_of_the_server_not_of_each_worker() -> None:
    """Two workers each take the burst's commands that were free in one process; what a third
    process asks then waits behind both, as one bucket would have it."""
    rates = SharedRates(3)
    now = 1000.0
    for index, commands in ((0, 3), (1, 2)):  # 3 + 2 = the burst of 5, all free
        pid = _spend_in_child(rates, index, commands, now)
        assert os.waitpid(pid, 0)[1] == 0
    third = CommandRateLimiter(10, burst=5, clock=lambda: now, table=rates.attach(2))
    assert third.delay_for("192.0.2.1") == pytest.approx(0.1)  # the sixth of the address
    assert third.delay_for("192.0.2.1") == pytest.approx(0.2)
    assert third.delay_for("198.51.100.1") == 0.0  # another address, its own bucket
    assert rates.full_at("192.0.2.1") == pytest.approx(now + 0.7)
    # a second later ten commands' worth has come back: the bucket is full again, not more
    later = CommandRateLimiter(10, burst=5, clock=lambda: now + 1.0, table=rates)
    assert [later.delay_for("192.0.2.1") for _ in range(5)] == [0.0] * 5
    assert later.delay_for("192.0.2.1") > 0


def test_rate_slots_are_keyed_per_server() -> None:
    """Which addresses share a slot differs from one server to the next (a keyed hash), so an
    attacker cannot choose addresses that slow down another's."""
    a, b = SharedRates(1, slots=1 << 16), SharedRates(1, slots=1 << 16)
    ips = [f"192.0.2.{i}" for i in range(64)]
    assert [a._slot(ip) for ip in ips] != [b._slot(ip) for ip in ips]
    assert [a._slot(ip) for ip in ips] == [a._slot(ip) for ip in ips]


def test_connection_slots_cannot_be_chosen_to_fill_a_victims_cap() -> None:
    """An attacker who picks its addresses (any IPv6 /64 holds billions) must not be able to
    land them in a victim's slot of the per-address connection count: with an unkeyed hash it
    computes colliding addresses offline and, holding `max_connections_per_ip` connections from
    them, has the victim's every connection refused. The slots are keyed per server as the
    rate slots are, so addresses that collide under the old public hash (CRC-32) spread."""
    import zlib

    victim = "192.0.2.10"
    target = zlib.crc32(victim.encode()) % IP_SLOTS
    attackers = []
    n = 0
    while len(attackers) < 4:
        ip = f"2001:db8::{n:x}"
        n += 1
        if zlib.crc32(ip.encode()) % IP_SLOTS == target:
            attackers.append(ip)
    counts = SharedCounts(1, ["smtp"])
    for ip in attackers:
        for _ in range(10):
            counts.open_ip(ip)
    # at most one of the four may share the victim's slot by chance (1 in 65,536 each)
    assert counts.ip(victim) <= 10
