"""The IMAP session: parsed commands in, responses out, over the Store interface.

House rules (read before changing anything here):

* Every command goes through :meth:`Session.execute`: state check from the one table in
  ``proto.imap.state``, the handler from ``HANDLERS``, then the sync point and the tagged
  response.  Handlers raise :class:`No` / :class:`ProtocolError` (BAD); nothing else is
  expected, and anything else is logged once and answered ``NO [SERVERBUG]``.
* Sequence numbers belong to the session (``view.SelectedView``).  Other sessions' changes
  reach the client only through :meth:`Session.sync`, called at the end of each command and
  during IDLE; expunges are held back while FETCH, STORE or SEARCH (by sequence number) run
  (RFC 9051 7.5.1).
* Never await a socket write while holding store state: store calls return records; the
  responses are written afterwards.
* Large responses are written message by message with ``drain`` in between, so memory per
  session stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailwright.imapd.compress import DeflateCodec, DeflateError
from mailwright.imapd.roles import ImapStore
from mailwright.imapd.view import SelectedView, Updates
from mailwright.proto.imap import ast
from mailwright.proto.imap import response as R
from mailwright.proto.imap.connection import (
    NEED_DATA,
    AppendData,
    AppendEnd,
    AppendMessageEnd,
    AppendMessageStart,
    CatenateTextStart,
    CatenateUrlPart,
    ContinuationRequest,
    Event,
    IdleDone,
    ImapConnection,
    SaslResponse,
)
from mailwright.proto.imap.errors import ProtocolError
from mailwright.proto.imap.state import State, check_allowed, next_state
from mailwright.proto.imap.uidonly import check_uid_only
from mailwright.store.api import AccessDenied, Account, MessageRecord
from mailwright.store.changes import Subscription

log = logging.getLogger("mailwright.imapd")


class Transport(Protocol):
    """What the session needs from a connection (the listener adapts ``net.Connection``)."""

    peer_ip: str

    @property
    def tls(self) -> bool: ...

    @property
    def tls_available(self) -> bool: ...

    @property
    def is_loopback(self) -> bool: ...

    async def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def start_tls(self, response: bytes) -> None:
        """Stop reading, drop buffered plaintext, send *response*, then do the handshake."""
        ...


class AuthBackend(Protocol):
    async def authenticate(self, username: str, password: str, ip: str) -> Account | None: ...


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Limits and identity; built from the server config by the listener."""

    hostname: str = "localhost"
    max_line: int = 65536
    max_literal: int = 1 << 20
    #: one command, literals included (APPEND message data is streamed, not counted)
    max_command: int = 4 << 20
    max_append: int = 50 * 1024 * 1024
    #: before authentication (RFC 7888 LITERAL-: no literal above 4,096 octets)
    preauth_literal: int = 4096
    preauth_command: int = 32768
    preauth_timeout: float = 60.0
    # RFC 9051 5.4: the autologout timer is at least 30 minutes once authenticated.
    idle_timeout: float = 1800.0
    max_bad_commands: int = 50
    version: str = "0.1"
    #: RFC 9585 INPROGRESS: a long command reports its progress at most this often (seconds;
    #: 0 reports at every step, which the tests use)
    progress_interval: float = 5.0
    #: RFC 5464 METADATA: the largest annotation value, and annotations per account
    metadata_max_value: int = 64 * 1024
    metadata_max_entries: int = 500
    #: RFC 5465 NOTIFY: responses due at once beyond which the client gets
    #: NOTIFICATIONOVERFLOW, and the most mailboxes one session watches (imapd/notify.py)
    notify_max_pending: int = 1000
    notify_max_mailboxes: int = 1000


class No(Exception):
    """Command failed: tagged NO with an optional response code."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


@dataclass(frozen=True, slots=True)
class Ok:
    """Tagged OK text and code; ``sent`` when the handler already wrote it (STARTTLS)."""

    text: str = ""
    code: str | None = None
    sent: bool = False


class CloseConnection(Exception):
    """End the session after writing what is pending (LOGOUT, BYE, fatal errors)."""


class Hibernate(Exception):  # noqa: N818 - a signal, as CloseConnection
    """IDLE has nothing to do until the client writes or the mailbox changes: the session's
    coroutines return, and *record* (imapd/hibernate.py) keeps the connection meanwhile."""

    def __init__(self, record: Any) -> None:
        super().__init__("hibernate")
        self.record = record


Handler = Callable[["Session", Any], Awaitable[Ok | None]]

#: Filled by the command modules (cmd_auth, cmd_mailbox, cmd_selected) at import time.
HANDLERS: dict[type, Handler] = {}


def handles(*types: type) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for t in types:
            HANDLERS[t] = fn
        return fn

    return deco


# Commands during which EXPUNGE responses must not be sent (RFC 9051 7.5.1).
def _forbids_expunge(cmd: ast.Command) -> bool:
    return isinstance(cmd, _NO_EXPUNGE) and not cmd.uid


# a tuple: isinstance with a union is several times slower, and this runs twice a command
_NO_EXPUNGE = (ast.Fetch, ast.Store, ast.Search, ast.Sort, ast.Thread)


_APPEND_EVENTS = (
    AppendMessageStart, AppendData, AppendMessageEnd, AppendEnd, CatenateUrlPart, CatenateTextStart,
)

_PRESYNC = (
    ast.Fetch, ast.Store, ast.Search, ast.Sort, ast.Thread, ast.Copy, ast.Move, ast.MultiSearch,
)


@dataclass(eq=False)
class Session:
    """One IMAP connection's state and I/O loop."""

    transport: Transport
    store: ImapStore
    auth: AuthBackend
    config: SessionConfig = field(default_factory=SessionConfig)
    state: State = State.NOT_AUTHENTICATED
    account: Account | None = None
    # enabled extensions (RFC 5161)
    rev2: bool = False
    utf8: bool = False
    condstore: bool = False
    qresync: bool = False
    #: RFC 9586: no message sequence numbers in either direction
    uidonly: bool = False
    view: SelectedView | None = None
    subscription: Subscription | None = None
    saved_search: list[int] = field(default_factory=list)
    #: RFC 5267 CONTEXT=SEARCH/SORT: searches kept up to date, by tag (imapd/context.py)
    contexts: dict[str, Any] = field(default_factory=dict)
    #: Set by the listener when the server shuts down gracefully.
    closing: asyncio.Event | None = None
    #: COMPRESS=DEFLATE (RFC 4978), once enabled
    codec: DeflateCodec | None = None
    client_id: dict[str, str | None] = field(default_factory=dict)
    #: the sans-I/O connection core: framing, literals, limits (proto/imap/connection.py)
    conn: ImapConnection = field(init=False)
    #: the APPEND being streamed into blob writers (cmd_mailbox.AppendUpload), if any
    upload: Any = None
    #: RFC 5465: the NOTIFY set in force (notify.Notifier), if any
    notifier: Any = None
    _bad_count: int = 0
    _out_pending: int = 0
    #: what the command has answered so far, written to the socket in one go by `flush`:
    #: one send per command rather than one per untagged line (None while nothing waits, so
    #: an idle session holds no list)
    _out: list[bytes] | None = None
    #: why a session rebuilt from hibernation was woken ("data", "change"), until its IDLE
    #: goes on (imapd/hibernate.py)
    idle_resumed: str | None = None
    #: when the IDLE of a session woken by a change times out (the loop's clock): a change is
    #: no activity of the client, so hibernating again keeps the deadline (imapd/hibernate.py)
    idle_deadline: float | None = None
    #: the record that keeps the connection once `run` returned "hibernated"
    hibernated: Any = None

    def __post_init__(self) -> None:
        self.conn = self._new_connection()

    def _new_connection(self) -> ImapConnection:
        cfg = self.config
        return ImapConnection(
            max_line=cfg.max_line,
            max_literal=cfg.max_literal,
            max_command=cfg.max_command,
            max_append=cfg.max_append,
            preauth_literal=cfg.preauth_literal,
            preauth_command=cfg.preauth_command,
            utf8=True,  # lenient: 8-bit UTF-8 in quoted strings is accepted from anyone
            authenticated=self.state in (State.AUTHENTICATED, State.SELECTED),
        )

    # -- output --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.codec is not None:
            data = self.codec.compress(data)
            if not data:
                return
        if self._out is None:
            self._out = [data]
        else:
            self._out.append(data)
        self._out_pending += len(data)

    async def flush(self) -> None:
        self._out_pending = 0
        if self.codec is not None:
            tail = self.codec.flush()
            if tail:  # already compressed: straight to the output
                self._out = [*(self._out or ()), tail]
        out = self._out
        if out is not None:
            self._out = None
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        await self.transport.drain()

    async def maybe_flush(self) -> None:
        """Drain when enough is buffered (streaming big FETCH/SEARCH answers)."""
        if self._out_pending >= 256 * 1024:
            await self.flush()

    def untagged(self, data: bytes) -> None:
        self.write(R.untagged(data))

    def untagged_status(self, status: str, text: str, code: str | None = None) -> None:
        self.write(R.encode(R.Untagged.status(status, text, code)))

    # -- capabilities --------------------------------------------------------------------

    @property
    def plaintext_ok(self) -> bool:
        """RFC 9051 11.1 / RFC 8314: passwords only over TLS, except from loopback."""
        return self.transport.tls or self.transport.is_loopback

    def capabilities(self) -> list[str]:
        # RFC 7888: LITERAL- while the 4,096-octet limit applies (before login), LITERAL+ after
        literal = "LITERAL-" if self.state is State.NOT_AUTHENTICATED else "LITERAL+"
        caps = ["IMAP4rev1", "IMAP4rev2", literal, "SASL-IR", "ID", "ENABLE", "IDLE"]
        if self.state is State.NOT_AUTHENTICATED:
            if self.transport.tls_available:
                caps.append("STARTTLS")
            if self.plaintext_ok:
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")
            return caps
        caps += [
            "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED",
            "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE", "CONDSTORE", "QRESYNC",
            "ESEARCH", "SEARCHRES", "WITHIN", "BINARY", "UTF8=ACCEPT", "STATUS=SIZE",
            "STATUS=DELETED", "PREVIEW", "OBJECTID",
            "MULTIAPPEND", f"APPENDLIMIT={self.config.max_append}", "QUOTA",
            "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "UIDONLY", "REPLACE", "PARTIAL", "SAVEDATE", "MULTISEARCH",
            "INPROGRESS", "METADATA", "METADATA-SERVER", "LIST-METADATA",
        ]
        caps += ["CATENATE", "URLAUTH"]  # RFC 4469, RFC 4467 (imapd/catenate.py, cmd_urlauth.py)
        # RFC 4314 ACL (t, e, x, k are rights of their own) and RFC 8440 LIST-MYRIGHTS
        caps += ["ACL", "RIGHTS=texk", "LIST-MYRIGHTS"]
        caps.append("NOTIFY")  # RFC 5465 (imapd/notify.py)
        if self.codec is None:
            caps.append("COMPRESS=DEFLATE")
        from mailwright.imapd import content

        if content.sortthread_available():
            caps += ["SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT",
                     "THREAD=REFERENCES", "CONTEXT=SEARCH", "CONTEXT=SORT"]
        return caps

    def capability_code(self) -> str:
        return "CAPABILITY " + " ".join(self.capabilities())

    # -- the loop ------------------------------------------------------------------------

    async def run(self, resumed: ast.Idle | None = None) -> str:
        """Serve the connection until LOGOUT or EOF; returns a short result for the log.

        "hibernated": IDLE handed the connection to ``self.hibernated`` (imapd/hibernate.py);
        a session rebuilt from it runs again with *resumed*, the IDLE command it was in."""
        if resumed is None:
            self.untagged_status("OK", f"{self.config.hostname} Mailwright IMAP ready",
                                 self.capability_code())
            await self.flush()
        try:
            if resumed is not None:
                await self.execute(resumed)
                await self.flush()
            while self.state is not State.LOGOUT:
                event = await self.next_event()
                if event is None:
                    return "shutdown" if self.closing is not None and self.closing.is_set() else "eof"
                if isinstance(event, ContinuationRequest):
                    self.write(self.conn.accept_literal())
                    await self.flush()
                    continue
                if isinstance(event, _APPEND_EVENTS):
                    await self._append_event(event)
                    await self.flush()
                    continue
                if isinstance(event, IdleDone | SaslResponse):
                    raise ProtocolError("unexpected continuation line")  # pragma: no cover
                await self.execute(event)
                await self.flush()
        except CloseConnection:
            await self.flush()
            return "closed"
        except Hibernate as h:
            self.hibernated = h.record
            return "hibernated"
        finally:
            self.abort_upload()
            self._unselect()
            if self.notifier is not None:
                self.notifier.close()
                self.notifier = None
        return "logout"

    async def _append_event(
        self,
        event: AppendMessageStart | AppendData | AppendMessageEnd | AppendEnd | CatenateUrlPart
        | CatenateTextStart,
    ) -> None:
        """APPEND streams its messages into blob writers (cmd_mailbox.AppendUpload); the
        command itself runs through execute() once complete, like every other."""
        from mailwright.imapd import cmd_mailbox

        if isinstance(event, AppendEnd):
            upload, self.upload = self.upload, None
            await self.execute(upload.command(event.tag), upload=upload)
            return
        try:
            if isinstance(event, AppendMessageStart):
                await cmd_mailbox.append_message_start(self, event)
            elif isinstance(event, AppendData):
                self.upload.write(event.data)
            elif isinstance(event, CatenateUrlPart | CatenateTextStart):
                # RFC 4469: the parts of a CATENATE message (imapd/catenate.py)
                from mailwright.imapd import catenate

                await catenate.part(self, event)
            else:
                await self.upload.message_end()
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            # ours, never the peer's: the command fails (at once if its literal can still be
            # refused, else when it ends) and the session goes on
            log.exception("IMAP APPEND failed while receiving")
            if isinstance(event, AppendMessageStart | CatenateTextStart) and self.conn.awaiting_answer:
                self.conn.reject_literal()
                self.abort_upload()
                self.write(R.tagged(event.tag, "NO", "internal server error", "SERVERBUG"))
            elif self.upload is not None:
                self.upload.fail(No("internal server error", "SERVERBUG"))

    def abort_upload(self) -> None:
        if self.upload is not None:
            self.upload.abort()
            self.upload = None

    async def next_event(self) -> Event | None:
        """The next event of the connection core, reading more as needed; None at EOF or timeout.

        Protocol errors from the core are answered here (BAD) and reading continues.
        """
        while True:
            try:
                ev = self.conn.next_event()
            except ProtocolError as exc:
                self.abort_upload()  # the command it belonged to was dropped
                self.write(exc.to_bytes())
                await self.flush()
                self._bad_count += 1
                if exc.fatal:
                    self.untagged_status("BYE", "Command refused; closing the connection")
                    raise CloseConnection from None
                if self._bad_count > self.config.max_bad_commands:
                    self.untagged_status("BYE", "Too many invalid commands")
                    raise CloseConnection from None
                continue
            if ev is not NEED_DATA:
                # never PAUSED: every announced literal is answered before the next call
                return ev  # type: ignore[return-value]
            timeout = (
                self.config.preauth_timeout
                if self.state is State.NOT_AUTHENTICATED
                else self.config.idle_timeout
            )
            if self.codec is not None and self.codec.pending:
                self.conn.receive_data(self._inflate(b""))
                continue
            if self.closing is not None and self.closing.is_set() and not self.conn.in_command:
                await self._bye("Server shutting down")
                return None
            data = await self._read(timeout)
            if data is None:
                shutting = self.closing is not None and self.closing.is_set()
                await self._bye("Server shutting down" if shutting else "Autologout; idle for too long")
                return None
            if not data:
                return None
            if self.codec is not None:
                # RFC 4978: inflated octets go through the same limits; the codec inflates
                # at most one bounded chunk per call (max_length), the rest waits its turn.
                data = self._inflate(data)
            self.conn.receive_data(data)

    def _inflate(self, data: bytes) -> bytes:
        assert self.codec is not None
        try:
            return self.codec.decompress(data)
        except DeflateError:
            raise CloseConnection from None

    async def _read(self, timeout: float) -> bytes | None:
        """Bytes from the peer; None on timeout or when a graceful shutdown begins between
        commands (a command being read is finished first)."""
        if self.notifier is not None and not self.conn.in_command and not self.conn.idling:
            from mailwright.imapd import notify

            return await notify.read_between_commands(self, timeout)  # RFC 5465 3
        if self.closing is None or self.conn.in_command:
            try:
                return await asyncio.wait_for(self.transport.read(), timeout)
            except TimeoutError:
                return None
        read = asyncio.ensure_future(self.transport.read())
        stop = asyncio.ensure_future(self.closing.wait())
        try:
            done, _ = await asyncio.wait(
                {read, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
        if read in done:
            return read.result()
        read.cancel()
        return None

    async def _bye(self, text: str) -> None:
        self.untagged_status("BYE", text)
        await self.flush()

    async def execute(self, cmd: ast.Command, *, upload: Any = None) -> None:
        """Run one command; ``upload`` carries a streamed APPEND's staged messages."""
        started = time.monotonic()
        status = "OK"
        try:
            check_allowed(cmd, self.state)
            if self.uidonly:
                check_uid_only(cmd)  # RFC 9586 3
            handler = HANDLERS.get(type(cmd))
            if handler is None:
                raise No("command not implemented")
            if self.view is not None and isinstance(cmd, _PRESYNC):
                # Learn about other sessions' changes first (expunges stay held back for
                # FETCH/STORE/SEARCH), so that expunged messages are known as such.
                await self.sync(cmd)
            if upload is not None:
                self.upload = upload  # the APPEND handler takes it
            try:
                result = await handler(self, cmd)
            except AccessDenied as exc:
                # RFC 4314 4: the store refused for a right the user lacks
                raise No(f"You lack the right(s) {exc.needed} on this mailbox", "NOPERM") from None
            ok = result or Ok()
            self.state = next_state(self.state, cmd, True)
            self.conn.authenticated = self.state in (State.AUTHENTICATED, State.SELECTED)
            if self.state is not State.LOGOUT:
                if self.notifier is not None:
                    await self.notifier.deliver(self, cmd, code=ok.code)  # RFC 5465
                await self.sync(cmd)
            if not ok.sent:
                self.write(R.tagged(cmd.tag, "OK", ok.text or f"{_name(cmd)} completed", ok.code))
        except No as exc:
            status = "NO"
            self.state = next_state(self.state, cmd, False)
            if self.state is State.AUTHENTICATED and self.view is not None:
                self._unselect()
            if self.notifier is not None:
                await self.notifier.deliver(self, cmd)  # RFC 5465
            await self.sync(cmd)
            self.write(R.tagged(cmd.tag, "NO", exc.text, exc.code))
        except ProtocolError as exc:
            status = "BAD"
            self._bad_count += 1
            if self.state is State.SELECTED and self.view is None:
                self.state = State.AUTHENTICATED  # a handler deselected before failing
            self.write(exc.with_tag(cmd.tag).to_bytes())
        except (CloseConnection, Hibernate):
            raise
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            status = "NO"
            if self.state is State.SELECTED and self.view is None:
                self.state = State.AUTHENTICATED
            log.exception("IMAP command %s failed", _name(cmd))
            self.write(R.tagged(cmd.tag, "NO", "internal server error", "SERVERBUG"))
        finally:
            if upload is not None:
                upload.abort()  # nothing once the store took the messages
                if self.upload is upload:
                    self.upload = None
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "imap command=%s status=%s duration=%.3f", _name(cmd), status,
                time.monotonic() - started,
            )

    # -- selected mailbox ----------------------------------------------------------------

    def select_view(self, view: SelectedView) -> None:
        self._unselect()
        self.view = view
        self.subscription = self.store.changes.subscribe(view.mailbox.id)

    def _unselect(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None
        self.view = None
        self.saved_search = []
        self.contexts.clear()

    def unselect(self) -> None:
        self._unselect()

    def hibernate(self, tag: str) -> object | None:
        """A record that can keep the connection while IDLE waits (imapd/hibernate.py), or
        None: this session stays as it is. Only the network adapter can hibernate a session
        (imapd/listener.py); a session on another transport never does."""
        return None

    def hibernate_view(self) -> None:
        """While IDLE only waits, hold the selected mailbox in as little memory as possible."""
        if self.view is not None:
            self.view.hibernate()

    async def wake_view(self) -> None:
        """Before anything reads the view again: rebuild what `hibernate_view` dropped."""
        view = self.view
        if view is not None and view.hibernated:
            view.wake((await self.store.listing(view.mailbox.id)).records.values())

    async def sync(self, cmd: ast.Command | None, *, force: bool = False) -> None:
        """Tell the client about other sessions' changes, if any (the sync point)."""
        view = self.view
        if view is None or self.subscription is None:
            return
        allow_expunge = cmd is None or not _forbids_expunge(cmd)
        if not force and not self.subscription.pending:
            if allow_expunge and view.pending_expunge:
                self.send_updates(Updates(expunged=view.flush_pending()))
            return
        self.subscription.clear()
        try:
            cs = await self.store.changes_since(view.mailbox.id, view.modseq)
        except Exception:  # noqa: BLE001 - the mailbox was deleted under us
            self.untagged_status("BYE", "Selected mailbox was deleted")
            raise CloseConnection from None
        up = view.apply(cs, allow_expunge=allow_expunge)
        if up.new_uids:
            await self.claim_recent(up.new_uids)
        if self.notifier is not None and not self.notifier.wants_flags(self):
            up.flags = []  # RFC 5465 3.1/5.1: NOTIFY asked for no FlagChange here
        self.send_updates(up)
        if self.contexts and allow_expunge:
            from mailwright.imapd import context

            await context.refresh(self)

    async def claim_recent(self, uids: list[int]) -> None:
        """RFC 3501 2.3.2: messages new to the mailbox are ``\\Recent`` to the first session that
        sees them (kept per mailbox, as Dovecot does).  IMAP4rev2 sessions neither see nor
        take them (RFC 9051 removed it); EXAMINE sees them without taking them."""
        view = self.view
        if view is None or self.rev2 or not uids:
            return
        # *uids* are ascending and all above what the view held before, so they make one
        # range (the ends, not a pass over a 100,000-message SELECT)
        low, high = uids[0], uids[-1]
        first = await self.store.claim_recent(view.mailbox.id, high, not view.readonly)
        view.add_recent(max(first, low), high)

    def send_updates(self, up: Updates) -> None:
        view = self.view
        assert view is not None
        if up.expunged:
            if self.qresync or self.uidonly:  # RFC 9586 3: VANISHED, never EXPUNGE
                from mailwright.imapd.util import uid_set_string

                self.untagged(b"VANISHED " + uid_set_string([u for _, u in up.expunged]).encode())
            else:
                for seq, _uid in up.expunged:
                    self.untagged(b"%d EXPUNGE" % seq)
        if up.new_keywords:
            self.untagged(b"FLAGS " + R.flag_list(self.mailbox_flags()))
        if up.exists is not None:
            self.untagged(b"%d EXISTS" % up.exists)
            if not self.rev2:
                self.untagged(b"%d RECENT" % view.recent_count())
        for seq, rec in up.flags:
            self.untagged(self.flags_fetch(seq, rec))

    def flags_fetch(self, seq: int, rec: MessageRecord, *, with_uid: bool = False) -> bytes:
        from mailwright.imapd.util import ordered_flags

        if self.view is not None and not self.rev2:
            rec = self.view.shown(rec)
        parts = [b"FLAGS " + R.flag_list(ordered_flags(rec.flags))]
        if self.uidonly:
            # RFC 9586 3.3: UIDFETCH names the message by its UID
            if self.condstore:
                parts.append(b"MODSEQ (%d)" % rec.modseq)
            return b"%d UIDFETCH (" % rec.uid + b" ".join(parts) + b")"
        if with_uid or self.qresync:
            # RFC 7162 3.2.4: with QRESYNC, unsolicited FETCH carries the UID.
            parts.insert(0, b"UID %d" % rec.uid)
        if self.condstore:
            parts.append(b"MODSEQ (%d)" % rec.modseq)
        return b"%d FETCH (" % seq + b" ".join(parts) + b")"

    def mailbox_flags(self) -> list[str]:
        assert self.view is not None
        return ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft",
                *sorted(self.view.keywords)]

    def enable_condstore(self) -> None:
        """RFC 7162 3.1: CONDSTORE-enabling commands switch the session on for good."""
        if not self.condstore:
            self.condstore = True

    # -- mailbox names -------------------------------------------------------------------

    def name_in(self, name: str) -> str:
        from mailwright.imapd import names

        try:
            return names.from_client(name, utf8=self.utf8 or not name.isascii())
        except names.NameError_ as exc:
            raise No(str(exc), "CANNOT") from None

    def name_out(self, name: str) -> bytes:
        from mailwright.imapd import names

        return R.astring(names.to_client(name, utf8=self.utf8), utf8=self.utf8)

    @property
    def account_id(self) -> int:
        assert self.account is not None
        return self.account.id


class Progress:
    """RFC 9585 INPROGRESS: untagged ``OK [INPROGRESS ("tag" done goal)]`` while a long command
    runs, at most once per ``progress_interval``; ``None`` counts when they are unknown."""

    def __init__(self, session: Session, tag: str, goal: int | None, text: str) -> None:
        self.session = session
        self.tag = tag
        self.goal = goal
        self.text = text
        self.interval = session.config.progress_interval
        self._last = time.monotonic()

    def _send(self, done: int | None) -> None:
        # RFC 9585 3: the goal is a non-zero number, or both are NIL
        counts = "NIL NIL" if done is None or not self.goal else f"{done} {self.goal}"
        tag = R.quoted(self.tag).decode("ascii", "replace")
        self.session.untagged_status("OK", self.text, f"INPROGRESS ({tag} {counts})")

    async def step(self, done: int | None) -> None:
        """Report *done* (of the goal) if the interval has passed since the last report."""
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._send(done)
            await self.session.flush()

    async def around(self, work: Awaitable[Any]) -> Any:
        """Await *work* (one store call that cannot report steps), reporting NIL counts every
        interval while it runs."""
        task = asyncio.ensure_future(work)
        # the store call runs to its end even if reporting fails (the client went away)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        while True:
            wait = self.interval - (time.monotonic() - self._last)
            if wait <= 0:
                await self.step(None)
                wait = self.interval
            done, _ = await asyncio.wait({task}, timeout=max(wait, 0.05))
            if done:
                return task.result()


def _name(cmd: ast.Command) -> str:
    n = type(cmd).__name__.upper().removesuffix("CMD")
    if isinstance(cmd, ast.MultiSearch):
        n = "ESEARCH"
    if getattr(cmd, "uid", False) is True:
        return "UID " + n
    return n
