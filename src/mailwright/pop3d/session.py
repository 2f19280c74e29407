"""POP3 session logic: commands from the protocol core, answers from the store (RFC 1939).

House rules:
- No sockets here; the adapter (listener.py) moves bytes.  Every method returns the reply.
- The maildrop lock (RFC 1939 8) is taken at login and released by ``close()``, which the
  adapter always calls, whatever way the connection ends.
- Deletions are applied only by QUIT in TRANSACTION (the UPDATE state, RFC 1939 6), in one
  store call, so a dropped connection deletes nothing.
- \\Seen flags from RETR are collected and written in one transaction at QUIT or at the
  end of the connection (a dropped download still counts as read), since one store
  transaction per RETR would dominate a bulk download.
- RETR n starts reading message n+1 from the store while n goes out: clients download in
  order, so the store's read latency hides behind the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from mailwright.pop3d.roles import Pop3Store
from mailwright.proto import pop3, sasl
from mailwright.store.api import Account, FlagOp, Mailbox, NotFound, StoreError

from .maildrop import Maildrop, NoSuchMessage

log = logging.getLogger("mailwright.pop3d")

MECHANISMS = ("PLAIN",)


class PasswordChecker(Protocol):
    """What the session needs of ``mailwright.accounts.authenticator.Authenticator``."""

    async def authenticate(self, username: str, password: str, ip: str) -> Account | None: ...


@dataclass(frozen=True, slots=True)
class SessionSettings:
    implementation: str = "Mailwright"
    lock_ttl: float = 900.0  # longer than the idle timeout, refreshed while commands flow
    seen_batch: int = 10_000  # RETRs whose \Seen flags are written before QUIT, if that many


class Pop3Session:
    """One POP3 client's view of its maildrop: ``handle(command) -> reply``, then ``close()``.

    ``owner`` names the session in the store's maildrop lock (node and connection), so a
    lock left by a crashed node can be told apart and expires after ``lock_ttl``.
    """

    def __init__(
        self,
        store: Pop3Store,
        checker: PasswordChecker,
        *,
        peer_ip: str,
        loopback: bool,
        tls: bool,
        tls_available: bool,
        owner: str,
        settings: SessionSettings | None = None,
    ) -> None:
        self.store = store
        self.checker = checker
        self.peer_ip = peer_ip
        self.loopback = loopback
        self.tls = tls
        self.tls_available = tls_available
        self.owner = owner
        self.settings = settings or SessionSettings()
        self.account: Account | None = None
        self.maildrop: Maildrop | None = None
        self.deleted_count = 0
        self._user: str | None = None
        self._mechanism: sasl.ServerMechanism | None = None
        self._locked_at = 0.0
        self._seen: set[int] = set()
        self._closed = False
        self._prefetch: tuple[int, asyncio.Future[bytes]] | None = None
        self._dispatch: dict[type[pop3.Command], Callable[[pop3.Command], Awaitable[pop3.Reply]]] = {
            pop3.Capa: self._capa,
            pop3.Stls: self._stls,
            pop3.User: self._user_cmd,
            pop3.Pass: self._pass,
            pop3.AuthList: self._auth_list,
            pop3.Auth: self._auth,
            pop3.AuthResponse: self._auth_response,
            pop3.AuthCancel: self._auth_cancel,
            pop3.Quit: self._quit,
            pop3.Stat: self._stat,
            pop3.List: self._list,
            pop3.Uidl: self._uidl,
            pop3.Retr: self._retr,
            pop3.Top: self._top,
            pop3.Dele: self._dele,
            pop3.Noop: self._noop,
            pop3.Rset: self._rset,
        }

    # -- entry points used by the adapter -------------------------------------------------

    def greeting(self) -> pop3.Reply:
        return pop3.Ok(f"{self.settings.implementation} POP3 ready")

    async def handle(self, command: pop3.Command) -> pop3.Reply:
        """The reply to one command; the core has already checked grammar and state."""
        handler = self._dispatch.get(type(command))
        if handler is None:  # pragma: no cover - the core only yields known commands
            return pop3.Err("Command not implemented")
        try:
            if self.account is not None:
                await self._refresh_lock()
            return await handler(command)
        except Exception:  # noqa: BLE001 - one answer for any failure, never a traceback to the peer
            log.exception("pop3 %s failed for %s", type(command).__name__,
                          self.account.address if self.account else "-")
            return pop3.Err("Temporary server failure, try again later", pop3.Code.SYS_TEMP)

    def tls_started(self) -> None:
        self.tls = True
        self.tls_available = False

    async def close(self) -> None:
        """End the session without UPDATE: keep every message, save \\Seen, unlock."""
        if self._closed:
            return
        self._closed = True
        self._drop_prefetch()
        try:
            await self._flush_seen()
        except StoreError:
            log.exception("pop3: could not save \\Seen flags")
        await self._unlock()

    @property
    def plaintext_allowed(self) -> bool:
        # Passwords travel in clear with USER/PASS and PLAIN: only under TLS or on loopback.
        return self.tls or self.loopback

    # -- AUTHORIZATION state ----------------------------------------------------------------

    async def _capa(self, _: pop3.Command) -> pop3.Reply:
        before_login = self.account is None
        lines = pop3.capabilities(
            user=before_login and self.plaintext_allowed,
            sasl=MECHANISMS if before_login and self.plaintext_allowed else (),
            stls=before_login and self.tls_available and not self.tls,
            implementation=self.settings.implementation,
        )
        return pop3.MultiLine("Capability list follows", lines=lines)

    async def _stls(self, _: pop3.Command) -> pop3.Reply:
        if not self.tls_available or self.tls:
            return pop3.Err("TLS is not available")
        return pop3.Ok("Begin TLS negotiation")

    def _plaintext_refused(self) -> pop3.Err:
        return pop3.Err("Plaintext authentication needs TLS, use STLS first", pop3.Code.AUTH)

    async def _user_cmd(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.User)
        if not self.plaintext_allowed:
            return self._plaintext_refused()
        # Always +OK: telling unknown names apart would let anyone enumerate accounts.
        self._user = command.name
        return pop3.Ok()

    async def _pass(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.Pass)
        user, self._user = self._user, None
        if user is None or not self.plaintext_allowed:
            return self._plaintext_refused()
        return await self._login(user, command.password)

    async def _auth_list(self, _: pop3.Command) -> pop3.Reply:
        return pop3.MultiLine(lines=MECHANISMS if self.plaintext_allowed else ())

    async def _auth(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.Auth)
        if not self.plaintext_allowed:
            return self._plaintext_refused()
        mechanism = sasl.server_mechanism(command.mechanism)
        if mechanism is None:  # pragma: no cover - the core checked the mechanism list
            return pop3.Err("Unsupported authentication mechanism")
        self._mechanism = mechanism
        return await self._sasl_step(mechanism.start(command.initial_response))

    async def _auth_response(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.AuthResponse)
        if self._mechanism is None:  # pragma: no cover - the core tracks the exchange
            return pop3.Err("No authentication in progress")
        return await self._sasl_step(self._mechanism.step(command.data))

    async def _auth_cancel(self, _: pop3.Command) -> pop3.Reply:
        self._mechanism = None
        # RFC 5034 4: a cancelled exchange is answered with -ERR.
        return pop3.Err("Authentication cancelled")

    async def _sasl_step(self, step: sasl.SaslStep) -> pop3.Reply:
        if isinstance(step, sasl.Challenge):
            return pop3.Continuation(step.data)
        self._mechanism = None
        if isinstance(step, sasl.SaslFailure):
            return pop3.Err(step.reason, pop3.Code.AUTH)
        if step.authzid and step.authzid != step.authcid:
            return pop3.Err("Acting as another user is not supported", pop3.Code.AUTH)
        return await self._login(step.authcid, step.password)

    async def _login(self, username: str, password: str) -> pop3.Reply:
        account = await self.checker.authenticate(username, password, self.peer_ip)
        if account is None:
            # RFC 3206 5: [AUTH] says the credentials, not the server, are at fault.
            return pop3.Err("Authentication failed", pop3.Code.AUTH)
        inbox = await self.store.get_mailbox(account.id, "INBOX")
        if inbox is None:
            return pop3.Err("The account has no INBOX", pop3.Code.SYS_PERM)
        # RFC 1939 8 / RFC 2449 8.1.2: one POP3 session per maildrop.
        if not await self.store.lock_maildrop(account.id, self.owner, self.settings.lock_ttl):
            return pop3.Err("Maildrop is in use by another POP3 session", pop3.Code.IN_USE)
        self.account = account
        self._locked_at = time.monotonic()
        try:
            records = await self.store.list_messages(inbox.id)
        except BaseException:
            await self._unlock()
            raise
        self.maildrop = Maildrop(inbox, records)
        count, size = self.maildrop.stat()
        return pop3.Ok(f"Logged in, {count} messages ({size} octets)")

    # -- TRANSACTION state ------------------------------------------------------------------

    def _drop(self) -> Maildrop:
        assert self.maildrop is not None, "the core allows this only after login"
        return self.maildrop

    async def _stat(self, _: pop3.Command) -> pop3.Reply:
        count, size = self._drop().stat()
        return pop3.Ok(f"{count} {size}")

    async def _list(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.List)
        drop = self._drop()
        if command.msg is not None:
            try:
                entry = drop.get(command.msg)
            except NoSuchMessage as exc:
                return pop3.Err(str(exc))
            return pop3.Ok(f"{entry.number} {entry.size}")
        count, size = drop.stat()
        lines = tuple(f"{e.number} {e.size}" for e in drop.visible())
        return pop3.MultiLine(f"{count} messages ({size} octets)", lines=lines)

    async def _uidl(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.Uidl)
        drop = self._drop()
        if command.msg is not None:
            try:
                entry = drop.get(command.msg)
            except NoSuchMessage as exc:
                return pop3.Err(str(exc))
            return pop3.Ok(f"{entry.number} {entry.uidl}")
        return pop3.MultiLine(lines=tuple(f"{e.number} {e.uidl}" for e in drop.visible()))

    async def _read(self, number: int, *, prefetch_next: bool = False) -> bytes | pop3.Err:
        drop = self._drop()
        try:
            entry = drop.get(number)
        except NoSuchMessage as exc:
            return pop3.Err(str(exc))
        pending = self._prefetch
        self._prefetch = None
        if pending is not None and pending[0] == number:
            reading = pending[1]
        else:
            if pending is not None:
                _discard(pending[1])
            reading = asyncio.ensure_future(self.store.read_blob(entry.blob_id))
        if prefetch_next and number < len(drop.entries):
            with contextlib.suppress(NoSuchMessage):
                following = drop.get(number + 1)
                self._prefetch = (
                    number + 1,
                    asyncio.ensure_future(self.store.read_blob(following.blob_id)),
                )
        try:
            return await reading
        except (NotFound, FileNotFoundError):
            # IMAP expunged it and its content is gone; the snapshot still lists it.
            return pop3.Err(f"Message {number} was removed by another session")
        except OSError:
            log.exception("pop3: cannot read blob %s", entry.blob_id)
            return pop3.Err("Cannot read the message now", pop3.Code.SYS_TEMP)

    async def _retr(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.Retr)
        data = await self._read(command.msg, prefetch_next=True)
        if isinstance(data, pop3.Err):
            return data
        self._seen.add(self._drop().get(command.msg).uid)
        if len(self._seen) >= self.settings.seen_batch:
            await self._flush_seen()
        return pop3.MultiLine(f"{len(data)} octets", data=data)

    async def _top(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.Top)
        data = await self._read(command.msg)
        if isinstance(data, pop3.Err):
            return data
        # TOP is a peek: it does not make the message \Seen.
        return pop3.MultiLine(data=pop3.top(data, command.lines))

    async def _dele(self, command: pop3.Command) -> pop3.Reply:
        assert isinstance(command, pop3.Dele)
        try:
            self._drop().delete(command.msg)
        except NoSuchMessage as exc:
            return pop3.Err(str(exc))
        return pop3.Ok(f"Message {command.msg} deleted")

    async def _noop(self, _: pop3.Command) -> pop3.Reply:
        return pop3.Ok()

    async def _rset(self, _: pop3.Command) -> pop3.Reply:
        drop = self._drop()
        drop.reset()
        count, size = drop.stat()
        return pop3.Ok(f"{count} messages ({size} octets)")

    # -- QUIT and the UPDATE state ------------------------------------------------------------

    async def _quit(self, _: pop3.Command) -> pop3.Reply:
        self._drop_prefetch()
        if self.maildrop is None or self.account is None:
            return pop3.Ok("Bye")
        try:
            await self._flush_seen()
            uids = self.maildrop.deleted_uids()
            if uids:
                await self._remove(self.account, self.maildrop.mailbox, uids)
            self.deleted_count = len(uids)
        except StoreError:
            log.exception("pop3 UPDATE failed for %s", self.account.address)
            # RFC 1939 6: on failure the server still closes, with -ERR.
            return pop3.Err("Deleted messages were not removed", pop3.Code.SYS_TEMP)
        finally:
            self._closed = True
            await self._unlock()
        return pop3.Ok(f"Logging out, {self.deleted_count} messages deleted")

    async def _remove(self, account: Account, inbox: Mailbox, uids: list[int]) -> None:
        # Re-read the setting: an operator may change it while the session is open.
        current = await self.store.get_account(account.id) or account
        if current.pop3_keep:
            trash = await self._trash(account.id)
            await self.store.move(inbox.id, uids, trash.id)
        else:
            await self.store.expunge(inbox.id, uids)

    async def _trash(self, account_id: int) -> Mailbox:
        mailboxes = await self.store.list_mailboxes(account_id)
        for mb in mailboxes:
            if mb.special_use == "\\Trash":
                return mb
        for mb in mailboxes:
            if mb.name.lower() == "trash":
                return mb
        return await self.store.create_mailbox(account_id, "Trash", "\\Trash")

    # -- helpers ------------------------------------------------------------------------------

    def _drop_prefetch(self) -> None:
        if self._prefetch is not None:
            _discard(self._prefetch[1])
            self._prefetch = None

    async def _flush_seen(self) -> None:
        if not self._seen or self.maildrop is None:
            return
        uids = sorted(self._seen)
        self._seen.clear()
        await self.store.store_flags(self.maildrop.mailbox.id, uids, FlagOp.ADD, {"\\Seen"})

    async def _refresh_lock(self) -> None:
        now = time.monotonic()
        if self.account is not None and now - self._locked_at > self.settings.lock_ttl / 4:
            self._locked_at = now
            await self.store.lock_maildrop(self.account.id, self.owner, self.settings.lock_ttl)

    async def _unlock(self) -> None:
        if self.account is None:
            return
        try:
            await self.store.unlock_maildrop(self.account.id, self.owner)
        except StoreError:
            log.exception("pop3: could not release the maildrop lock")


def _discard(future: asyncio.Future[bytes]) -> None:
    """Cancel a read nobody will await, and keep its failure (if any) out of the logs."""
    future.cancel()
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
