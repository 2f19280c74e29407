"""The supervisor: binds every listener once, forks the workers, keeps them running.

Why a pre-forked set sharing the supervisor's listening sockets, rather than SO_REUSEPORT
sockets of each worker's own, or a parent that accepts and passes each connection:

* a connection waiting in the backlog belongs to the shared socket, not to one worker: when a
  worker dies (a crash, SIGKILL), the connections the kernel had queued are accepted by the
  others; with SO_REUSEPORT the dead worker's socket takes its queue down with it (resets);
* the kernel wakes the workers that wait in `epoll`, and the first free one accepts: a worker
  busy with a large message does not get the next connection, where SO_REUSEPORT's hash of the
  peer's address and port would hand it over anyway;
* ports are bound once, as root when needed, before the privileges are dropped; a port that
  cannot be bound is one error before any worker starts; port 0 means one port for all;
* no connection passes through the supervisor, which stays a small single-threaded loop with
  nothing to do per connection (it forwards the workers' `channel` datagrams only).

The supervisor never runs a store, a thread or an event loop, so forking it is safe at any
time: a worker that exits while the server runs is forked again (after a back-off when it dies
young), with its role (the primary runs the once-per-server services). SIGTERM or SIGINT:
every worker is told to stop gracefully (stop accepting, finish transactions in flight, the
queue keeps the leases of unfinished attempts), then the supervisor exits 0. A worker that is
not gone after `STOP_GRACE` seconds is killed; nothing is lost by that either, since nothing
was acknowledged that is not committed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import selectors
import signal
import socket
import ssl
import sys
import time
import traceback
from dataclasses import dataclass, field

from mailwright.config import Config, ConfigError
from mailwright.log import event
from mailwright.metrics import SharedMetrics
from mailwright.net.budgets import SharedCounts, SharedRates
from mailwright.net.server import BindError, bind_socket
from mailwright.workers.channel import WorkerChannel, fan_out, socket_pair
from mailwright.workers.role import WorkerRole

log = logging.getLogger("mailwright.workers")

STOP_GRACE = 30.0  # the workers' own grace (10 s for sessions, 10 s for the queue) and then some
YOUNG = 10.0  # a worker dying younger than this is restarted after a growing pause
MAX_BACKOFF = 30.0


@dataclass
class _Worker:
    index: int
    pid: int = 0
    started: float = 0.0
    ready: bool = False
    failures: int = 0  # deaths in a row, each younger than YOUNG
    restart_at: float = 0.0  # when a dead worker is forked again (0: running)
    sup_end: socket.socket | None = None
    status_r: int = -1
    exit_code: int | None = None
    fds: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(self, config: Config, count: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context
        self.count = count
        self.sockets: dict[str, socket.socket] = {}
        self.workers = [_Worker(i) for i in range(count)]
        # made before the first fork, so every worker maps the same counts
        self.counts = SharedCounts(count, [lc.name for lc in config.listeners])
        self.metrics = SharedMetrics(count)
        self.rates = SharedRates(count)
        self.sel = selectors.DefaultSelector()
        self.stopping = False
        self.restarts = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- start --------------------------------------------------------------------------------

    def bind(self) -> None:
        for lc in self.config.listeners:
            self.sockets[lc.name] = bind_socket(lc)

    def ports(self) -> str:
        out = []
        for lc in self.config.listeners:
            port = self.sockets[lc.name].getsockname()[1]
            out.append(f"{lc.protocol}={lc.address}:{port}")
        return " ".join(out)

    def _signals(self) -> None:
        def stop(_sig: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # only to wake the selector
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, "wake")

    def fork(self, w: _Worker, *, first: bool) -> None:
        sup_end, worker_end = socket_pair()
        status_r, status_w = os.pipe()
        # a worker forked again starts from no connections: the kernel closed its
        # predecessor's when it died
        self.counts.clear(w.index)
        self.metrics.clear(w.index)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                sup_end.close()
                os.close(status_r)
                self._child_setup(keep={worker_end.fileno(), status_w})
                role = WorkerRole(
                    index=w.index, count=self.count, primary=w.index == 0, first=first,
                    sockets=self.sockets, channel=WorkerChannel(worker_end), status_fd=status_w,
                    ssl_context=self.ssl_context, counts=self.counts.attach(w.index),
                    metrics=self.metrics.attach(w.index), rates=self.rates.attach(w.index),
                )  # fmt: skip
                from mailwright.app import run_worker

                code = run_worker(self.config, role)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except ConfigError as e:  # as `mailwright` itself says it (cli.main)
                print(f"mailwright: {e}", file=sys.stderr)
                code = 2
            except BaseException as e:  # noqa: BLE001 - a worker reports and exits, never returns
                if self.config.server.log_level == "debug":
                    traceback.print_exc()
                print(f"mailwright: error: {e} (worker {w.index})", file=sys.stderr)
                code = 1
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        worker_end.close()
        os.close(status_w)
        os.set_blocking(status_r, False)
        w.pid, w.started, w.ready, w.restart_at, w.exit_code = pid, time.monotonic(), False, 0.0, None
        w.sup_end, w.status_r = sup_end, status_r
        self.sel.register(sup_end, selectors.EVENT_READ, ("channel", w))
        self.sel.register(status_r, selectors.EVENT_READ, ("status", w))
        event(log, "worker started", worker=w.index, pid=pid, primary=w.index == 0)

    def _child_setup(self, keep: set[int]) -> None:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(Exception):
            self.sel.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        for other in self.workers:  # the supervisor's ends of the other workers' channels
            if other.sup_end is not None and other.sup_end.fileno() not in keep:
                other.sup_end.close()
            if other.status_r >= 0 and other.status_r not in keep:
                with contextlib.suppress(OSError):
                    os.close(other.status_r)
        with contextlib.suppress(Exception):  # Linux: this worker ends if the supervisor dies
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    # -- the loop -----------------------------------------------------------------------------

    def _forget(self, w: _Worker) -> None:
        if w.sup_end is not None:
            with contextlib.suppress(Exception):
                self.sel.unregister(w.sup_end)
            w.sup_end.close()
            w.sup_end = None
        if w.status_r >= 0:
            with contextlib.suppress(Exception):
                self.sel.unregister(w.status_r)
            with contextlib.suppress(OSError):
                os.close(w.status_r)
            w.status_r = -1

    def _reap(self) -> list[_Worker]:
        """Workers that have exited since the last look."""
        gone = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            for w in self.workers:
                if w.pid == pid:
                    w.pid = 0
                    w.exit_code = os.waitstatus_to_exitcode(status)
                    self._forget(w)
                    gone.append(w)
        return gone

    def _poll(self, timeout: float) -> None:
        for key, _mask in self.sel.select(timeout):
            data = key.data
            if data == "wake":
                with contextlib.suppress(OSError):
                    while os.read(self._wake_r, 512):
                        pass
                continue
            kind, w = data
            if kind == "channel":
                targets = [o.sup_end for o in self.workers if o.sup_end is not None]
                fan_out(key.fileobj, targets)  # type: ignore[arg-type]
            elif kind == "status":
                try:
                    chunk = os.read(w.status_r, 64)
                except OSError as e:
                    if e.errno != errno.EAGAIN:
                        raise
                    continue
                if b"r" in chunk:
                    w.ready = True
                if not chunk:  # the worker closed it: it is exiting
                    with contextlib.suppress(Exception):
                        self.sel.unregister(w.status_r)

    def _wait_ready(self, workers: list[_Worker]) -> int | None:
        """None once every one of `workers` serves; else the exit status to end with."""
        while not all(w.ready for w in workers):
            if self.stopping:
                return 0
            self._poll(0.5)
            for w in self._reap():
                event(log, "worker failed to start", logging.ERROR, worker=w.index,
                      status=w.exit_code)  # fmt: skip
                code = w.exit_code if w.exit_code and w.exit_code > 0 else 1
                return code
        return None

    def run(self) -> int:
        self._signals()
        # The primary alone first: it migrates the store and clears the staging files of a
        # crash before any other worker can start a delivery.
        self.fork(self.workers[0], first=True)
        code = self._wait_ready(self.workers[:1])
        if code is None:
            for w in self.workers[1:]:
                self.fork(w, first=False)
            code = self._wait_ready(self.workers)
        if code is not None:
            self.stop_all()
            return code
        print(f"mailwright: ready ({self.ports()}) workers={self.count}", file=sys.stderr, flush=True)
        while not self.stopping:
            now = time.monotonic()
            pending = [w.restart_at for w in self.workers if w.pid == 0 and w.restart_at]
            timeout = max(0.0, min(pending) - now) if pending else 1.0
            self._poll(min(timeout, 1.0))
            for w in self._reap():
                self._schedule_restart(w)
            now = time.monotonic()
            for w in self.workers:
                if w.pid == 0 and w.restart_at and now >= w.restart_at and not self.stopping:
                    self.restarts += 1
                    self.fork(w, first=False)
        event(log, "stopping workers", workers=sum(1 for w in self.workers if w.pid))
        return self.stop_all()

    def _schedule_restart(self, w: _Worker) -> None:
        young = time.monotonic() - w.started < YOUNG
        w.failures = w.failures + 1 if young else 0
        pause = min(MAX_BACKOFF, 0.5 * 2 ** (w.failures - 1)) if w.failures else 0.05
        w.restart_at = time.monotonic() + pause
        event(log, "worker exited", logging.ERROR, worker=w.index, status=w.exit_code,
              restart_in=round(pause, 2))  # fmt: skip

    def stop_all(self) -> int:
        """SIGTERM every worker, wait for them (forwarding their messages meanwhile)."""
        for w in self.workers:
            if w.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE
        while any(w.pid for w in self.workers) and time.monotonic() < end:
            self._poll(0.2)
            self._reap()
        for w in self.workers:
            if w.pid:
                event(log, "worker killed after the grace time", logging.WARNING, worker=w.index)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGKILL)
        while any(w.pid for w in self.workers):
            time.sleep(0.05)
            self._reap()
        for s in self.sockets.values():
            s.close()
        return 0


def supervise(config: Config, count: int) -> int:
    """Run `count` workers until SIGTERM or SIGINT; the exit status of `serve`."""
    from mailwright.app import drop_privileges, load_ssl

    # Read before the privileges are dropped (the key may be root's alone), and so a
    # certificate that cannot be read is exit 2 here, before any fork.
    sup = Supervisor(config, count, load_ssl(config))
    try:
        sup.bind()
    except BindError as e:
        print(f"mailwright: {e}", file=sys.stderr)
        for s in sup.sockets.values():
            s.close()
        return 1
    try:
        dropped = drop_privileges(config)
    except OSError as e:
        print(f"mailwright: cannot drop privileges to {config.server.user!r}: {e}", file=sys.stderr)
        return 1
    if dropped:
        event(log, "privileges", detail=dropped)
    return sup.run()
