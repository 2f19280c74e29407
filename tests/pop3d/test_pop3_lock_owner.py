"""POP3 maildrop locks of dead processes are released at start, even when their PID lives on.

A crash leaves a lock row behind. Its PID may then belong to a zombie or to an unrelated
process (containers reuse low PIDs at every start): the lock records the boot and the process
start time, so `serve` tells them apart. Real processes, a real `mailwright serve` and both
store backends; nothing of ours is faked, only the lock rows are written as a crashed process
would have left them.
"""

from __future__ import annotations

import asyncio
import json
import poplib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright.cli.common import opened_store
from mailwright.config import load_config
from mailwright.pop3d import locks
from tests.conftest import store_backends
from tests.robustness.netclients import no_verify
from tests.support.server import PASSWORD, MailwrightServer

USERS = ("alice", "bob", "carol", "dave")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _server(root: Path, backend: str) -> MailwrightServer:
    srv = MailwrightServer(root)
    if backend == "postgres":
        from tests.support.pg import fresh_dsn

        srv.edit_config('backend = "sqlite"\ndsn = ""',
                        f'backend = "postgres"\ndsn = {json.dumps(fresh_dsn())}')  # fmt: skip
        srv.cli("domain", "add", "example.test")
    for user in USERS:
        srv.add_user(f"{user}@example.test")
    return srv


def _login(srv: MailwrightServer, user: str) -> bytes:
    p = poplib.POP3_SSL("127.0.0.1", srv.port("pop3s"), context=no_verify(), timeout=30)
    try:
        p.user(f"{user}@example.test")
        try:
            return p.pass_(PASSWORD)
        except poplib.error_proto as e:
            return bytes(e.args[0])
    finally:
        p.quit()


@pytest.mark.parametrize("backend", store_backends())
def test_pop3_lock_of_dead_process_released_although_its_pid_lives_on(
    tmp_path: Path, backend: str, sleeper: subprocess.Popen[bytes]
) -> None:
    srv = _server(tmp_path / "mw", backend)
    host = socket.gethostname()
    boot = locks.boot_id()
    live = locks.current()
    assert boot and live.start_time, "needs Linux /proc"
    sleep_start = (Path("/proc") / str(sleeper.pid) / "stat").read_text()
    sleep_start = sleep_start[sleep_start.rfind(")") + 2 :].split()[19]
    zombie = subprocess.Popen(["true"])  # exits at once; never waited for: a zombie
    while (Path("/proc") / str(zombie.pid) / "stat").read_text().split(")")[-1].split()[0] != "Z":
        pass  # bounded: `true` exits in milliseconds
    owners = {
        # the PID of a running `sleep`, but not the process that took the lock
        "alice": f"{host}:{sleeper.pid}@{boot}.{int(sleep_start) + 1}/7",
        # an owner written the old way whose PID is now a zombie
        "bob": f"{host}:{zombie.pid}/8",
        # a lock taken before the last boot
        "dave": f"{host}:{sleeper.pid}@00000000-0000-0000-0000-000000000000.{sleep_start}/9",
        # the live `sleep` itself, correctly identified: its lock stays
        "carol": f"{host}:{sleeper.pid}@{boot}.{sleep_start}/10",
    }

    async def lock() -> None:
        async with opened_store(load_config(srv.cfg)) as store:
            for user, owner in owners.items():
                acc = await store.find_account(f"{user}@example.test")
                assert acc is not None
                assert await store.lock_maildrop(acc.id, owner, 3600)

    asyncio.run(lock())
    srv.start()
    try:
        for user in ("alice", "bob", "dave"):
            assert _login(srv, user).startswith(b"+OK"), user
        assert _login(srv, "carol").startswith(b"-ERR [IN-USE]")
    finally:
        srv.stop()
        zombie.wait()


def test_pop3_lock_owner_names_this_process() -> None:
    me = locks.current("node1")
    owner = locks.lock_owner(me, "1f")
    assert owner.startswith(f"node1:{me.pid}@{me.boot_id}.") and owner.endswith("/1f")
    assert not locks.owner_is_dead(owner, "node1")
    assert not locks.owner_is_dead(owner, "node2")  # another host's lock is not ours to judge
