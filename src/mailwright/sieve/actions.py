"""What a script decided: the actions of one run, executed by the caller after it succeeds.

RFC 5228 2.10: actions are collected while the script runs and carried out together at the
end; a run that fails carries out none of them and keeps the message (2.10.6).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .message import SieveMessage


@dataclass(frozen=True, slots=True)
class Keep:
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileInto:
    mailbox: str
    flags: tuple[str, ...] = ()
    create: bool = False  # RFC 5490 3.2
    special_use: str | None = None  # RFC 8579 4
    copy: bool = False


@dataclass(frozen=True, slots=True)
class Redirect:
    address: str
    copy: bool = False


@dataclass(frozen=True, slots=True)
class Discard:
    pass


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str
    extended: bool  # ereject: refuse in the SMTP transaction when we can (RFC 5429 2.1)


@dataclass(frozen=True, slots=True)
class Vacation:
    reason: str
    seconds: int
    subject: str | None
    from_address: str | None
    addresses: tuple[str, ...]
    mime: bool
    handle: str


@dataclass(frozen=True, slots=True)
class Notify:
    method: str  # a mailto: URI (RFC 5436)
    from_address: str | None
    importance: str
    options: tuple[str, ...]
    message: str | None


Action = Keep | FileInto | Redirect | Discard | Reject | Vacation | Notify


@dataclass(frozen=True, slots=True)
class DuplicateRecord:
    """RFC 7352 3: remember `key` for `seconds`, once the run has succeeded."""

    key: str
    seconds: int
    refresh: bool


@dataclass(slots=True)
class RunResult:
    actions: list[Action] = field(default_factory=list)
    implicit_keep: bool = True
    implicit_flags: tuple[str, ...] = ()
    message: SieveMessage | None = None  # the message as edited by editheader
    error: str | None = None  # a run-time error: nothing but the implicit keep happens
    duplicates: list[DuplicateRecord] = field(default_factory=list)
    steps: int = 0

    @property
    def failed(self) -> bool:
        return self.error is not None
