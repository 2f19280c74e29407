"""net/limits.py on a fake clock: the per-address token bucket and the command deadline."""

from __future__ import annotations

import pytest

from mailwright.net.limits import CommandRateLimiter, Deadline, LocalRates


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limits_burst_then_rate() -> None:
    clock = Clock()
    lim = CommandRateLimiter(10, burst=5, clock=clock)
    assert [lim.delay_for("192.0.2.1") for _ in range(5)] == [0.0] * 5
    # the sixth waits one token (0.1 s), the seventh two: commands queue behind each other
    assert lim.delay_for("192.0.2.1") == pytest.approx(0.1)
    assert lim.delay_for("192.0.2.1") == pytest.approx(0.2)
    clock.now += 10  # refilled, but never beyond the burst
    assert [lim.delay_for("192.0.2.1") for _ in range(5)] == [0.0] * 5
    assert lim.delay_for("192.0.2.1") > 0


def test_limits_per_address_and_exempt() -> None:
    clock = Clock()
    lim = CommandRateLimiter(1, burst=1, exempt=["127.0.0.0/8", "2001:db8::/32"], clock=clock)
    assert lim.delay_for("192.0.2.1") == 0.0
    assert lim.delay_for("192.0.2.1") == pytest.approx(1.0)
    assert lim.delay_for("192.0.2.2") == 0.0  # another address has its own bucket
    for _ in range(100):
        assert lim.delay_for("127.0.0.1") == 0.0
        assert lim.delay_for("2001:db8::1") == 0.0
    assert lim.delay_for("not an address") == 0.0  # first one free, like any address


def test_limits_rate_zero_is_off() -> None:
    lim = CommandRateLimiter(0)
    assert not lim.enabled
    assert all(lim.delay_for("192.0.2.1") == 0.0 for _ in range(1000))


def test_limits_table_is_bounded() -> None:
    clock = Clock()
    lim = CommandRateLimiter(1, burst=1, max_addresses=100, clock=clock)
    for i in range(1000):
        lim.delay_for(f"10.0.{i // 256}.{i % 256}")
        lim.delay_for(f"10.0.{i // 256}.{i % 256}")  # in debt: not forgotten as "full"
    assert isinstance(lim.table, LocalRates) and len(lim.table._buckets) <= 100


async def test_limits_wait_counts_delays() -> None:
    lim = CommandRateLimiter(1000, burst=1)
    await lim.wait("192.0.2.1")
    await lim.wait("192.0.2.1")
    assert lim.delayed == 1 and lim.delayed_seconds > 0


def test_limits_deadline_resets() -> None:
    clock = Clock()
    d = Deadline(5, clock=clock)
    clock.now += 4
    assert d.remaining() == pytest.approx(1)
    d.reset()
    assert d.remaining() == pytest.approx(5)
    clock.now += 9
    assert d.remaining() == 0.0
