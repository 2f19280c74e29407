"""Who holds a POP3 maildrop lock, and whether that process still runs.

A lock (RFC 1939 8: exclusive access to the maildrop) is a store row with an owner string and
an expiry, in either backend. A crashed process leaves its rows behind; at start the server
releases those of its own host whose process is gone. A process ID alone cannot say "gone":
after a crash the ID may belong to a zombie, or, in a container where every start is PID 1 or
close to it, to a new and unrelated process. So the owner names the process completely:

    <host>:<pid>@<boot id>.<start time>/<connection>

`boot id` is /proc/sys/kernel/random/boot_id (new at every boot), `start time` is field 22 of
/proc/<pid>/stat (clock ticks since boot). The same PID with another start time, or any PID
after another boot, is another process. Owners written by older versions (`<host>:<pid>/...`)
are judged by the PID alone, zombies counting as dead.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    host: str
    pid: int
    boot_id: str  # empty where /proc has none (not Linux)
    start_time: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}@{self.boot_id}.{self.start_time}"


def boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a running process, or None when there is none."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ")".
    fields = text[text.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime)


def current(host: str | None = None) -> ProcessIdentity:
    """This process, as it signs its locks."""
    pid = os.getpid()
    stat = _stat(pid)
    return ProcessIdentity(host or socket.gethostname(), pid, boot_id(), stat[1] if stat else "")


def lock_owner(identity: ProcessIdentity, connection: str) -> str:
    return f"{identity}/{connection}"


def owner_is_dead(owner: str, host: str) -> bool:
    """True when `owner` names a process of `host` that no longer runs.

    Another host's locks are never judged here (they expire, or that host releases them).
    """
    node = owner.split("/", 1)[0]
    who, _, signature = node.partition("@")
    lock_host, _, pid_text = who.rpartition(":")
    if lock_host != host or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    stat = _stat(pid)
    alive = _pid_exists(pid) and (stat is None or stat[0] not in ("Z", "X"))
    if not signature:  # an owner from before identities were recorded: the PID alone
        return not alive
    lock_boot, _, lock_start = signature.rpartition(".")
    if lock_boot and lock_boot != boot_id():
        return True  # written before the last boot: no process of it survives
    if not alive:
        return True
    return stat is not None and stat[1] != lock_start  # the PID now names another process


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True
