"""IMAP sessions hibernated in IDLE: one small record per waiting client, no coroutine.

A session in IDLE (RFC 9051 6.3.13, RFC 2177) may wait for hours. Awake, it is a suspended
call chain: the accept coroutine, the session loop, the IDLE command, a reader task and a
change-hub waiter, with their futures, timers, streams and the connection core, about 21 KiB
in all (docs/benchmarks.md). Like Dovecot's imap-hibernate, a session with nothing left to do
but wait hands its connection to a `Hibernated` record and every coroutine returns:

* the record is the transport's protocol (`net.server.Connection.park`): any octet from the
  client (DONE, or anything else) wakes it; so does EOF, which ends it;
* it is attached to the change hub with a plain callback (`ChangeHub.attach`): a change to the
  selected mailbox above the MODSEQ the client was last told about wakes it;
* its IDLE timeout (RFC 9051 5.4: at least 30 minutes) is one entry in a wheel shared by
  every hibernated session of the listener (`IdleWheel`), not a timer of its own.

Waking rebuilds the session (`thaw`): the selected mailbox from its packed UID runs and the
store's listing as of now (`SelectedView.wake`, then `changes_since` the record's MODSEQ, as
QRESYNC would), the enabled extensions, the COMPRESS streams (imapd/compress.py). A new task
goes on with the IDLE command where it was: it reports what changed (EXISTS, EXPUNGE or
VANISHED, FETCH FLAGS) and hibernates again, or reads DONE and answers it.

House rules:

* A session hibernates only from a quiet point (`ImapAdapterSession.hibernate` checks it):
  nothing received and not yet handled, nothing written and not yet sent, no change waiting, no
  APPEND, no CONTEXT searches, not while the server shuts down.
* A NOTIFY session (RFC 5465) keeps its `Notifier` (what it told the client of each watched
  mailbox) in the record; the record watches the Notifier's hub keys instead of its Watch,
  and the key that woke it is handed to a new Watch on waking, so IDLE reports exactly the
  events the NOTIFY set asks for, as awake.
* Between the decision and `Connection.park` there is no `await`: nothing can arrive that
  the record would not see.
* The record holds references only to immutable or shared objects (the account and mailbox
  records, the listener's services), so a hibernated session costs what its fields cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import zlib
from array import array
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mailwright.imapd.compress import DeflateCodec
from mailwright.imapd.view import FrozenView
from mailwright.proto.imap import ast
from mailwright.proto.imap.state import State

if TYPE_CHECKING:
    from mailwright.imapd.notify import Notifier
    from mailwright.imapd.session import Session
    from mailwright.net.server import Connection
    from mailwright.store.api import Account, ChangeFeed

_REV2, _UTF8, _CONDSTORE, _QRESYNC, _UIDONLY, _SELECTED = 1, 2, 4, 8, 16, 32


class IdleWheel:
    """The IDLE timeouts of every hibernated session of a listener, with one timer.

    Sessions sit in buckets of `step` seconds (a twentieth of the timeout, at most 5 s); the
    timer fires for the earliest bucket and ends its sessions, so a session is timed out at
    most one step late."""

    __slots__ = ("_at", "_buckets", "_handle", "step")

    def __init__(self, timeout: float) -> None:
        self.step = min(5.0, max(0.05, timeout / 20))
        self._buckets: dict[int, set[Hibernated]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def add(self, rec: Hibernated, deadline: float) -> int:
        key = math.ceil(deadline / self.step)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
        bucket.add(rec)
        if self._handle is None or key < self._at:
            self._arm(key)
        return key

    def remove(self, rec: Hibernated, key: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(rec)
            if not bucket:
                del self._buckets[key]

    def _arm(self, key: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = key
        self._handle = asyncio.get_running_loop().call_at(key * self.step, self._fire)

    def _fire(self) -> None:
        self._handle = None
        now = asyncio.get_running_loop().time()
        for key in sorted(k for k in self._buckets if k * self.step <= now + 0.001):
            for rec in list(self._buckets.pop(key)):
                rec.expire()
        if self._buckets:
            self._arm(min(self._buckets))


class Home:
    """What the hibernated sessions of one listener share: the change feed, a way to make a new
    session on a connection and to serve it (imapd/listener.py), and the timeout wheel."""

    __slots__ = ("config_timeout", "hibernated", "make", "serve", "store", "wheel")

    def __init__(
        self,
        store: ChangeFeed,
        make: Callable[[Connection], Session],
        serve: Callable[[Connection, Session, ast.Idle | None], Awaitable[None]],
        idle_timeout: float,
    ) -> None:
        self.store = store
        self.make = make
        self.serve = serve
        self.config_timeout = idle_timeout
        self.wheel = IdleWheel(idle_timeout)
        #: how many sessions are hibernated now (metrics, tests)
        self.hibernated = 0


class Hibernated(asyncio.Protocol):
    """One IDLE session while it waits (see the module docstring)."""

    __slots__ = (
        "account", "bad", "bits", "bucket", "client_id", "conn", "deadline", "home", "keys",
        "notifier", "saved", "tag", "view", "window", "woke",
    )

    def __init__(
        self, s: Session, conn: Connection, home: Home, tag: str, view: FrozenView | None,
        window: bytes | None,
    ) -> None:
        assert s.account is not None
        self.conn = conn
        self.home = home
        self.tag = tag
        self.account: Account = s.account
        self.bits = (
            (_REV2 if s.rev2 else 0) | (_UTF8 if s.utf8 else 0)
            | (_CONDSTORE if s.condstore else 0) | (_QRESYNC if s.qresync else 0)
            | (_UIDONLY if s.uidonly else 0) | (_SELECTED if s.state is State.SELECTED else 0)
        )  # fmt: skip
        self.bad = s._bad_count
        self.client_id = s.client_id or None
        self.saved = array("I", s.saved_search).tobytes() if s.saved_search else None
        self.view = view
        #: COMPRESS=DEFLATE: the client's window (imapd/compress.py); None without COMPRESS
        self.window = window
        self.bucket = -1  # in the wheel while >= 0
        #: the IDLE timeout (the loop's clock): kept from the record before when a change woke
        #: the session, else set by `start` (RFC 9051 5.4: the client's inactivity counts)
        self.deadline: float | None = s.idle_deadline
        #: RFC 5465 NOTIFY: the session's notifier (its snapshots; its Watch is dropped while
        #: asleep) and the hub keys it watched, which this record watches instead
        self.notifier: Notifier | None = s.notifier
        if s.notifier is not None:
            self.keys: tuple[int, ...] = tuple(s.notifier.watch.keys)
        else:  # a tuple: a frozenset of one key is 216 bytes, this 48
            self.keys = (view.mailbox.id,) if view is not None else ()
        self.woke = 0  # the hub key whose change woke it

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Begin waiting (the connection is parked on this record)."""
        home = self.home
        home.hibernated += 1
        if self.notifier is not None:
            del self.notifier.watch  # closed by the session as it returned; thaw makes another
        for key in self.keys:
            home.store.changes.attach(key, self)
        if self.deadline is None:
            self.deadline = asyncio.get_running_loop().time() + home.config_timeout
        self.bucket = home.wheel.add(self, self.deadline)

    def _stop(self) -> bool:
        """Stop waiting; False when it already had."""
        if self.bucket < 0:
            return False
        home = self.home
        home.hibernated -= 1
        home.wheel.remove(self, self.bucket)
        self.bucket = -1
        for key in self.keys:
            home.store.changes.detach(key, self)
        return True

    def _wake(self, reason: str, data: bytes) -> None:
        if not self._stop():
            return
        self.conn.unpark(lambda conn: self._resume(conn, reason), data)

    async def _resume(self, conn: Connection, reason: str) -> None:
        session = self.thaw(conn, reason)
        await self.home.serve(conn, session, ast.Idle(self.tag))

    def _end(self, result: str, goodbye: bytes = b"") -> None:
        self._stop()
        if goodbye and self.conn.transport is not None:
            with contextlib.suppress(Exception):
                self.conn.transport.write(self._encode(goodbye))  # type: ignore[attr-defined]
        self.conn.end(result)

    def _encode(self, line: bytes) -> bytes:
        if self.window is None:
            return line
        # the last thing sent ended with a sync flush: a new compressor continues the stream
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(line) + c.flush(zlib.Z_SYNC_FLUSH)

    # -- what wakes it ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._wake("data", data)

    def eof_received(self) -> bool | None:
        self._end("eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("dropped" if exc is not None else "eof")

    def _notify(self, key: int, modseq: int) -> None:
        """The change hub: *key* (the selected mailbox) is now at *modseq*."""
        view = self.view
        if view is not None and key == view.mailbox.id and modseq <= view.modseq:
            return  # the client knows it already (our own change, a relayed duplicate)
        self.woke = key
        self._wake("change", b"")

    def expire(self) -> None:
        """The IDLE timeout passed (as the awake IDLE says it, imapd/cmd_auth.py)."""
        self._end("closed", b"* BYE IDLE timed out\r\n")

    def shutdown(self) -> None:
        """The server stops gracefully (net.server.ListenerSet.shutdown)."""
        self._end("shutdown", b"* BYE Server shutting down\r\n")

    # -- the session again -----------------------------------------------------------------

    def thaw(self, conn: Connection, reason: str) -> Session:
        """A session as it was before it hibernated, inside its IDLE command."""
        s = self.home.make(conn)
        bits = self.bits
        s.state = State.SELECTED if bits & _SELECTED else State.AUTHENTICATED
        s.account = self.account
        s.rev2 = bool(bits & _REV2)
        s.utf8 = bool(bits & _UTF8)
        s.condstore = bool(bits & _CONDSTORE)
        s.qresync = bool(bits & _QRESYNC)
        s.uidonly = bool(bits & _UIDONLY)
        s._bad_count = self.bad
        if self.client_id is not None:
            s.client_id = self.client_id
        s.conn = s._new_connection()  # authenticated now: the limits after login
        s.conn.expect_idle_done()
        if self.window is not None:
            s.codec = DeflateCodec.resume(self.window)
        if self.view is not None:
            s.select_view(self.view.thaw())
            assert s.subscription is not None
            # the next sync point asks the store: a change this record was not woken for (one
            # the NOTIFY set leaves to the end of commands) is reported then
            s.subscription._notify(self.view.mailbox.id, 0)
        notifier = self.notifier
        if notifier is not None:
            notifier.watch = watch = self.home.store.changes.watch()
            watch.watch(frozenset(self.keys))
            if reason == "change":
                watch._notify(self.woke, 0)  # what woke it is news to the notifier
            s.notifier = notifier
        if self.saved is not None:  # after select_view, which forgets the saved search
            saved = array("I")
            saved.frombytes(self.saved)
            s.saved_search = saved.tolist()
        s.idle_resumed = reason
        if reason == "change":  # no word from the client: its IDLE times out as it would have
            s.idle_deadline = self.deadline
        return s
