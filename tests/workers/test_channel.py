"""The relay between worker processes (`workers.channel`) over real Unix datagram sockets, with
the supervisor's `fan_out` in between: what one worker publishes or counts, the others apply."""

from __future__ import annotations

from mailwright.accounts.authenticator import Authenticator
from mailwright.workers.channel import WorkerChannel, fan_out, socket_pair


class Pair:
    """Two workers' channels and the supervisor's ends."""

    def __init__(self) -> None:
        self.sup_a, a = socket_pair()
        self.sup_b, b = socket_pair()
        self.a, self.b = WorkerChannel(a), WorkerChannel(b)

    def forward(self) -> None:
        for src in (self.sup_a, self.sup_b):
            fan_out(src, [self.sup_a, self.sup_b])
        self.b._readable()
        self.a._readable()


async def test_a_change_published_in_one_worker_wakes_a_watcher_in_the_other() -> None:
    p = Pair()
    hub_a, hub_b = p.a.make_hub(), p.b.make_hub()
    with hub_a.subscribe(7) as mine, hub_b.subscribe(7) as theirs:
        hub_a.publish(7, 42)
        p.forward()
        assert mine.pending and theirs.pending
        assert theirs.modseq == 42
    # no echo: B applied A's change locally and sent nothing back
    assert p.b.sent == 0 and p.a.received == 0


async def test_failed_logins_in_two_workers_add_up_to_a_ban_in_both() -> None:
    p = Pair()
    auth_a = Authenticator(None, failures_before_ban=4, address_failures_before_ban=4)  # type: ignore[arg-type]
    auth_b = Authenticator(None, failures_before_ban=4, address_failures_before_ban=4)  # type: ignore[arg-type]
    for auth, ch in ((auth_a, p.a), (auth_b, p.b)):
        auth.relay = ch.send_failure
        ch.on_failure = auth.record_remote_failure
    for auth in (auth_a, auth_a, auth_b, auth_b):
        auth._record_failure("192.0.2.9", "bob@example.test")
        p.forward()
    assert auth_a.is_banned("192.0.2.9") and auth_b.is_banned("192.0.2.9")
    assert not auth_a.is_banned("192.0.2.10")


def test_malformed_datagrams_are_ignored() -> None:
    p = Pair()
    p.b.make_hub()
    for junk in (b"c x y", b"c 1", b"g only-one", b"zz", b"", b"\xff\xfe"):
        p.b.apply(junk)


async def test_a_request_is_carried_out_by_every_other_worker_before_ask_returns() -> None:
    """`PeerRequests` (the ACME challenges of several workers): `ask` returns once each other
    worker has carried the request out; a worker that does not read makes it time out."""
    import asyncio

    from mailwright.workers.channel import PeerRequests

    loop = asyncio.get_running_loop()
    ends = [socket_pair() for _ in range(3)]
    sups = [sup for sup, _w in ends]
    channels = [WorkerChannel(w) for _s, w in ends]
    done: list[tuple[int, str]] = []
    peers = [PeerRequests(ch, i, 2, lambda r, i=i: done.append((i, r)))  # type: ignore[misc]
             for i, ch in enumerate(channels)]  # fmt: skip
    for sup in sups:
        loop.add_reader(sup.fileno(), fan_out, sup, sups)
    for ch in channels:
        ch.start(loop)
    try:
        assert await peers[0].ask("+ http tok3n key.auth") == 2
        assert sorted(done) == [(1, "+ http tok3n key.auth"), (2, "+ http tok3n key.auth")]
        channels[2].stop(loop)  # a worker that is not serving yet
        assert await peers[0].ask("r", timeout=0.5) == 1
        assert (1, "r") in done and (2, "r") not in done
    finally:
        for sup in sups:
            loop.remove_reader(sup.fileno())
        for ch in channels:
            ch.stop(loop)
