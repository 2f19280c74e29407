"""Greylisting and rate limits on a clock the test controls (no sleeping)."""

from __future__ import annotations

from mailwright.spam.envelope import Greylist, RateLimiter, client_network


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_envelope_greylist_delay_window_and_pass() -> None:
    clock = Clock()
    grey = Greylist(300, 3600, clock=clock)
    assert grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 300
    clock.now += 100
    assert grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 200
    clock.now += 250
    # a retry from a neighbouring address of the same /24 passes (large senders' pools)
    assert grey.check("192.0.2.77", "A@x.example", "bob@example.test") == 0
    clock.now += 30 * 86400
    assert grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 0
    assert grey.check("192.0.2.1", "other@x.example", "bob@example.test") == 300


def test_envelope_greylist_expired_attempt_starts_again() -> None:
    clock = Clock()
    grey = Greylist(300, 3600, clock=clock)
    grey.check("192.0.2.1", "a@x.example", "bob@example.test")
    clock.now += 7200  # the retry came too late
    assert grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 300


def test_envelope_greylist_is_bounded() -> None:
    grey = Greylist(300, 3600, max_entries=100, clock=Clock())
    for i in range(1000):
        grey.check("192.0.2.1", f"s{i}@x.example", "bob@example.test")
    assert len(grey._entries) == 100  # noqa: SLF001 - the bound is the point of this test


def test_envelope_rate_limit_slides_over_the_hour() -> None:
    clock = Clock()
    limit = RateLimiter(3, clock=clock)
    assert [limit.hit("k") for _ in range(4)] == [True, True, True, False]
    clock.now += 1800
    assert limit.hit("k") is False
    clock.now += 1900  # the first events are more than an hour old now
    assert limit.hit("k") is True
    assert RateLimiter(0).hit("k") is True


def test_envelope_client_networks() -> None:
    assert client_network("192.0.2.55") == "192.0.2.0/24"
    assert client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_network("::ffff:192.0.2.55") == "192.0.2.0/24"
