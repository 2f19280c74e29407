"""A POP3 maildrop lock left by a crashed process of this host is released at start."""

from __future__ import annotations

import asyncio
import poplib
import socket
import ssl
from pathlib import Path

from mailwright.cli.common import opened_store
from mailwright.config import load_config
from tests.support.server import PASSWORD, MailwrightServer


def test_stale_maildrop_lock_of_dead_process_released_at_start(tmp_path: Path) -> None:
    srv = MailwrightServer(tmp_path / "s")
    srv.add_user("alice@example.test")
    host = socket.gethostname()

    async def lock() -> None:
        async with opened_store(load_config(srv.cfg)) as store:
            acc = await store.find_account("alice@example.test")
            assert acc is not None
            # pid 2**22 + 1 is above Linux's pid_max: that process cannot be running
            assert await store.lock_maildrop(acc.id, f"{host}:4194305/7", 3600)

    asyncio.run(lock())
    srv.start()
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        p = poplib.POP3_SSL("127.0.0.1", srv.port("pop3s"), context=ctx, timeout=30)
        p.user("alice@example.test")
        assert p.pass_(PASSWORD).startswith(b"+OK")
        p.quit()
    finally:
        srv.stop()
