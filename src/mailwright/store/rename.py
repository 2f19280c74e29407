"""Mailbox RENAME planning shared by both backends, so that they cannot drift apart.

RFC 9051 6.3.6: renaming a mailbox renames its inferior hierarchical names too. A name is matched
by exact prefix (`old` or `old/...`), never by a LIKE pattern: `_`, `%` and `\\` are ordinary
characters in a mailbox name. Each backend selects the candidate rows, then applies this plan.
"""

from __future__ import annotations

from collections.abc import Iterable


def rename_plan(old: str, new: str, rows: Iterable[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """(id, name, new name) for `old` and each of its inferiors, shortest name first.

    Shortest first lets `x/y` -> `x` hand its name to its child (`x/y/y` -> `x/y`) while the
    unique index on names is checked statement by statement.
    """
    plan = [(mb_id, name, new + name[len(old):]) for mb_id, name in rows
            if name == old or name.startswith(old + "/")]
    plan.sort(key=lambda p: (len(p[1]), p[1]))
    return plan


def collisions(plan: list[tuple[int, str, str]], existing: Iterable[str]) -> list[str]:
    """The new names of `plan` already taken by a mailbox that is not itself being renamed."""
    moving = {name for _, name, _ in plan}
    taken = set(existing) - moving
    return [renamed for _, _, renamed in plan if renamed in taken]
