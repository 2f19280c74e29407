"""Multi-process load generation: each process runs its own asyncio client loop.

A workload hands over one job per process. Every process connects and prepares, then waits on
a shared barrier, so that the timed part starts at once everywhere; each process measures its
own CPU time over the timed part, which the report shows next to each result (a client
process near 100 % of a core would mean the client, not the server, set the pace).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from typing import Any

from bench.common import BenchError, raise_nofile

_BARRIER_TIMEOUT = 300.0


class Gate:
    """What a job sees of its process: the start barrier, the stop mark, the hold point."""

    def __init__(self, index: int, barrier: Barrier, events: mp.Queue[Any],
                 release: Synchronized[int]) -> None:
        self.index = index
        self._barrier = barrier
        self._events = events
        self._release = release
        self._round = 0
        self.t0: float | None = None
        self.t1: float | None = None
        self.cpu0 = 0.0
        self.cpu1 = 0.0

    async def start(self) -> None:
        """Wait until every process is ready, then start the clock."""
        await asyncio.to_thread(self._barrier.wait, _BARRIER_TIMEOUT)
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()

    def stop(self) -> None:
        if self.t1 is None:
            self.t1 = time.monotonic()
            self.cpu1 = time.process_time()

    async def hold(self, info: Any = None) -> None:
        """Tell the parent this process reached a hold point; resume when it says so.

        Every process must hold the same number of times; the parent's ``on_hold`` runs once
        per round, when all of them hold. The event loop keeps running meanwhile, so open
        sessions stay served.
        """
        self.stop()
        self._round += 1
        self._events.put(("ready", self.index, (self._round, info)))
        while self._release.value < self._round:
            await asyncio.sleep(0.05)


JobFn = Callable[[Any, Gate], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class LoadResult:
    wall: float  # seconds from the first start to the last stop
    cpu: tuple[float, ...]  # CPU seconds of each client process over its timed part
    results: tuple[Any, ...]
    starts: tuple[float, ...]
    stops: tuple[float, ...]

    @property
    def client_cpu_max(self) -> float:
        """The busiest client process's share of one core over the timed part (0..1)."""
        if not self.cpu:
            return 0.0
        return max(c / max(t1 - t0, 1e-9) for c, t0, t1 in zip(self.cpu, self.starts, self.stops, strict=True))

    @property
    def client_cores(self) -> float:
        """Client CPU seconds per wall second, summed over processes (in cores)."""
        return sum(self.cpu) / max(self.wall, 1e-9)


def _worker(fn: JobFn, arg: Any, index: int, barrier: Barrier, events: mp.Queue[Any],
            release: Synchronized[int]) -> None:
    raise_nofile()
    gate = Gate(index, barrier, events, release)

    async def main() -> Any:
        result = await fn(arg, gate)
        gate.stop()
        return result

    try:
        try:
            import uvloop

            factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
        except ImportError:
            factory = None
        with asyncio.Runner(loop_factory=factory) as runner:
            result = runner.run(main())
        if gate.t0 is None or gate.t1 is None:
            raise BenchError("job never passed its start gate")
        events.put(("done", index, (result, gate.t0, gate.t1, gate.cpu1 - gate.cpu0)))
    except BaseException as e:
        barrier.abort()
        events.put(("error", index, f"{type(e).__name__}: {e}"))


def run_jobs(fn: JobFn, args: Sequence[Any], *, timeout: float = 900,
             on_hold: Callable[[int, list[Any]], None] | None = None) -> LoadResult:
    """Run ``fn(arg, gate)`` in one process per arg; wait for all of them.

    When jobs call ``gate.hold(info)``, ``on_hold(round, infos)`` runs in the parent once
    every process holds, then all of them are released.
    """
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(args))
    events: mp.Queue[Any] = ctx.Queue()
    release: Synchronized[int] = ctx.Value("i", 0)
    procs = [
        ctx.Process(target=_worker, args=(fn, a, i, barrier, events, release), daemon=True)
        for i, a in enumerate(args)
    ]
    for p in procs:
        p.start()
    done: dict[int, tuple[Any, float, float, float]] = {}
    held: dict[int, dict[int, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(procs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"load generator timed out after {timeout:.0f}s")
            try:
                kind, index, payload = events.get(timeout=min(remaining, 5.0))
            except queue.Empty:
                dead = [p for i, p in enumerate(procs) if i not in done and p.exitcode not in (None, 0)]
                if dead:
                    raise BenchError(f"load generator process died (exit {dead[0].exitcode})") from None
                continue
            if kind == "error":
                raise BenchError(f"load generator {index}: {payload}")
            if kind == "ready":
                rnd, info = payload
                infos = held.setdefault(rnd, {})
                infos[index] = info
                if len(infos) == len(procs):
                    if on_hold is not None:
                        on_hold(rnd, [infos[i] for i in range(len(procs))])
                    release.value = rnd
            elif kind == "done":
                done[index] = payload
    finally:
        release.value = 1 << 30
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(5)
    ordered = [done[i] for i in range(len(procs))]
    starts = tuple(d[1] for d in ordered)
    stops = tuple(d[2] for d in ordered)
    return LoadResult(
        wall=max(stops) - min(starts),
        cpu=tuple(d[3] for d in ordered),
        results=tuple(d[0] for d in ordered),
        starts=starts,
        stops=stops,
    )


def split(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as possible."""
    q, r = divmod(total, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]
