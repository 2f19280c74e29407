"""The shape of a workload and of one run's result."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench import procmem
from bench.loadgen import LoadResult
from bench.sizes import Sizes
from bench.targets.base import Target


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool


@dataclass(slots=True)
class RunResult:
    values: dict[str, float]
    client_cpu_max: float  # busiest client process, share of one core (0..1)
    client_cores: float  # all client processes together, in cores
    server_cores: float | None = None  # server CPU seconds per wall second
    notes: list[str] = field(default_factory=list)


class Workload:
    name = "workload"
    title = "Workload"
    protocol = "smtp"
    metrics: tuple[Metric, ...] = ()

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes

    def describe(self) -> str:
        """One sentence saying exactly what was measured, with this run's sizes."""
        return ""

    def prepare(self, target: Target) -> None:
        """Once per server before its runs (warm-up, untimed)."""

    def run(self, target: Target) -> RunResult:
        raise NotImplementedError


class CpuMeter:
    """Server CPU over a span: sums the whole process tree (see procmem.cpu_seconds)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.cpu0 = procmem.cpu_seconds(target.pids())
        self.t0 = time.monotonic()

    def cores(self) -> float:
        cpu = procmem.cpu_seconds(self.target.pids()) - self.cpu0
        return cpu / max(time.monotonic() - self.t0, 1e-9)


def result(load: LoadResult, values: dict[str, float], meter: CpuMeter | None = None) -> RunResult:
    return RunResult(
        values=values,
        client_cpu_max=load.client_cpu_max,
        client_cores=load.client_cores,
        server_cores=meter.cores() if meter is not None else None,
    )
