"""What one worker process tells the others, through the supervisor.

Each worker holds one end of a Unix datagram socket pair whose other end the supervisor holds;
the supervisor sends every datagram a worker writes to every other worker (`fan_out`). A
datagram is one small text message:

* `c <mailbox_id> <modseq>`: a commit of this worker changed a mailbox. The receivers publish
  it on their own change hub, so IDLE and NOTIFY sessions in every worker wake within a loop
  turn. Like the hub itself it carries no data: a session asks the store what changed, so a
  wake-up that arrives twice, late or coalesced loses nothing. (PostgreSQL needs none of this:
  each worker's store listens to the database's NOTIFY, as separate nodes do.)
* `f <ip> <username>`: a failed login. Every worker counts every worker's failures, so a guesser
  spreading attempts over connections (and so over workers) is banned after the same number of
  tries as against one process, and a banned address is refused at connect by every worker.

* `A <from> <seq> <request>` / `K <to> <seq>`: an ACME request of the primary worker (the one
  that runs the certificate manager) and each other worker's acknowledgement (`PeerRequests`):
  `+ alpn NAME KEYAUTH` / `- alpn NAME` (a tls-alpn-01 challenge certificate), `+ http TOKEN
  KEYAUTH` / `- http TOKEN` (an http-01 answer), `r` (load the renewed certificate from its
  files). The validation server may connect to any worker, so the primary tells the CA it is
  ready only once every other worker has acknowledged the challenge (or a timeout passed).

The spam filter's greylisting and hourly rate limits need no message: they live in the store.

Datagrams are never partial and never block the sender (non-blocking sockets; a datagram that
does not fit a full queue is dropped and counted, which for a wake-up costs latency only until
the next change of that mailbox, and for a failure one count).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from mailwright.store.changes import ChangeHub

log = logging.getLogger("mailwright.workers")

MAX_DATAGRAM = 1024  # an address and a username (at most 320 octets) fit with room to spare


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(supervisor end, worker end), both non-blocking and closed on exec."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for s in (a, b):
        s.setblocking(False)
    return a, b


class RelayedChangeHub(ChangeHub):
    """A change hub whose local publications also reach the other workers."""

    def __init__(self, channel: WorkerChannel) -> None:
        super().__init__()
        self._channel = channel

    def publish(self, mailbox_id: int, modseq: int) -> None:
        super().publish(mailbox_id, modseq)
        self._channel.send(f"c {mailbox_id} {modseq}")

    def publish_local(self, mailbox_id: int, modseq: int) -> None:
        """Another worker's change: wake this worker's sessions only (no echo)."""
        super().publish(mailbox_id, modseq)


class WorkerChannel:
    """The worker's end: sends its own events, applies the other workers' on its loop."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.hub: RelayedChangeHub | None = None
        self.on_failure: Callable[[str, str], None] | None = None
        self.requests: PeerRequests | None = None
        self.on_spam_settings: Callable[[], None] | None = None
        self.sent = 0
        self.dropped = 0
        self.received = 0

    def make_hub(self) -> RelayedChangeHub:
        self.hub = RelayedChangeHub(self)
        return self.hub

    def send(self, message: str) -> None:
        data = message.encode("utf-8", "replace")[:MAX_DATAGRAM]
        try:
            self.sock.send(data)
            self.sent += 1
        except (BlockingIOError, InterruptedError):
            self.dropped += 1
        except OSError:  # the supervisor is gone: this worker is being stopped anyway
            self.dropped += 1

    def send_failure(self, ip: str, username: str) -> None:
        # a username with spaces or control characters stays one field: only the first 320
        # octets of it count anyway (accounts.authenticator.MAX_USERNAME_KEY)
        self.send(f"f {ip} {username[:320]}")

    def send_spam_settings(self) -> None:
        """The administrator saved spam settings: the other workers read them again."""
        self.send("s")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.sock.fileno(), self._readable)

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(Exception):
            loop.remove_reader(self.sock.fileno())

    def _readable(self) -> None:
        for _ in range(256):  # then let the loop breathe; the reader fires again
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.received += 1
            self.apply(data)

    def apply(self, data: bytes) -> None:
        """One datagram from another worker; anything malformed is ignored (we wrote it)."""
        kind, _, rest = data.decode("utf-8", "replace").partition(" ")
        try:
            if kind == "c" and self.hub is not None:
                mailbox, modseq = rest.split(" ")
                self.hub.publish_local(int(mailbox), int(modseq))
            elif kind == "f" and self.on_failure is not None:
                ip, _, username = rest.partition(" ")
                self.on_failure(ip, username)
            elif kind in ("A", "K") and self.requests is not None:
                self.requests.receive(kind, rest)
            elif kind == "s" and self.on_spam_settings is not None:
                self.on_spam_settings()
        except ValueError:
            log.warning("malformed worker message %r", data[:80])


class PeerRequests:
    """Requests from one worker that every other worker must carry out and acknowledge.

    `handler` carries out a request here (in each receiving worker); `ask` sends one and
    returns how many workers acknowledged it before `timeout` (each acknowledges after
    carrying it out, so a count equal to `peers` means every worker has done it).
    """

    def __init__(self, channel: WorkerChannel, index: int, peers: int,
                 handler: Callable[[str], None]) -> None:  # fmt: skip
        self.channel = channel
        self.index = index
        self.peers = peers  # the other workers
        self.handler = handler
        self._seq = 0
        self._waiting: dict[int, tuple[list[int], asyncio.Event]] = {}
        channel.requests = self

    async def ask(self, request: str, timeout: float = 5.0) -> int:
        self._seq += 1
        seq = self._seq
        acks, done = [0], asyncio.Event()
        self._waiting[seq] = (acks, done)
        try:
            self.channel.send(f"A {self.index} {seq} {request}")
            if self.peers > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout)
            return acks[0]
        finally:
            del self._waiting[seq]

    def receive(self, kind: str, rest: str) -> None:
        if kind == "A":
            sender, seq, request = rest.split(" ", 2)
            self.handler(request)
            self.channel.send(f"K {sender} {seq}")
        else:
            to, seq = rest.split(" ")
            if int(to) != self.index:
                return  # another worker's acknowledgement, relayed to every worker
            waiting = self._waiting.get(int(seq))
            if waiting is not None:
                waiting[0][0] += 1
                if waiting[0][0] >= self.peers:
                    waiting[1].set()


def fan_out(source: socket.socket, targets: list[socket.socket]) -> int:
    """Supervisor side: forward what `source` has queued to every other worker; datagrams."""
    n = 0
    for _ in range(1024):
        try:
            data = source.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        n += 1
        for t in targets:
            if t is not source:
                with contextlib.suppress(OSError):  # full or gone: see the module docstring
                    t.send(data)
    return n
