"""aiosmtpd as a reference SMTP server: every message is on disk and fsync'ed before 250.

Run as ``python -m bench.aiosmtpd_server --port P --spool DIR --users a,b``. A message is
written once, fsync'ed, hard-linked into each recipient's ``new/`` folder, and the folders
are fsync'ed, so the 250 after DATA means the same as Mailwright's: durable in the mailbox.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_seq = itertools.count()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolHandler:
    def __init__(self, spool: Path, users: set[str], domain: str) -> None:
        self.spool = spool
        self.users = users
        self.domain = domain

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.domain or local.lower() not in self.users:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _store(self, data: bytes, rcpts: list[str]) -> None:
        name = f"{os.getpid()}.{next(_seq)}"
        first: Path | None = None
        dirs: set[Path] = set()
        for rcpt in rcpts:
            folder = self.spool / rcpt.rpartition("@")[0].lower() / "new"
            path = folder / name
            if path.exists():
                continue
            if first is None:
                tmp = self.spool / "tmp" / name
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.link(tmp, path)
                os.unlink(tmp)
                first = path
            else:
                os.link(first, path)
            dirs.add(folder)
        for d in dirs:
            _fsync_dir(d)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        await asyncio.get_running_loop().run_in_executor(
            None, self._store, content, list(envelope.rcpt_tos))
        return "250 2.0.0 OK: stored"


async def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--spool", type=Path, required=True)
    p.add_argument("--users", required=True)
    p.add_argument("--domain", default="example.test")
    args = p.parse_args(argv)
    users = {u for u in args.users.split(",") if u}
    (args.spool / "tmp").mkdir(parents=True, exist_ok=True)
    for u in users:
        (args.spool / u / "new").mkdir(parents=True, exist_ok=True)
    handler = SpoolHandler(args.spool, users, args.domain)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="aiosmtpd.example.test", decode_data=False)

    server = await loop.create_server(factory, "127.0.0.1", args.port, backlog=4096)
    print("ready", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
