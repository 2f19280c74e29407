"""ManageSieve session logic (RFC 5804): who is logged in, and what each command does.

House rules:
- Bytes never reach this module: the core (`mailwright.proto.managesieve`) frames commands and
  the adapter (`listener.py`) owns the socket and TLS.
- Scripts are validated before they are stored (RFC 5804 2.6: PUTSCRIPT of an invalid script
  fails, with the error's line), with the same compiler delivery uses, in a worker thread.
- Passwords travel only under TLS or on loopback, like the other protocols; failures go to the
  shared authenticator, which delays them and bans addresses across every protocol.
- Quotas (RFC 5804 1.3): a script is at most `max_script_size` octets and an account holds at
  most `max_scripts` scripts; HAVESPACE and PUTSCRIPT answer QUOTA/MAXSIZE or QUOTA/MAXSCRIPTS.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass, field
from typing import Protocol

from mailwright.managesieved.roles import ManageSieveStore
from mailwright.proto import managesieve as ms
from mailwright.proto import sasl
from mailwright.sieve import CAPABILITIES, SieveSyntaxError, compile_script
from mailwright.store.api import Account, AlreadyExists, InvalidOperation, NotFound

log = logging.getLogger("mailwright.managesieve")

MAX_NAME = 128


class Checker(Protocol):
    """What the session needs of ``mailwright.accounts.authenticator.Authenticator``."""

    async def authenticate(self, username: str, password: str, ip: str) -> Account | None: ...


@dataclass(frozen=True, slots=True)
class SessionSettings:
    max_script_size: int = 128 * 1024
    max_scripts: int = 32
    max_redirects: int = 4
    implementation: str = "Mailwright"


@dataclass(slots=True)
class Outcome:
    """What the adapter must do with one command's answer."""

    data: bytes
    start_tls: bool = False
    close: bool = False
    expect_sasl: bool = False


@dataclass(slots=True)
class ManageSieveSession:
    store: ManageSieveStore
    checker: Checker
    peer_ip: str
    loopback: bool
    tls: bool
    tls_available: bool
    settings: SessionSettings = field(default_factory=SessionSettings)
    account: Account | None = None
    _mechanism: sasl.ServerMechanism | None = None

    @property
    def plaintext_allowed(self) -> bool:
        return self.tls or self.loopback

    # -- capability (RFC 5804 1.7)

    def capabilities(self) -> bytes:
        lines = [
            ms.quoted("IMPLEMENTATION") + b" " + ms.quoted(self.settings.implementation),
            ms.quoted("SASL") + b" " + ms.quoted("PLAIN" if self.plaintext_allowed else ""),
            ms.quoted("SIEVE") + b" " + ms.quoted(" ".join(CAPABILITIES)),
        ]
        if self.tls_available and not self.tls and self.account is None:
            lines.append(ms.quoted("STARTTLS"))
        lines += [
            ms.quoted("MAXREDIRECTS") + b" " + ms.quoted(str(self.settings.max_redirects)),
            ms.quoted("NOTIFY") + b" " + ms.quoted("mailto"),
            ms.quoted("UNAUTHENTICATE"),
            ms.quoted("VERSION") + b" " + ms.quoted("1.0"),
        ]
        return b"".join(line + b"\r\n" for line in lines)

    def greeting(self) -> bytes:
        return self.capabilities() + ms.ok("Mailwright ManageSieve ready").encode()

    def tls_started(self) -> bytes:
        self.tls = True
        # RFC 5804 2.2: after TLS the server sends the capabilities again
        return self.capabilities() + ms.ok("TLS negotiation successful").encode()

    # -- dispatch

    async def handle(self, event: ms.Command | ms.SaslResponse) -> Outcome:
        if isinstance(event, ms.SaslResponse):
            return await self._sasl_response(event.data)
        name = event.name
        handler = (_ANY.get(name) or
                   (_AUTHENTICATED.get(name) if self.account is not None else _UNAUTHENTICATED.get(name)))
        if handler is None:
            if name in _AUTHENTICATED or name in _UNAUTHENTICATED:
                state = "logged in" if self.account is not None else "not logged in"
                return _reply(ms.no(f"{name} is not allowed when {state}"))
            return _reply(ms.no(f"Unknown command {name}"))
        try:
            return await handler(self, event.args)
        except _ArgumentError as exc:
            return _reply(ms.no(str(exc)))

    # -- commands in any state

    async def _capability(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 0, 0)
        return Outcome(self.capabilities() + ms.ok().encode())

    async def _noop(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 0, 1)
        if args:
            tag = _string(args[0])
            # RFC 5804 2.14: echo the tag in a TAG response code
            return Outcome(b"OK (TAG " + ms.string(tag) + b") \"Done\"\r\n")
        return _reply(ms.ok("Done"))

    async def _logout(self, args: tuple[str | int, ...]) -> Outcome:
        return Outcome(ms.ok("Logout completed").encode(), close=True)

    # -- not authenticated

    async def _starttls(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 0, 0)
        if not self.tls_available or self.tls:
            return _reply(ms.no("TLS is not available"))
        return Outcome(ms.ok("Begin TLS negotiation").encode(), start_tls=True)

    async def _authenticate(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 1, 2)
        if not self.plaintext_allowed:
            return _reply(ms.no("Authentication needs TLS, use STARTTLS first", "ENCRYPT-NEEDED"))
        mechanism = sasl.server_mechanism(_string(args[0]))
        if mechanism is None or mechanism.name != "PLAIN":
            return _reply(ms.no("Unsupported authentication mechanism"))
        initial = None
        if len(args) == 2:
            initial = _b64(_string(args[1]))
            if initial is None:
                return _reply(ms.no("Invalid base64 in the initial response"))
        self._mechanism = mechanism
        return await self._sasl_step(mechanism.start(initial))

    async def _sasl_response(self, data: str) -> Outcome:
        mechanism, self._mechanism = self._mechanism, None
        if mechanism is None:
            return _reply(ms.no("No authentication in progress"))
        if data == "*":
            return _reply(ms.no("Authentication cancelled"))
        raw = _b64(data)
        if raw is None:
            return _reply(ms.no("Invalid base64 in the SASL response"))
        self._mechanism = mechanism
        return await self._sasl_step(mechanism.step(raw))

    async def _sasl_step(self, step: sasl.SaslStep) -> Outcome:
        if isinstance(step, sasl.Challenge):
            # RFC 5804 2.1: a challenge is a string holding base64
            return Outcome(ms.string(base64.b64encode(step.data).decode()) + b"\r\n",
                           expect_sasl=True)
        self._mechanism = None
        if isinstance(step, sasl.SaslFailure):
            return _reply(ms.no(step.reason))
        if step.authzid and step.authzid.lower() != step.authcid.lower():
            return _reply(ms.no("Acting as another user is not supported", "AUTH-TOO-WEAK"))
        account = await self.checker.authenticate(step.authcid, step.password, self.peer_ip)
        if account is None:
            return _reply(ms.no("Authentication failed"))
        self.account = account
        log.info("managesieve login %s from %s", account.address, self.peer_ip)
        return _reply(ms.ok("Logged in"))

    # -- authenticated

    def _account_id(self) -> int:
        assert self.account is not None
        return self.account.id

    async def _havespace(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 2, 2)
        name = _script_name(args[0])
        size = args[1]
        if not isinstance(size, int):
            raise _ArgumentError("HAVESPACE needs a number")
        refusal = await self._quota(name, size)
        return _reply(refusal or ms.ok("Putscript would succeed"))

    async def _quota(self, name: str, size: int) -> ms.Reply | None:
        if size > self.settings.max_script_size:
            return ms.no(f"Scripts are limited to {self.settings.max_script_size} octets",
                         "QUOTA/MAXSIZE")
        scripts = await self.store.sieve_list(self._account_id())
        if name not in {s.name for s in scripts} and len(scripts) >= self.settings.max_scripts:
            return ms.no(f"At most {self.settings.max_scripts} scripts", "QUOTA/MAXSCRIPTS")
        return None

    async def _putscript(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 2, 2)
        name = _script_name(args[0])
        content = _string(args[1])
        refusal = await self._quota(name, len(content.encode()))
        if refusal is not None:
            return _reply(refusal)
        error = await asyncio.to_thread(_check, content)  # compiling is CPU work
        if error is not None:
            return _reply(ms.no(error))
        await self.store.sieve_put(self._account_id(), name, content)
        return _reply(ms.ok("Script stored"))

    async def _checkscript(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 1, 1)
        content = _string(args[0])
        if len(content.encode()) > self.settings.max_script_size:
            return _reply(ms.no("Script too large", "QUOTA/MAXSIZE"))
        error = await asyncio.to_thread(_check, content)  # compiling is CPU work
        return _reply(ms.no(error) if error is not None else ms.ok("Script is valid"))

    async def _listscripts(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 0, 0)
        out = b""
        for s in await self.store.sieve_list(self._account_id()):
            out += ms.string(s.name) + (b" ACTIVE" if s.active else b"") + b"\r\n"
        return Outcome(out + ms.ok("Listscripts completed").encode())

    async def _setactive(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 1, 1)
        raw = _string(args[0])
        acc = self._account_id()
        if raw == "":
            await self.store.sieve_activate(acc, None)  # RFC 5804 2.8: deactivate all
            return _reply(ms.ok("No script is active"))
        name = _script_name(raw)
        content = await self.store.sieve_get(acc, name)
        if content is None:
            return _reply(ms.no("There is no script by that name", "NONEXISTENT"))
        error = await asyncio.to_thread(_check, content)  # compiling is CPU work
        if error is not None:
            return _reply(ms.no(f"The script is not valid: {error}"))
        try:
            await self.store.sieve_activate(acc, name)
        except NotFound:
            return _reply(ms.no("There is no script by that name", "NONEXISTENT"))
        return _reply(ms.ok("Script activated"))

    async def _getscript(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 1, 1)
        content = await self.store.sieve_get(self._account_id(), _script_name(args[0]))
        if content is None:
            return _reply(ms.no("There is no script by that name", "NONEXISTENT"))
        return Outcome(ms.literal(content) + b"\r\n" + ms.ok("Getscript completed").encode())

    async def _deletescript(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 1, 1)
        try:
            await self.store.sieve_delete(self._account_id(), _script_name(args[0]))
        except NotFound:
            return _reply(ms.no("There is no script by that name", "NONEXISTENT"))
        except InvalidOperation:
            return _reply(ms.no("The active script cannot be deleted", "ACTIVE"))
        return _reply(ms.ok("Script deleted"))

    async def _renamescript(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 2, 2)
        old, new = _script_name(args[0]), _script_name(args[1])
        try:
            await self.store.sieve_rename(self._account_id(), old, new)
        except NotFound:
            return _reply(ms.no("There is no script by that name", "NONEXISTENT"))
        except AlreadyExists:
            return _reply(ms.no("A script by the new name exists", "ALREADYEXISTS"))
        return _reply(ms.ok("Script renamed"))

    async def _unauthenticate(self, args: tuple[str | int, ...]) -> Outcome:
        _arity(args, 0, 0)
        self.account = None  # RFC 5804 2.14.1
        return _reply(ms.ok("Logged out"))


class _ArgumentError(Exception):
    pass


def _reply(reply: ms.Reply) -> Outcome:
    return Outcome(reply.encode())


def _arity(args: tuple[str | int, ...], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        raise _ArgumentError("Wrong number of arguments")


def _string(arg: str | int) -> str:
    if not isinstance(arg, str):
        raise _ArgumentError("Expected a string")
    return arg


def _script_name(arg: str | int) -> str:
    name = _string(arg)
    # RFC 5804 1.6: no control characters, no line or paragraph separators
    if not name or len(name) > MAX_NAME or any(
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in name
    ):
        raise _ArgumentError("Invalid script name")
    return name


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _check(content: str) -> str | None:
    try:
        compile_script(content)
    except SieveSyntaxError as exc:
        return str(exc)
    return None


_ANY = {
    "CAPABILITY": ManageSieveSession._capability,
    "NOOP": ManageSieveSession._noop,
    "LOGOUT": ManageSieveSession._logout,
}
_UNAUTHENTICATED = {
    "STARTTLS": ManageSieveSession._starttls,
    "AUTHENTICATE": ManageSieveSession._authenticate,
}
_AUTHENTICATED = {
    "HAVESPACE": ManageSieveSession._havespace,
    "PUTSCRIPT": ManageSieveSession._putscript,
    "CHECKSCRIPT": ManageSieveSession._checkscript,
    "LISTSCRIPTS": ManageSieveSession._listscripts,
    "SETACTIVE": ManageSieveSession._setactive,
    "GETSCRIPT": ManageSieveSession._getscript,
    "DELETESCRIPT": ManageSieveSession._deletescript,
    "RENAMESCRIPT": ManageSieveSession._renamescript,
    "UNAUTHENTICATE": ManageSieveSession._unauthenticate,
}
