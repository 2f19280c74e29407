"""Greylisting and rate limits on a clock the test controls (no sleeping), with their state in
a real store (every backend): what one process learns, another sees."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mailwright.spam.envelope import Greylist, RateLimiter, client_network, purge
from mailwright.store.api import Store
from mailwright.store.sqlite import SQLiteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_envelope_greylist_delay_window_and_pass(store: Store) -> None:
    clock = Clock()
    grey = Greylist(store, 300, 3600, clock=clock)
    assert await grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 300
    clock.now += 100
    assert await grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 200
    clock.now += 250
    # a retry from a neighbouring address of the same /24 passes (large senders' pools)
    assert await grey.check("192.0.2.77", "A@x.example", "bob@example.test") == 0
    clock.now += 30 * 86400
    assert await grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 0
    assert await grey.check("192.0.2.1", "other@x.example", "bob@example.test") == 300


async def test_envelope_greylist_expired_attempt_starts_again(store: Store) -> None:
    clock = Clock()
    grey = Greylist(store, 300, 3600, clock=clock)
    await grey.check("192.0.2.1", "a@x.example", "bob@example.test")
    clock.now += 7200  # the retry came too late
    assert await grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 300


async def test_envelope_greylist_purge_keeps_only_what_matters(store: Store) -> None:
    clock = Clock()
    grey = Greylist(store, 300, 3600, clock=clock)
    for i in range(50):
        await grey.check("192.0.2.1", f"s{i}@x.example", "bob@example.test")
    clock.now += 400
    await grey.check("192.0.2.1", "s0@x.example", "bob@example.test")  # passes: kept 36 days
    clock.now += 7200
    assert await purge(store, 3600, now=clock.now) == 49
    assert await grey.check("192.0.2.1", "s0@x.example", "bob@example.test") == 0


async def test_envelope_rate_limit_slides_over_the_hour(store: Store) -> None:
    clock = Clock()
    limit = RateLimiter(store, "sender", 3, clock=clock)
    assert [await limit.hit("k") for _ in range(4)] == [True, True, True, False]
    assert await RateLimiter(store, "client", 3, clock=clock).hit("k") is True  # own counts
    clock.now += 1800
    assert await limit.hit("k") is False
    clock.now += 1900  # the first events are more than an hour old now
    assert await limit.hit("k") is True
    assert await RateLimiter(store, "sender", 0).hit("k") is True


async def test_envelope_limits_concurrent_hits_exactly(store: Store) -> None:
    limit = RateLimiter(store, "sender", 10, clock=Clock())
    results = await asyncio.gather(*(limit.hit("k") for _ in range(25)))
    assert sum(results) == 10


async def test_envelope_state_is_shared_between_processes(tmp_path: Path) -> None:
    """A triplet greylisted by one process passes in another (its own interpreter, its own
    connection to the same store) once the delay is over; counts add up across them."""
    data = tmp_path / "data"
    store = SQLiteStore(data, meta_parser=None)
    await store.open()
    try:
        clock = Clock()
        grey = Greylist(store, 300, 3600, clock=clock)
        assert await grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 300
        assert await RateLimiter(store, "client", 2, clock=clock).hit("192.0.2.0/24")
        other = (
            "import asyncio, sys\n"
            "from pathlib import Path\n"
            "from mailwright.spam.envelope import Greylist, RateLimiter\n"
            "from mailwright.store.sqlite import SQLiteStore\n"
            "async def main():\n"
            "    s = SQLiteStore(Path(sys.argv[1]), meta_parser=None)\n"
            "    await s.open()\n"
            "    now = float(sys.argv[2])\n"
            "    wait = await Greylist(s, 300, 3600, clock=lambda: now).check(\n"
            "        '192.0.2.9', 'a@x.example', 'bob@example.test')\n"
            "    rate = RateLimiter(s, 'client', 2, clock=lambda: now)\n"
            "    print(wait, await rate.hit('192.0.2.0/24'), await rate.hit('192.0.2.0/24'))\n"
            "    await s.close()\n"
            "asyncio.run(main())\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", other, str(data), str(clock.now + 400),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        assert out.decode().split() == ["0.0", "True", "False"]
        clock.now += 500
        assert await grey.check("192.0.2.1", "a@x.example", "bob@example.test") == 0
    finally:
        await store.close()


def test_envelope_client_networks() -> None:
    assert client_network("192.0.2.55") == "192.0.2.0/24"
    assert client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_network("::ffff:192.0.2.55") == "192.0.2.0/24"
