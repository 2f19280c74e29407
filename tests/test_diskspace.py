"""`diskspace.FreeSpace`: one statvfs per interval while there is room, a fresh one before any
refusal, and what this process wrote since the last reading counted against the room."""

from __future__ import annotations

import os
from pathlib import Path

from mailwright.diskspace import FreeSpace, free_space

RESERVE = 64 * 1024 * 1024  # [storage] min_free's default


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_diskspace_reads_once_per_interval_while_there_is_room(tmp_path: Path) -> None:
    clock = Clock()
    space = FreeSpace(tmp_path, clock=clock)
    assert all(space.room_for(RESERVE, 4096, spend=True) for _ in range(100))
    assert space.readings == 1
    clock.now += 1.5  # the reading is old: the next question asks the kernel again
    assert space.room_for(RESERVE, 4096)
    assert space.readings == 2


def test_diskspace_refuses_only_on_a_fresh_reading(tmp_path: Path) -> None:
    clock = Clock()
    space = FreeSpace(tmp_path, clock=clock)
    assert space.room_for(0, 1)
    too_much = _free(tmp_path) * 4 + (1 << 40)
    assert not space.room_for(too_much, 0)
    assert not space.room_for(too_much, 0)
    assert space.readings == 3  # each refusal looked again


def test_diskspace_counts_what_was_written_since_the_reading(tmp_path: Path) -> None:
    clock = Clock()
    space = FreeSpace(tmp_path, clock=clock)
    assert space.room_for(0, 1)
    mib = 1024 * 1024
    reserve = RESERVE
    assert space.room_for(reserve, 6 * mib, spend=True)
    assert space.readings == 1
    assert space.room_for(reserve, 6 * mib, spend=True)
    assert space.readings == 1
    # 12 MiB written on this reading: 6 more would pass a quarter of the reserve, so the
    # kernel is asked again (and finds the room, nothing having been written really)
    assert space.room_for(reserve, 6 * mib, spend=True)
    assert space.readings == 2


def test_diskspace_one_per_directory_in_a_process(tmp_path: Path) -> None:
    assert free_space(tmp_path) is free_space(str(tmp_path) + "/.")
    assert free_space(tmp_path) is not free_space(tmp_path.parent / "elsewhere-not-made")
