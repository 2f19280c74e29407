"""Memory and CPU of a server's whole process tree, read from /proc.

Dovecot runs one process per IMAP session while Mailwright runs one process for all of them,
so only the sum over every process of a server is comparable. RSS counts shared pages once per
process; PSS divides them among the sharers, which is the fair figure for many processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

_CLK = os.sysconf("SC_CLK_TCK")


def _ppid_map() -> dict[int, int]:
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        out[int(name)] = int(rest[1])
    return out


def tree(roots: Iterable[int]) -> list[int]:
    """The given processes and all their descendants that are alive now."""
    ppids = _ppid_map()
    children: dict[int, list[int]] = {}
    for pid, ppid in ppids.items():
        children.setdefault(ppid, []).append(pid)
    seen: list[int] = []
    stack = [r for r in roots if r in ppids]
    while stack:
        pid = stack.pop()
        seen.append(pid)
        stack.extend(children.get(pid, ()))
    return seen


@dataclass(frozen=True, slots=True)
class Memory:
    rss: int  # bytes
    pss: int  # bytes
    processes: int


def memory(pids: Iterable[int]) -> Memory:
    rss = pss = n = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                text = f.read()
        except OSError:
            continue
        n += 1
        for line in text.splitlines():
            if line.startswith(b"Rss:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith(b"Pss:"):
                pss += int(line.split()[1]) * 1024
    return Memory(rss, pss, n)


def cpu_seconds(pids: Iterable[int]) -> float:
    """User+system CPU of live processes plus what they collected from reaped children."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        # fields 14-17 of proc(5): utime stime cutime cstime (rest starts at field 3)
        ticks += sum(int(x) for x in rest[11:15])
    return ticks / _CLK
