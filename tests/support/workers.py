"""Which worker process of a `serve --workers N` holds a connection, read from /proc (Linux).

The kernel hands a connection to whichever worker accepts first; a test that needs a session on
each worker opens connections until it has one, and asks here which worker took each.
"""

from __future__ import annotations

import os
import socket


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's child processes, the workers."""
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
        return [int(x) for x in f.read().split()]


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (int(local.rsplit(":", 1)[1], 16) == server_port
                        and int(remote.rsplit(":", 1)[1], 16) == client_port):  # fmt: skip
                    return fields[9]
    return None


def worker_of(supervisor: int, client: socket.socket) -> int | None:
    """The pid of the worker holding the server side of `client`'s connection (None: not yet
    accepted, or closed)."""
    server_port = client.getpeername()[1]
    inode = _server_side_inode(server_port, client.getsockname()[1])
    if inode is None or inode == "0":
        return None
    target = f"socket:[{inode}]"
    for pid in worker_pids(supervisor):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None
