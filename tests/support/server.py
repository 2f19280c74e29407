"""A real `mailwright serve` process for integration tests.

`MailwrightServer` runs `mailwright init` in a directory with a free port range, runs operator
commands in-process (no interpreter start-up per command), starts `serve` as a subprocess,
waits for its `ready` line, and stops it with SIGTERM (or SIGKILL for crash tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from mailwright.cli.common import opened_store
from mailwright.cli.main import main
from mailwright.config import load_config

PASSWORD = "correct horse battery staple"
# The [passwords] table MailwrightServer appends to the config `init` wrote (the floor of
# config.py: one pass over 64 KiB).
CHEAP_PASSWORDS = '\n[passwords]\nhash_passes = 1\nhash_memory = "64K"\n'
OFFSETS = {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
           "pop3": 110, "pop3s": 995, "http": 8080, "managesieve": 4190, "https": 443}


# Every port handed out in this process: two servers made before either binds (init, then
# start) must not be given overlapping ranges.
_HANDED_OUT: set[int] = set()

T = TypeVar("T")


def free_port_base(extra_hosts: tuple[str, ...] = (), *, below: int = 57000) -> int:
    """A base N such that N+25 ... N+8080 are free on 127.0.0.1 (and on `extra_hosts`) and
    overlap no range handed out before in this process; N < `below` (a test whose ports stay
    unbound while it makes outgoing connections passes 31700, so that N+25 ... N+995 stay below
    Linux's ephemeral range and no outgoing connection can take one of them)."""
    for _ in range(500):
        base = random.randrange(20000, below, 10)
        ports = {base + off for off in OFFSETS.values()}
        if ports & _HANDED_OUT:
            continue
        try:
            for host in ("127.0.0.1", *extra_hosts):
                for port in ports:
                    with socket.socket() as s:
                        s.bind((host, port))
        except OSError:
            continue
        _HANDED_OUT.update(ports)
        return base
    raise RuntimeError("no free port range")


def wait_for(what: str, check: Callable[[], T], deadline: float = 40.0,
             interval: float = 0.2) -> T:
    """Poll until ``check()`` is truthy and return its value; fail with ``what`` after a generous
    deadline (a bound on a hang, not a timed assertion)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}")


@contextlib.contextmanager
def serving(*servers: MailwrightServer) -> Iterator[None]:
    """Start the servers in order; stop every one of them however the block ends."""
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


def find(messages: list[EmailMessage], needle: str) -> EmailMessage | None:
    """The first message whose text contains ``needle``."""
    return next((m for m in messages if needle in m.as_string()), None)


class MailwrightServer:
    def __init__(self, root: Path, domain: str = "example.test", *, init: bool = True,
                 port_base: int | None = None, workers: int = 1) -> None:
        # One process unless a test asks for more (tests/integration/test_workers.py), so that
        # what a test counts in one server process is all there is.
        self.workers = workers
        self.domain = domain
        self.dir = root
        self.cfg = root / "mailwright.toml"
        self.base = free_port_base() if port_base is None else port_base
        self.proc: subprocess.Popen[str] | None = None
        self.stderr: list[str] = []
        if init:
            self.cli("init", str(root), "--domain", domain, "--port-base", str(self.base),
                     config=False)
            # Cheap argon2id for the test accounts (a real hash, verified as any other): each
            # `add_user` and each login then costs a millisecond instead of 0.2 s of CPU. The
            # tests about the hashing itself are tests/accounts.
            with self.cfg.open("a") as f:
                f.write(CHEAP_PASSWORDS)

    def port(self, protocol: str) -> int:
        return self.base + OFFSETS[protocol]

    def edit_config(self, old: str, new: str) -> None:
        text = self.cfg.read_text()
        assert old in text, f"{old!r} not in the config"
        self.cfg.write_text(text.replace(old, new, 1))

    @property
    def hostname(self) -> str:
        return load_config(self.cfg).server.hostname

    def use_dns(self, nameserver: str) -> None:
        """Resolve through a test DNS server (its `DNSServer.config_value`), not the system's."""
        self.edit_config("nameservers = []", f"nameservers = {json.dumps([nameserver])}")

    def set_outbound(self, *, port: int | None = None, retry_schedule: tuple[str, ...] = (),
                     max_age: str | None = None) -> None:
        """Relay to `port` instead of 25 (the peer instance's MX), with a shorter schedule."""
        if port is not None:
            self.edit_config("\nport = 25\n", f"\nport = {port}\n")
        if retry_schedule:
            self.edit_config('retry_schedule = ["1m", "5m", "15m", "30m", "1h", "2h", "4h"]',
                             f"retry_schedule = {json.dumps(list(retry_schedule))}")
        if max_age is not None:
            self.edit_config('max_age = "5d"', f'max_age = "{max_age}"')

    def cli(self, *args: str, stdin: str | None = None, config: bool = True,
            expect: int = 0) -> str:
        """Run an operator command in-process; returns its standard output."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # e.g. Playwright's sync API runs a loop here: the command gets a thread of its own
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(1) as pool:
                return pool.submit(self.cli, *args, stdin=stdin, config=config,
                                   expect=expect).result()
        argv = [*args, "-c", str(self.cfg)] if config else list(args)
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            sys.stdin = saved
        assert code == expect, (argv, code, out.getvalue(), err.getvalue())
        return out.getvalue()

    def add_user(self, address: str, password: str = PASSWORD) -> None:
        self.cli("user", "add", address, "--password-stdin", stdin=password + "\n")

    def start(self, timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.stderr = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailwright", "serve", "-c", str(self.cfg),
             "--workers", str(self.workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        ready = threading.Event()
        proc = self.proc

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.stderr.append(line)
                if "ready" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(timeout)
        if proc.poll() is not None or not any("ready" in line for line in self.stderr):
            self.kill()
            raise RuntimeError(f"mailwright did not start:\n{''.join(self.stderr)}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL the server: with several workers, every worker, then the supervisor (as a
        power cut would; a supervisor killed alone would have its workers stop gracefully)."""
        if self.proc is not None:
            if self.workers != 1:
                from tests.support.workers import worker_pids

                with contextlib.suppress(OSError):
                    for pid in worker_pids(self.proc.pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __enter__(self) -> MailwrightServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mailbox(self, address: str, mailbox: str = "INBOX") -> list[bytes]:
        """The raw messages of one mailbox, read through the store (works while serving)."""

        async def read() -> list[bytes]:
            async with opened_store(load_config(self.cfg)) as store:
                account = await store.find_account(address)
                assert account is not None, address
                box = await store.get_mailbox(account.id, mailbox)
                assert box is not None, mailbox
                return [await store.read_blob(r.blob_id) for r in await store.list_messages(box.id)]

        return asyncio.run(read())

    def messages(self, address: str, mailbox: str = "INBOX") -> list[EmailMessage]:
        """The messages of one mailbox, parsed (works while serving)."""
        out: list[EmailMessage] = []
        for raw in self.mailbox(address, mailbox):
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out
