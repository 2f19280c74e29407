"""Run a command on a pseudo-terminal, as an operator at a keyboard would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path


def run_on_pty(argv: list[str], answers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
               timeout: float = 300.0, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> tuple[int, bytes]:
    """Run `argv` with stdin, stdout and stderr on one pty; when the output so far ends with a
    prompt in `answers`, type its reply. Returns the exit status and everything shown."""
    master, slave = pty.openpty()
    # a terminal of 24 rows and 100 columns, as a window would have (a new pty has 0 x 0)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            env=env, cwd=cwd)
    os.close(slave)
    shown = b""
    pending = list(answers)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if pending and pending[0][0] in shown.rsplit(b"\n", 1)[-1]:
                    os.write(master, pending.pop(0)[1])
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, end - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, shown
