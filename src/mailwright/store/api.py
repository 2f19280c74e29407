"""The storage interface every other layer speaks to.

Protocol servers, delivery and the queue see only this module: typed records, typed errors and
the async `Store` protocol. Two backends implement it (`store.sqlite`, `store.postgres`); nothing
here may mention SQL, files or connection handling.

The store is described as roles, small protocols (`AccountLookup`, `Accounts`, `Mailboxes`,
`Messages`, `BlobStore`, `Queue`, `Maintenance`...); `Store` is their composition, what a
backend implements and what `app` builds. Everything else asks for the roles it uses: each
session package names its intersection of roles in its `roles.py` (`imapd.roles.ImapStore`...),
is handed the one `Store` object, and mypy proves it calls nothing else (docs/architecture.md
has the table; tests/test_layers.py holds the line).

Contracts: every method of a role states its own, in these words:
- *Read*: changes nothing. On SQLite a read is one snapshot; on PostgreSQL its statements may
  see different commits unless it says *one snapshot*.
- *Atomic*: one transaction: it changes everything it describes or nothing ("one statement":
  a single atomic statement, no explicit transaction).
- *Durable*: when it returns, the change is committed (on SQLite in a group commit with
  `synchronous=FULL`, after the blob directories were fsync'ed) and the watchers of the
  mailboxes it changed have been told (`ChangeFeed`).
- *Raises*: the `StoreError`s it raises on purpose, and when. Besides those, any write may raise
  `StorageFull` (the disk or the database is out of space), and any method lets through what
  the caller cannot act on (the database is gone, the store is closed).

House rules for implementations:
- A method either changes everything it describes or nothing (one transaction), unless its
  contract says *Not atomic* (and then what each of its steps is).
- A mutating method returns only after the change is durable (fsync'ed and committed).
- After a commit that changes a mailbox, `changes.publish(mailbox_id, modseq)` is called so that
  IDLE sessions wake; sessions then ask `changes_since` for what happened.
- UIDs are allocated per mailbox, strictly increasing, never reused; MODSEQ is strictly
  increasing per mailbox (RFC 7162 3.1.1); UIDVALIDITY never changes for a mailbox's life.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from mailwright.store.changes import ChangeHub


# --- errors -------------------------------------------------------------------------------------


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class QuotaExceeded(StoreError):
    """The account's quota would be exceeded; SMTP 552 5.2.2 / IMAP NO [OVERQUOTA]."""


class StorageFull(StoreError):
    """The disk or database is out of space; SMTP 452 4.3.1 / IMAP NO [SERVERBUG]/[LIMIT]."""


class InvalidOperation(StoreError):
    """The request is not allowed in this state (e.g. deleting INBOX)."""


class MetadataLimit(InvalidOperation):
    """Too many annotations for the account (IMAP ``NO [METADATA TOOMANY]``, RFC 5464 4.3)."""


class LeaseLost(InvalidOperation):
    """A queue entry's lease is no longer this owner's (expired, taken over, or the entry was
    deleted by the operator): the owner must not record anything about the entry."""


# --- records ------------------------------------------------------------------------------------

SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
SPECIAL_USES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive")
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


def canonical_mailbox_name(name: str) -> str:
    """INBOX is case-insensitive (RFC 9051 5.1), including as a hierarchy prefix."""
    if name.upper() == "INBOX":
        return "INBOX"
    if name[:6].upper() == "INBOX/":
        return "INBOX" + name[5:]
    return name


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    created: datetime


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str  # canonical login name and primary address
    password_hash: str
    quota_bytes: int  # 0 = unlimited
    pop3_keep: bool  # POP3 deletions move to Trash instead of expunging
    disabled: bool
    created: datetime


@dataclass(frozen=True, slots=True)
class Alias:
    source: str  # canonical address, or "@domain" for a catch-all
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str  # full hierarchical name with "/" as separator, "INBOX" upper-case
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    subscribed: bool
    retention_days: int  # 0 = keep forever


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    mailbox_id: int
    messages: int
    unseen: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int


class MessageRecord(NamedTuple):
    """One message in one mailbox.

    A NamedTuple rather than a dataclass: a 100,000-message SELECT builds this many records, and
    tuple construction is several times cheaper. The internal date is kept as a UNIX timestamp
    and turned into a datetime only when asked for.
    """

    mailbox_id: int
    uid: int
    modseq: int
    flags: frozenset[str]
    timestamp: float  # internal date, seconds since the epoch
    size: int
    blob_id: str

    @property
    def internaldate(self) -> datetime:
        """Aware, UTC."""
        return datetime.fromtimestamp(self.timestamp, UTC)

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed in a mailbox after a given MODSEQ (RFC 7162 sync; IDLE updates)."""

    highestmodseq: int
    uidnext: int
    updated: tuple[MessageRecord, ...]  # new or flag-changed messages, by UID
    expunged: tuple[int, ...]  # UIDs expunged after that MODSEQ, ascending


class FlagOp(enum.Enum):
    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class StoreFlagsResult:
    updated: tuple[MessageRecord, ...]  # records whose flags changed (new MODSEQ)
    unchanged: tuple[MessageRecord, ...]  # matched, flags already as requested
    failed: tuple[int, ...]  # UIDs refused by UNCHANGEDSINCE (RFC 7162 3.1.3 MODIFIED)


@dataclass(frozen=True, slots=True)
class StagedBlob:
    """Message content written and made durable in staging, not yet referenced by any row.

    `blob_id` is the SHA-256 hex of the content, so identical content is stored once. `meta` is
    the parse-once meta from `mailwright.mime` (`MessageInfo.to_meta`); the store keeps it
    with the blob, opaque.
    `_path` is the store's own business: a session hands a staged blob to a unit of work
    (`deliver`, `append`, `queue_add`...), reads it with `BlobStore.read_staged` or drops it
    with `BlobStore.discard_staged`, and never opens or unlinks a file itself.
    """

    blob_id: str
    size: int
    _path: Path
    meta: bytes


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    account_id: int
    mailbox: str = "INBOX"  # falls back to INBOX when the named mailbox does not exist
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Usage:
    bytes: int
    messages: int


@dataclass(frozen=True, slots=True)
class QueueRecipient:
    address: str
    status: str  # "scheduled" | "delivered" | "tempfail" | "permfail"
    notify: str | None = None  # DSN NOTIFY as given, e.g. "SUCCESS,FAILURE"
    orcpt: str | None = None
    last_reply: str = ""


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    blob_id: str
    sender: str  # "" for the null sender
    domain: str  # destination domain
    recipients: tuple[QueueRecipient, ...]
    created: datetime
    next_attempt: datetime
    attempts: int
    last_error: str
    ret: str | None = None  # DSN RET: FULL or HDRS
    envid: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    warned: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # The message's queue id: the one the SMTP reply, the Received header and the logs show;
    # every destination-domain entry of one message shares it.
    queue_id: str = ""


@dataclass(frozen=True, slots=True)
class TLSResult:
    """Outbound TLS sessions of one UTC day for one policy domain, one outcome, counted
    (SMTP TLS Reporting, RFC 8460 4). ``result_type`` "" counts successes; otherwise an RFC 8460
    4.3 result type such as "certificate-host-mismatch"."""

    day: str  # "2026-12-07" (UTC)
    policy_domain: str
    policy_type: str  # "sts", "tlsa" or "no-policy-found"
    policy_string: str  # JSON list of the policy's strings
    result_type: str
    mx_host: str
    receiving_ip: str
    count: int = 1
    info: str = ""  # additional-information: the first reason seen


@dataclass(frozen=True, slots=True)
class TLSReport:
    """A TLS-RPT aggregate report another domain sent us (RFC 8460 4.4), parsed."""

    id: int
    received: datetime
    organization: str
    report_id: str
    start: str
    end: str
    policy_domains: str  # comma-separated
    successes: int
    failures: int
    report_json: str


def new_queue_id() -> str:
    """A fresh queue id: 12 upper-case hex digits (48 random bits), as the SMTP reply shows."""
    import secrets

    return secrets.token_hex(6).upper()


# --- MULTIAPPEND (RFC 3502): one message of an all-or-nothing append ---------------------------


@dataclass(frozen=True, slots=True)
class AppendItem:
    blob: StagedBlob
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None


# --- spam filter records ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpamLesson:
    """One message taught to the spam classifier, applied by `Store.spam_learn` atomically.

    `label` is "spam", "ham" or "filed" (delivered to Junk by the filter itself: remembered so
    that a later move out of Junk trains ham, but not taught). The store keeps one label per
    (account, blob): learning a message again with the same label changes nothing, and a new
    label first takes back what the old one taught, so a user's change of mind never counts
    twice. `tokens` are the message's distinct token keys (signed 64-bit), counted in every
    scope of `scopes` (0 = the server-wide model, otherwise an account id); `senders` are
    (kind, name) reputation keys of the account, e.g. ("from", "a@example.org").
    """

    account_id: int
    blob_id: str
    label: str
    scopes: tuple[int, ...]
    tokens: tuple[int, ...]
    senders: tuple[tuple[str, str], ...] = ()


# --- DMARC aggregate reporting (RFC 7489 7.2) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class DmarcResultRow:
    """Messages our MX evaluated with one set of results: a <record> of an aggregate report.

    Rows with the same key are counted, not repeated, so the table grows with the number of
    distinct (day, domain, source, outcome) combinations, not with the number of messages.
    """

    day: int  # UTC day number (epoch seconds // 86400) the messages arrived on
    header_from: str  # the RFC 5322 From domain DMARC evaluated
    source_ip: str
    disposition: str  # none | quarantine | reject: what we applied (RFC 7489 7.2.1.1)
    dkim_aligned: str  # pass | fail: policy_evaluated/dkim
    spf_aligned: str  # pass | fail: policy_evaluated/spf
    envelope_from: str  # the MAIL FROM domain ("" for the null sender)
    dkim: str  # auth_results/dkim: "domain selector result" items joined by ";"
    spf: str  # auth_results/spf: "domain scope result"
    policy: str  # the DMARC record as published (last seen), for <policy_published> and rua
    count: int = 1
    policy_domain: str = ""  # where the record was found (the report is about this domain)


@dataclass(frozen=True, slots=True)
class ReceivedDmarcReport:
    """An aggregate report another receiver sent about one of our domains."""

    org_name: str
    report_id: str
    domain: str  # policy_published/domain
    begin: int  # date_range, epoch seconds
    end: int
    email: str
    messages: int  # sum of <count>
    passed: int  # messages whose DKIM or SPF evaluated aligned pass
    records: str  # JSON list of the records as parsed (source_ip, count, disposition, ...)
    received: datetime | None = None
    id: int = 0


# --- Sieve: one script of an account ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SieveScriptInfo:
    """One of an account's Sieve scripts as ManageSieve LISTSCRIPTS shows it (RFC 5804 2.7)."""

    name: str
    active: bool
    size: int  # octets of UTF-8


# --- one accepted SMTP message: local copies and queue entries as one unit of work -------------


@dataclass(frozen=True, slots=True)
class LocalCopies:
    """The local part of a unit of work: one staged message into these mailboxes."""

    blob: StagedBlob
    targets: tuple[DeliveryTarget, ...]
    # other bytes for other accounts in the same unit of work (the spam filter's fields differ
    # per account); each one's targets are distinct from these
    variants: tuple[LocalCopies, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueAddition:
    """The remote part of a unit of work: queue entries per destination domain."""

    blob: StagedBlob
    sender: str
    by_domain: dict[str, list[QueueRecipient]]
    ret: str | None = None
    envid: str | None = None
    queue_id: str | None = None  # the message's queue id (the SMTP reply's)
    extra: dict[str, str] | None = None  # kept with each entry, e.g. {"requiretls": "1"}


@dataclass(frozen=True, slots=True)
class Delivered:
    """What the unit of work of one accepted message did (`FanOut.deliver_each`)."""

    records: tuple[MessageRecord, ...]  # the copies stored
    queue_ids: tuple[int, ...]  # the outbound queue entries added
    # (account id, why) for each account that got no copy: "quota", "disabled" or "gone"
    refused: tuple[tuple[int, str], ...]


# What the caller of `FanOut.deliver_each` makes of the refused accounts ((account id, why),
# by id), inside the unit of work: queue entries that report them (a DSN), or None. Called on
# the store's writer, so it must be quick and do no I/O.
RefusalReport = Callable[[Sequence[tuple[int, str]]], QueueAddition | None]


# --- the interface ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: the web interface's cookie names it by its SHA-256 (`id`), so
    neither the store nor its backups hold a cookie that would sign anyone in."""

    id: str  # hex SHA-256 of the cookie value
    account_id: int
    csrf: str  # the token every state-changing request of this session must carry
    stage: str  # "full", or "totp" while the second factor is still to be given
    created: float  # UNIX time
    expires: float


@dataclass(frozen=True, slots=True)
class AppPassword:
    """A generated password for one mail client; only its SHA-256 is kept (it is random and
    long, so a slow hash buys nothing and a lookup by digest stays cheap)."""

    id: int
    account_id: int
    label: str
    digest: str  # hex SHA-256 of the password
    created: float


class BlobWriter(Protocol):
    """Streams a message into staging; `finish` makes it durable and parses it once."""

    def write(self, data: bytes) -> None:
        """Append bytes (bare LF becomes CRLF unless the writer is `exact`); nothing is durable
        yet, and a write error is reported by `finish`."""
        ...

    @property
    def size(self) -> int:
        """Octets written so far (after CRLF normalisation)."""
        ...

    async def finish(self) -> StagedBlob:
        """The staged blob: its file fsync'ed, its SHA-256 id and parse-once meta computed.
        Durable (a staging file, not yet referenced by any row). Raises StorageFull when
        the disk is full or its free space is below the reserve."""
        ...

    def abort(self) -> None:
        """Drop what was written (the staging file goes); raises nothing."""
        ...


class BlobStore(Protocol):
    """Message content, apart from the rows that reference it.

    A session streams a message in (`blob_writer`), then gives the staged blob to one unit of
    work, which references it, or back to `discard_staged`; stored content is read by id.
    Where the bytes live (`[storage] blobs`: files with fsync and directory fsync, or
    PostgreSQL `bytea` behind a node-local file cache; `store.blobstore`) is the store's,
    never the session's: a `StagedBlob` is a handle whose file the store owns."""

    # exact: keep the bytes as sent, no LF -> CRLF (binary content, RFC 3516 4.4)
    def blob_writer(self, *, exact: bool = False) -> BlobWriter:
        """A writer into staging: `write` the bytes (bare LF becomes CRLF unless `exact`), then
        `finish` fsyncs the file and parses it once, or `abort`. Not a transaction: no row
        names the staged blob until a unit of work references it. `finish` raises StorageFull
        when the disk is full or its free space is below the reserve."""
        ...

    async def read_staged(self, blob: StagedBlob, *, limit: int | None = None) -> bytes:
        """The content of a staged blob (before or after a unit referenced it), its first `limit`
        octets if given. Read. Raises NotFound once it was discarded."""
        ...

    def discard_staged(self, blob: StagedBlob) -> None:
        """Drop a staged blob no unit of work referenced (a refused or aborted message); safe to
        call for one that was referenced meanwhile: stored content is never touched. Not a
        transaction (a staging file goes); raises nothing."""
        ...

    async def read_blob(self, blob_id: str) -> bytes:
        """A stored blob's content. Read. Raises NotFound (content stays readable for the grace
        period after its last reference went, RFC 2180 4.1)."""
        ...

    async def get_meta(self, blob_id: str) -> bytes:
        """A stored blob's parse-once metadata (`MessageInfo.from_meta` reads it). Read. Raises
        NotFound."""
        ...


class AccountLookup(Protocol):
    """Domains, accounts, aliases and send-as grants as the sessions see them: reads only.
    What SMTP, IMAP, POP3 and the login paths look up; changing them is `Accounts`."""

    async def list_domains(self) -> list[Domain]:
        """Every local domain, by name. Read."""
        ...
    async def has_domain(self, name: str) -> bool:
        """Whether `name` (canonical) is a local domain. Read."""
        ...
    async def get_account(self, account_id: int) -> Account | None:
        """The account, or None. Read."""
        ...
    async def find_account(self, address: str) -> Account | None:
        """The account of a canonical address, or None. Read."""
        ...
    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        """Every account (of one domain, matched literally), by address. Read."""
        ...
    async def usage(self, account_id: int) -> Usage:
        """Octets and messages the account holds (what its quota counts). Read. Raises NotFound."""
        ...
    async def get_alias(self, source: str) -> Alias | None:
        """The alias, or None. Read."""
        ...
    async def list_aliases(self) -> list[Alias]:
        """Every alias, by source. Read."""
        ...
    async def list_send_as(self, account_id: int | None = None) -> list[tuple[int, str]]:
        """(account id, address) send-as grants, of one account or all, ordered. Read."""
        ...
    async def message_quota(self, account_id: int) -> int:
        """The account's limit on its number of messages (RFC 9208 QUOTA=RES-MESSAGE; 0 = none).
        Read. Raises NotFound."""
        ...


class Accounts(AccountLookup, Protocol):
    """Domains, accounts, aliases and send-as grants as the operator manages them (CLI, web
    admin); `AccountLookup` is the part the sessions read."""

    async def add_domain(self, name: str) -> Domain:
        """A new local domain. Atomic, durable. Raises AlreadyExists."""
        ...
    async def delete_domain(self, name: str) -> None:
        """Delete a domain and its aliases (catch-all included). Atomic, durable. Raises
        InvalidOperation while it has accounts, NotFound."""
        ...
    async def add_account(
        self, address: str, password_hash: str, quota_bytes: int = 0
    ) -> Account:
        """A new account with the default mailboxes (`DEFAULT_MAILBOXES`), subscribed. Atomic,
        durable. Raises NotFound (the domain is not local), AlreadyExists (the address is
        taken)."""
        ...
    async def set_password(self, account_id: int, password_hash: str) -> None:
        """Replace the password hash. Atomic, durable. Raises NotFound."""
        ...
    async def update_account(
        self,
        account_id: int,
        *,
        quota_bytes: int | None = None,
        pop3_keep: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Change the settings given (None keeps one); the account as it now is. Atomic, durable.
        Raises NotFound."""
        ...
    async def delete_account(self, account_id: int) -> None:
        """Delete the account and all it owns: mailboxes and messages (blobs released), scripts,
        grants, its maildrop lock, and ACL entries naming its address. Atomic, durable;
        sessions watching its mailboxes wake. Raises NotFound."""
        ...
    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        """An alias or "@domain" catch-all of a local domain. Atomic, durable. Raises NotFound
        (the domain is not local), AlreadyExists (the source is an account or an alias
        already)."""
        ...
    async def delete_alias(self, source: str) -> None:
        """Delete an alias. Atomic, durable. Raises NotFound."""
        ...
    # send-as grants: addresses an administrator lets an account use in From:/Sender:
    # (RFC 6409 8.1 leaves the MSA's rules to local policy)
    async def grant_send_as(self, account_id: int, address: str) -> None:
        """Let the account use `address` in From:/Sender: (granting twice is one grant). Atomic,
        durable. Raises NotFound when the account does not exist."""
        ...
    async def revoke_send_as(self, account_id: int, address: str) -> bool:
        """Take a grant back; False if there was none. Atomic, durable."""
        ...
    # RFC 9208 QUOTA=RES-MESSAGE: the account's limit on its number of messages (0 = none),
    # enforced with the storage quota (QuotaExceeded) wherever messages are added
    async def set_message_quota(self, account_id: int, limit: int) -> None:
        """Set the account's limit on its number of messages (0 = none), enforced with the
        storage quota (QuotaExceeded) wherever messages are added. Atomic, durable. Raises
        NotFound."""
        ...


class Mailboxes(Protocol):
    """An account's mailboxes as a hierarchy of names ("/" separator, INBOX any case)."""

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        """The account's mailboxes, by name. Read."""
        ...
    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        """The account's mailbox of that name (INBOX in any case), or None. Read."""
        ...
    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        """The mailbox, or None. Read."""
        ...
    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """A new empty mailbox with a fresh UIDVALIDITY. Atomic, durable. Raises AlreadyExists,
        NotFound (no such account)."""
        ...
    async def delete_mailbox(self, mailbox_id: int) -> None:
        """Delete a mailbox and its messages (quota uncharged, blobs released). Atomic, durable;
        sessions that have it selected wake. Raises NotFound, InvalidOperation (INBOX)."""
        ...
    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        """Rename with inferiors, or move INBOX's messages to a new mailbox (RFC 9051 6.3.6).
        Atomic, durable. Raises NotFound (no `old`), AlreadyExists (`new`, or a name anywhere
        in the renamed subtree, exists), InvalidOperation (into itself)."""
        ...
    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Subscribe or unsubscribe a name, which need not exist (RFC 9051 6.3.7). Atomic,
        durable. Raises NotFound (no such account)."""
        ...
    async def list_subscriptions(self, account_id: int) -> list[str]:
        """The account's subscribed names, sorted. Read."""
        ...
    async def set_retention(self, mailbox_id: int, days: int) -> None:
        """Keep the mailbox's messages `days` days (0: forever); the retention sweep applies it.
        Atomic, durable; an unknown mailbox changes nothing (no error)."""
        ...
    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        """Counts, UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ. Read; one snapshot. Raises NotFound."""
        ...
    # IMAP \Recent (RFC 3501 2.3.2), kept per mailbox as Dovecot does: a message is recent
    # to the first session that sees it.
    async def claim_recent(self, mailbox_id: int, upto_uid: int, claim: bool) -> int:
        """The mailbox's first recent UID (RFC 3501 2.3.2 \\Recent); with `claim`, moved past
        `upto_uid` in one unit of work, so two sessions claiming at once see each message
        recent once. Atomic, durable when it claims; a read otherwise. Raises NotFound."""
        ...
    async def count_recent(self, mailbox_id: int) -> int:
        """Messages no session has claimed yet (STATUS RECENT). Read."""
        ...
    async def message_counts(self, account_id: int) -> dict[int, tuple[int, int, int, int]]:
        """Per mailbox of the account: (messages, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ) (IMAP
        NOTIFY's STATUS for every mailbox at once, RFC 5465 3). Read; one snapshot."""
        ...


class Messages(Protocol):
    """Messages in mailboxes: every change allocates UIDs and a MODSEQ under the mailbox's
    lock, charges or uncharges the quota, and wakes the mailbox's watchers after COMMIT."""

    async def append(
        self,
        mailbox_id: int,
        blob: StagedBlob,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> MessageRecord:
        """Store one message (its blob referenced, the quota charged, a new UID and MODSEQ).
        Atomic, durable; the mailbox's watchers wake. Raises NotFound (no such mailbox),
        QuotaExceeded, StorageFull."""
        ...
    async def append_many(
        self, mailbox_id: int, items: Sequence[AppendItem]
    ) -> list[MessageRecord]:
        """MULTIAPPEND (RFC 3502 3): every message in one transaction (consecutive UIDs, one
        MODSEQ), or none of them. Atomic, durable. Raises NotFound (no such mailbox),
        QuotaExceeded (for the whole batch), StorageFull."""
        ...
    async def deliver(
        self, blob: StagedBlob, targets: Sequence[DeliveryTarget]
    ) -> list[MessageRecord]:
        """One message into several mailboxes (a missing one falls back to INBOX), all or none
        (`FanOut.deliver_each` without a report). Atomic, durable. Raises QuotaExceeded,
        NotFound (an account gone or disabled), StorageFull."""
        ...
    async def deliver_and_queue(
        self, local: LocalCopies | None, queued: QueueAddition | None,
        trace: Sequence[TraceEvent] = (),
    ) -> tuple[list[MessageRecord], list[int]]:
        """Local copies and outbound queue entries of one accepted message as one unit of work: a
        failure leaves neither (a client retrying after a 4xx gets no duplicate). `trace`: the
        message trace's events of this acceptance, in the same transaction. Atomic, durable.
        Raises QuotaExceeded, NotFound (an account gone or disabled), StorageFull."""
        ...
    async def list_messages(self, mailbox_id: int) -> list[MessageRecord]:
        """Every message of the mailbox, by UID (an unknown mailbox has none). Read; one snapshot
        (it is the shared listing's records)."""
        ...
    async def get_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]:
        """The messages of those UIDs that exist, by UID. Read."""
        ...
    async def changes_since(self, mailbox_id: int, modseq: int) -> ChangeSet:
        """What changed after `modseq` (RFC 7162 sync; IDLE): records with a higher MODSEQ and
        UIDs expunged after it. Read; one snapshot. Raises NotFound (no such mailbox)."""
        ...
    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult:
        """Change flags, one new MODSEQ for the changed ones; UNCHANGEDSINCE refusals in `failed`
        (RFC 7162 3.1.3). Atomic, durable; the mailbox's watchers wake. UIDs that do not
        exist, or an unknown mailbox, match nothing (no error)."""
        ...
    async def expunge(self, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """Remove messages (expunge records kept for QRESYNC, quota uncharged, blobs released);
        the UIDs removed. Atomic, durable; the mailbox's watchers wake. UIDs that do not exist
        match nothing (no error)."""
        ...
    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Copy messages with their flags: (old UID, new UID) pairs, the target's quota charged.
        Atomic, durable. Raises QuotaExceeded, NotFound (either mailbox is gone, whether or
        not a UID matches), StorageFull."""
        ...
    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Copy then expunge in one transaction (RFC 6851); a move inside one account charges no
        quota. Atomic, durable. Raises QuotaExceeded (between accounts), NotFound (as for
        `copy`), StorageFull."""
        ...
    async def expunge_older_than(self, mailbox_id: int, cutoff: datetime) -> list[int]:
        """Expunge the messages whose internal date is before `cutoff` (retention); the UIDs
        removed. Not atomic: they are found by a read, then removed as by `expunge`, in one
        transaction (durable when it returns); a message expunged in between is skipped."""
        ...
    async def replace_message(
        self, mailbox_id: int, uid: int, dst_mailbox_id: int, item: AppendItem
    ) -> tuple[MessageRecord, list[int]]:
        """IMAP REPLACE (RFC 8508 3): the new message into `dst_mailbox_id` and the expunge of
        `uid` from `mailbox_id`; the new record and the expunged UIDs. Atomic, durable. Raises
        NotFound when the old message is already gone (nothing is stored then), QuotaExceeded,
        StorageFull."""
        ...
    async def save_dates(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, float | None]:
        """IMAP SAVEDATE (RFC 8514): when each message was saved into its mailbox (epoch seconds;
        None for a message saved before save dates were kept), for the UIDs that exist. Read."""
        ...


class Metadata(Protocol):
    """IMAP METADATA (RFC 5464): annotations of a mailbox (`mailbox_id`) or of the server for
    the account (`mailbox_id` None); entry names are stored as given (the caller lower-cases)."""

    async def metadata_get(
        self, account_id: int, mailbox_id: int | None
    ) -> dict[str, bytes]:
        """The entries of the mailbox, or of the server for the account (None). Read."""
        ...
    async def metadata_set(
        self,
        account_id: int,
        mailbox_id: int | None,
        changes: Sequence[tuple[str, bytes | None]],
        max_entries: int,
    ) -> None:
        """Set (value) or remove (None) entries. Atomic, durable. Raises MetadataLimit when the
        account would hold more than `max_entries` entries in all (nothing is changed then),
        NotFound (the account or the mailbox is gone)."""
        ...

    async def metadata_digests(self, account_id: int) -> dict[tuple[int | None, str], bytes]:
        """A digest of every annotation's value, keyed by (mailbox id or None, entry): what IMAP
        NOTIFY compares to tell which entries changed (RFC 5465 5.8). Read."""
        ...


class MaildropLocks(Protocol):
    """POP3 maildrop lock (RFC 1939 8: exclusive access), shared across nodes."""

    async def lock_maildrop(self, account_id: int, owner: str, ttl: float) -> bool:
        """Take or extend the lock for `ttl` seconds; False while another owner holds an
        unexpired one. Atomic (one statement), durable."""
        ...
    async def unlock_maildrop(self, account_id: int, owner: str) -> None:
        """Release the lock if `owner` holds it. Atomic (one statement), durable."""
        ...
    async def list_maildrop_locks(self) -> list[tuple[int, str]]:
        """(account id, owner) of every lock, expired ones included. Read."""
        ...


class Queue(Protocol):
    """The outbound queue: one entry per message and destination domain. A worker leases an
    entry for one attempt (claim), renews the lease while it works, and records the outcome
    only while it holds an unexpired lease (compare-and-set; `store/core/queue.py`)."""

    async def queue_add(
        self,
        blob: StagedBlob,
        sender: str,
        by_domain: dict[str, list[QueueRecipient]],
        *,
        ret: str | None = None,
        envid: str | None = None,
        queue_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> list[int]:
        """Queue a message for its domains: one entry each, due now, the blob referenced once per
        entry; the ids. Atomic, durable. Raises StorageFull."""
        ...
    async def queue_list(self) -> list[QueueEntry]:
        """Every entry, by id. Read."""
        ...
    async def queue_get(self, entry_id: int) -> QueueEntry | None:
        """One entry as it is now, or None. Read."""
        ...
    async def queue_claim(self, owner: str, lease: float, limit: int) -> list[QueueEntry]:
        """Lease up to `limit` due entries nobody holds to `owner` for `lease` seconds; never one
        entry to two claimers (PostgreSQL skips rows another node is claiming). Atomic (one
        statement), durable."""
        ...
    async def queue_update(
        self,
        entry_id: int,
        owner: str,
        recipients: Sequence[QueueRecipient],
        *,
        next_attempt: datetime | None,
        last_error: str,
        warned: bool | None = None,
        extra: dict[str, str] | None = None,
        attempt: bool = True,
        trace: Sequence[TraceEvent] = (),
    ) -> None:
        """Record an attempt's outcome; only while `owner` holds an unexpired lease on the entry
        (compare-and-set). Releases the lease; `next_attempt=None` removes the entry (its blob
        released); `extra=None` keeps the entry's extra data; `attempt=False` when no delivery
        attempt was made (the attempt count stays); `trace`: the message trace's events of the
        outcome, recorded with it. Atomic, durable. Raises LeaseLost (the lease expired or was
        taken over), NotFound (the entry is gone)."""
        ...
    async def queue_delete(self, entry_id: int) -> bool:
        """Remove an entry, leased or not (the operator); False if there was none. A worker
        holding its lease then gets LeaseLost or NotFound. Atomic, durable."""
        ...
    async def queue_flush(self) -> int:
        """Make every entry due now; how many were waiting. Atomic (one statement), durable."""
        ...
    async def queue_due(self, limit: int) -> list[QueueEntry]:
        """Up to `limit` entries that are due and not leased (or whose lease ran out), oldest due
        first; nothing is claimed. Read."""
        ...
    async def queue_claim_entry(self, entry_id: int, owner: str, lease: float) -> QueueEntry | None:
        """Lease one entry for one attempt if it is due and nobody holds it: its current state,
        or None (not due, held by another, or gone). Atomic (one statement), durable."""
        ...
    async def queue_renew(self, entry_ids: Sequence[int], owner: str, lease: float) -> list[int]:
        """Extend to `lease` seconds from now the leases `owner` still holds (unexpired); the ids
        renewed. An entry missing from the answer is no longer the owner's to deliver. Atomic
        (one statement), durable."""
        ...
    async def queue_retry(self, entry_id: int) -> bool:
        """Make one entry due now (the operator's "retry"); False when there is no such entry.
        Atomic, durable."""
        ...


class Maintenance(Protocol):
    """The store's own upkeep: its consistency check (`mailwright check`) and the blob
    garbage collector (`app`'s hourly loop)."""

    async def check(self) -> list[str]:
        """Consistency problems, one line each; empty when the store is sound. Read; one
        snapshot."""
        ...
    async def collect_garbage(self) -> int:
        """Remove released blobs past their grace period, files no row knows and stale staging
        files; how many. Not atomic: candidates are found by reads outside any write, then
        removed in short write operations that check each again (a delivery never waits for
        the walk); each of those is atomic and durable."""
        ...


class SieveStore(Protocol):
    """Sieve scripts (RFC 5804 storage: at most one active per account) and the memory of
    vacation replies and duplicate tests (RFC 5230 4.6, RFC 7352 3), keyed per account."""

    async def sieve_put(self, account_id: int, name: str, content: str) -> None:
        """Create or replace a script (a replaced one keeps its active state). Atomic, durable.
        Raises NotFound (no such account)."""
        ...
    async def sieve_get(self, account_id: int, name: str) -> str | None:
        """A script's text, or None. Read."""
        ...
    async def sieve_list(self, account_id: int) -> list[SieveScriptInfo]:
        """The account's scripts by name, sizes in octets of UTF-8. Read."""
        ...
    async def sieve_delete(self, account_id: int, name: str) -> None:
        """Delete a script. Atomic, durable. Raises NotFound, InvalidOperation for the active
        script (RFC 5804 2.10)."""
        ...
    async def sieve_rename(self, account_id: int, old: str, new: str) -> None:
        """Rename a script (it keeps its active state). Atomic, durable. Raises NotFound (`old`),
        AlreadyExists (`new`, itself included)."""
        ...
    async def sieve_activate(self, account_id: int, name: str | None) -> None:
        """Make `name` the one active script (None: none is). Atomic, durable. Raises NotFound."""
        ...
    async def sieve_active(self, account_id: int) -> tuple[str, str] | None:
        """The active script's (name, text), or None. Read."""
        ...
    async def sieve_remember(self, account_id: int, key: str, seconds: float) -> bool:
        """Remember `key` for `seconds` from now; True if it was not remembered already (the
        vacation reply or the duplicate may go). Expired keys are forgotten, 100 at a time.
        Atomic (two deliveries at once: one True), durable."""
        ...
    async def sieve_seen(self, account_id: int, key: str) -> bool:
        """Whether `key` is remembered and not expired. Read."""
        ...
    async def sieve_active_many(self, account_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """`sieve_active` of several accounts in one read (those with an active script), so
        delivery to many recipients costs one round trip. Read."""
        ...


class SpamStore(Protocol):
    """The spam filter's classifier counts, training ledger, reputation and positions."""

    async def spam_counts(
        self, scopes: Sequence[int], tokens: Sequence[int]
    ) -> dict[tuple[int, int], tuple[int, int]]:
        """(scope, token) -> (ham, spam) for the known ones. Read."""
        ...
    async def spam_totals(self, scopes: Sequence[int]) -> dict[int, tuple[int, int]]:
        """scope -> (ham, spam) messages taught, (0, 0) for none. Read."""
        ...
    async def spam_learn(self, lesson: SpamLesson) -> bool:
        """Apply one lesson (see `SpamLesson`); False when it changes nothing. Atomic, durable."""
        ...
    async def spam_label(self, account_id: int, blob_id: str) -> str | None:
        """The ledger's label for a message of the account, or None. Read."""
        ...
    async def spam_senders(
        self, account_id: int, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(kind, name) -> (ham, spam) reputation of the account's known ones among `keys`. Read."""
        ...
    async def spam_positions(self, mailbox_ids: Sequence[int]) -> dict[int, int]:
        """mailbox id -> MODSEQ the trainer has read up to (known ones). Read."""
        ...
    async def spam_set_position(self, mailbox_id: int, modseq: int) -> None:
        """Remember how far the trainer has read a mailbox. Atomic, durable."""
        ...
    # envelope state shared by every process of the server (times are Unix seconds):
    # greylisting triplets and rate-limit counts
    async def spam_greylist_seen(self, key: str, now: float) -> tuple[float, float]:
        """(first attempt, passed until) of triplet `key`; a new one is recorded with `now` as
        its first attempt (two processes seeing it at once agree on one row). Atomic (one
        statement), durable."""
        ...
    async def spam_greylist_set(self, key: str, first: float, passed_until: float) -> None:
        """Record a triplet's first attempt and how long it has passed. Atomic (one statement),
        durable."""
        ...
    async def spam_rate_add(self, key: str, slot: int, since_slot: int, limit: int) -> bool:
        """Count one event for `key` in `slot` unless the slots from `since_slot` on already hold
        `limit`; True when counted. The key's slots before `since_slot` are removed. Atomic
        (two processes cannot both take the last place), durable."""
        ...
    async def spam_envelope_purge(self, now: float, first_before: float, slot_before: int) -> int:
        """Remove triplets neither passed (until after `now`) nor first seen after
        `first_before`, and rate slots before `slot_before`; the number of rows removed.
        Atomic, durable."""
        ...
    async def spam_senders_many(
        self, account_ids: Sequence[int], keys: Sequence[tuple[str, str]]
    ) -> dict[int, dict[tuple[str, str], tuple[int, int]]]:
        """`spam_senders` of several accounts in one read (those that know a key). Read."""
        ...
    async def spam_labels_many(self, account_id: int, blob_ids: Sequence[str]) -> dict[str, str]:
        """`spam_label` of many messages of one account in one read (those it holds). Read."""
        ...


class ReportData(Protocol):
    """DMARC aggregate reporting (RFC 7489 7.2) and TLS reporting (RFC 8460): results our
    servers counted, and reports other domains sent us."""

    async def record_dmarc_result(self, row: DmarcResultRow) -> None:
        """Count one evaluated message into its row (created with `row.count`; the policy seen
        last is kept). Atomic, durable."""
        ...
    async def dmarc_results(self, before_day: int) -> list[DmarcResultRow]:
        """Every recorded row of a day before `before_day`, ordered by domain and day. Read."""
        ...
    async def delete_dmarc_results(self, policy_domain: str, before_day: int) -> int:
        """Forget a policy domain's rows before `before_day` (its report went out); how many.
        Atomic, durable."""
        ...
    async def add_dmarc_report(self, report: ReceivedDmarcReport) -> bool:
        """Keep a received report; False when (org_name, report_id) was already stored. Atomic
        (one statement), durable."""
        ...
    async def list_dmarc_reports(self, domain: str | None = None) -> list[ReceivedDmarcReport]:
        """Received reports, newest date range first (one domain's, or all). Read."""
        ...
    async def tls_result_add(self, result: TLSResult) -> None:
        """Add ``result.count`` to the matching day/domain/policy/outcome/host row. Atomic,
        durable."""
        ...
    async def tls_results_take(self, before_day: str) -> list[TLSResult]:
        """Remove and return every result of days before ``before_day`` (a report is built from
        them), by day and domain. Atomic (of several nodes, one takes each row), durable."""
        ...
    async def tls_results(self) -> list[TLSResult]:
        """Every result not yet reported, oldest day first. Read."""
        ...
    async def tls_report_add(self, report: TLSReport) -> int | None:
        """Store a received report: its id, or None when the same organisation's report id is
        known. Atomic, durable."""
        ...
    async def tls_reports(self, limit: int = 100) -> list[TLSReport]:
        """The newest received reports first, at most `limit`. Read."""
        ...


class WebState(Protocol):
    """The web interface's state: browser sessions, per-account settings (the admin role,
    the TOTP secret) and app passwords for mail clients."""

    async def web_session_put(self, session: WebSession) -> None:
        """Insert or replace the session with ``session.id``. Atomic, durable. Raises NotFound
        (no such account)."""
        ...
    async def web_session_get(self, session_id: str) -> WebSession | None:
        """The session, or None. Read."""
        ...
    async def web_session_delete(self, session_id: str) -> None:
        """End one session (none is fine). Atomic, durable."""
        ...
    async def web_sessions_delete(self, account_id: int, keep: str | None = None) -> int:
        """End every session of the account but ``keep``; how many ended. Atomic, durable."""
        ...
    async def web_sessions_purge(self, now: float) -> int:
        """Delete the sessions expired at ``now``; how many. Atomic, durable."""
        ...
    async def account_setting(self, account_id: int, key: str) -> str | None:
        """One setting of the account, or None. Read."""
        ...
    async def set_account_setting(self, account_id: int, key: str, value: str | None) -> None:
        """Set, or with None remove, one setting. Atomic, durable. Raises NotFound (no such
        account)."""
        ...
    async def account_settings(self, key: str) -> dict[int, str]:
        """Every account's value of ``key``, by account id (accounts without it left out). Read."""
        ...
    async def app_password_add(self, account_id: int, label: str, digest: str) -> AppPassword:
        """A new app password (its digest only is kept). Atomic, durable. Raises NotFound (no
        such account)."""
        ...
    async def app_passwords(self, account_id: int) -> list[AppPassword]:
        """The account's app passwords. Read."""
        ...
    async def app_password_delete(self, account_id: int, password_id: int) -> bool:
        """Delete one; False if the account had no such password. Atomic, durable."""
        ...


class UrlAuthStore(Protocol):
    """IMAP URLAUTH (RFC 4467): the per-mailbox access keys that URLAUTH tokens are made from."""

    async def urlauth_key(self, account_id: int, mailbox_id: int) -> bytes | None:
        """The mailbox's access key, or None when it has none. Read."""
        ...
    async def urlauth_key_ensure(self, account_id: int, mailbox_id: int) -> bytes:
        """The mailbox's access key, created when missing (GENURLAUTH, RFC 4467 6.2). Atomic,
        durable. Raises NotFound when the mailbox is not the account's."""
        ...
    async def urlauth_reset(self, account_id: int, mailbox_id: int | None) -> int:
        """Drop one mailbox's key, or all of the account's (None): RESETKEY (RFC 4467 6.1); how
        many were dropped. Atomic, durable."""
        ...


class AccessDenied(StoreError):
    """The acting account lacks a right the operation needs on another account's mailbox
    (RFC 4314 4): IMAP ``NO [NOPERM]``. `needed` holds the missing rights."""

    def __init__(self, needed: str, text: str | None = None) -> None:
        super().__init__(text or f"missing right(s) {needed}")
        self.needed = needed


#: every right of RFC 4314 2.1, in the order the responses list them; the owner of a mailbox
#: holds them all, always
ALL_RIGHTS = "lrswipkxtea"


#: where every interface shows other accounts' mailboxes: "Other Users/<owner>/<name>"
#: (the RFC 2342 other users' namespace of IMAP; webmail and Sieve fileinto use the same names)
OTHER_USERS_PREFIX = "Other Users/"


def split_shared_name(name: str) -> tuple[str, str] | None:
    """(owner address, name in the owner's tree) of a name in the other users' namespace,
    or None for any other name. The caller validates the name first (no ".." levels)."""
    if not name.startswith(OTHER_USERS_PREFIX):
        return None
    owner, _, inner = name[len(OTHER_USERS_PREFIX):].partition("/")
    if not owner or not inner:
        return None
    return owner.lower(), canonical_mailbox_name(inner)


@dataclass(frozen=True, slots=True)
class SharedMailbox:
    """A mailbox of another account that the actor may look up (RFC 4314 ``l``)."""

    owner: str  # the owner's address, as the "Other Users/" namespace shows it
    mailbox: Mailbox
    rights: str  # the actor's effective rights, letters of ALL_RIGHTS


class AccessControl(Protocol):
    """Mailbox sharing (RFC 4314 ACLs). Every method takes the acting account; the owner of a
    mailbox has every right on it; anyone else has the rights its ACL grants to the actor's
    address, to a group (an alias) the actor belongs to, to "authenticated" or "anyone",
    minus the negative rights ("-identifier") that match. A missing right raises
    `AccessDenied`; `acl_rights` answers `NotFound` for a mailbox the actor has no right on
    (names cannot be probed, RFC 4314 6). The operations that change messages or delete a
    mailbox check the rights in their own transaction, so a revocation (SETACL/DELETEACL)
    commits wholly before or after each of them."""

    async def acl_rights(self, actor: int, mailbox_id: int) -> str:
        """The actor's effective rights (ALL_RIGHTS for the owner). Read. Raises NotFound (also
        for a mailbox the actor has no right on, RFC 4314 6)."""
        ...
    async def acl_require(self, actor: int, mailbox_id: int, needed: str) -> Mailbox:
        """The mailbox if the actor holds every right of `needed`. Read. Raises AccessDenied,
        NotFound."""
        ...
    async def acl_get(self, actor: int, mailbox_id: int) -> list[tuple[str, str]]:
        """(identifier, rights) entries of the ACL, the owner first (RFC 4314 3.3). Read. Raises
        AccessDenied (needs ``a``), NotFound."""
        ...
    async def acl_set(self, actor: int, mailbox_id: int, identifier: str, rights: str) -> None:
        """Set, add to (``+``) or take from (``-``) an identifier's rights (RFC 4314 3.1; empty:
        the entry goes). Atomic, durable. Raises AccessDenied (needs ``a``), NotFound,
        InvalidOperation (the owner, or an identifier that names no account, group or
        "anyone"), ValueError (an unknown right, before anything changes)."""
        ...
    async def acl_delete(self, actor: int, mailbox_id: int, identifier: str) -> None:
        """Remove an identifier's entry (RFC 4314 3.2). Atomic, durable. Raises AccessDenied
        (needs ``a``), NotFound, InvalidOperation (the owner, or an invalid identifier)."""
        ...
    async def shared_mailboxes(self, actor: int) -> list[SharedMailbox]:
        """Other accounts' mailboxes the actor may look up (``l``), by owner and name. Read.
        Raises NotFound (no such actor)."""
        ...
    async def create_mailbox_as(
        self, actor: int, owner_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """CREATE in an owner's tree: ``k`` on the parent for anyone but the owner (who alone
        makes top-level mailboxes); the new mailbox inherits its parent's ACL (so a child of a
        shared folder stays shared). Atomic, durable. Raises AccessDenied, AlreadyExists,
        NotFound."""
        ...
    async def delete_mailbox_as(self, actor: int, mailbox_id: int) -> None:
        """DELETE with ``x``, checked in the deletion's own transaction. Atomic, durable. Raises
        AccessDenied, NotFound, InvalidOperation (INBOX)."""
        ...
    async def list_messages_as(self, actor: int, mailbox_id: int) -> list[MessageRecord]:
        """SELECT's message list with ``r`` (checked by a read just before the listing's). Read.
        Raises AccessDenied, NotFound."""
        ...
    async def mailbox_status_as(self, actor: int, mailbox_id: int) -> MailboxStatus:
        """STATUS with ``r`` (checked by a read just before the status). Read. Raises
        AccessDenied, NotFound."""
        ...
    async def append_as(
        self, actor: int, mailbox_id: int, items: Sequence[AppendItem]
    ) -> list[MessageRecord]:
        """APPEND with ``i``; flags the actor may not set are dropped (``s`` for \\Seen, ``t``
        for \\Deleted, ``w`` for the others). Atomic, durable (as `Messages.append_many`).
        Raises AccessDenied, NotFound, QuotaExceeded, StorageFull."""
        ...
    async def store_flags_as(
        self,
        actor: int,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult:
        """STORE changing only the flags the actor has the right for (``s`` \\Seen, ``t``
        \\Deleted, ``w`` the others; the rest stay as they are). Atomic, durable. Raises
        AccessDenied only when they may change none of the flags named (any, for a REPLACE),
        RFC 4314 4; NotFound."""
        ...
    async def expunge_as(self, actor: int, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """EXPUNGE with ``e``. Atomic, durable. Raises AccessDenied, NotFound."""
        ...
    async def copy_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """COPY: ``r`` on the source, ``i`` on the target; the copies keep only the flags the
        actor may set in the target (RFC 4314 4). Atomic, durable. Raises AccessDenied,
        NotFound, QuotaExceeded, StorageFull."""
        ...
    async def move_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """MOVE: ``r``, ``t`` and ``e`` on the source, ``i`` on the target (RFC 6851 3); flags as
        for COPY. Atomic, durable. Raises AccessDenied, NotFound, QuotaExceeded, StorageFull."""
        ...


class FanOut(Protocol):
    """One message to many local recipients: one blob, one transaction, a result per account
    (the batched reads that keep the work before it from costing a round trip per recipient
    are the `*_many` methods of `SieveStore` and `SpamStore`)."""

    async def deliver_each(
        self,
        local: LocalCopies | None,
        queued: QueueAddition | None,
        report: RefusalReport | None = None,
        *,
        trace: Sequence[TraceEvent] | Callable[[Delivered], Sequence[TraceEvent]] = (),
    ) -> Delivered:
        """Store the local copies and add the queue entries of one accepted message in one unit
        of work, the blob referenced once per copy. With `report`, an account that cannot take
        its copy (over quota, disabled, deleted) gets none and is named in `refused`, the
        others are committed, and so are the entries `report` makes of the refusals; without
        it, or when nothing else would be stored, any refusal fails the whole unit. `trace`:
        the message trace's events, in the same unit of work (a function of what was stored
        when they depend on it, e.g. which accounts were refused). Atomic, durable. Raises
        QuotaExceeded (when every refusal is the quota's), NotFound (any other refusal),
        StorageFull."""
        ...


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One decision about a message, for the message trace (`mailwright trace`, /admin/trace).

    `stage` is one of `TRACE_STAGES`; `queue_id` is the id of the SMTP reply and the queue,
    `message_id` the Message-ID without its angle brackets ("" when not known at that point:
    the queue's events carry only the queue id, and the trace joins them by it)."""

    stage: str
    detail: str
    queue_id: str = ""
    message_id: str = ""
    recipient: str = ""
    at: datetime | None = None  # set by the store (its clock) when the event is recorded


# accepted: taken at the end of DATA; rejected: refused (the reply says why); filtered: the spam
# filter or Sieve decided something; delivered: into a local mailbox; queued: for a remote
# domain; deferred: an attempt failed temporarily; relayed: the remote server took it;
# bounced: it failed for good; expired: given up after [outbound] max_age; dsn: a report sent
TRACE_STAGES = ("accepted", "rejected", "filtered", "delivered", "queued", "deferred",
                "relayed", "bounced", "expired", "dsn")


class Trace(Protocol):
    """The message trace: what happened to each message, kept for a bounded time."""

    async def trace_add(self, events: Sequence[TraceEvent]) -> None:
        """Record events (one small insert); their time is the store's clock. Atomic, durable."""
        ...
    async def trace_find(self, key: str, limit: int = 500) -> list[TraceEvent]:
        """Every event of the message with this queue id or Message-ID (angle brackets or not),
        and of every queue id that Message-ID was seen with; oldest first. Read."""
        ...
    async def trace_purge(self, older_than: float) -> int:
        """Delete events older than `older_than` seconds; how many. Atomic, durable."""
        ...


class SpamOverrides(Protocol):
    """The administrator's spam settings over the configuration's `[spam]` (web admin):
    `scope` "" is the server, else a recipient domain; `value` is the key's JSON text."""

    async def spam_overrides(self) -> dict[tuple[str, str], str]:
        """(scope, key) -> JSON text of every override. Read."""
        ...
    async def spam_overrides_set(self, changes: Mapping[tuple[str, str], str | None]) -> None:
        """Set (JSON text) or remove (None) overrides. Atomic (all of them or none), durable."""
        ...


class ChangeFeed(Protocol):
    """Who watches what changed: after each commit that changes a mailbox (or an account's
    mailbox list, `store.changes.account_channel`) the store publishes (key, MODSEQ) on this
    hub, and a watcher asks `Messages.changes_since` what happened. The hub carries no data,
    so a lost or coalesced wake-up loses nothing."""

    changes: ChangeHub


class Listings(Protocol):
    """The shared, read-only listing of a mailbox that SELECT reads (`MessageListing`)."""

    async def listing(self, mailbox_id: int) -> MessageListing:
        """Every message of the mailbox as one shared, read-only `MessageListing` (what SELECT
        needs in one read); an empty listing at MODSEQ 0 for an unknown mailbox. Large
        mailboxes are kept in memory and refreshed by MODSEQ, so a warm listing costs one
        indexed query for the delta and no per-message work. Read; one snapshot."""
        ...
    async def listing_as(self, actor: int, mailbox_id: int) -> MessageListing:
        """`listing` with ``r`` (RFC 4314 4: SELECT and EXAMINE), checked by a read just before
        the listing's. Read. Raises AccessDenied, NotFound."""
        ...


class Store(
    BlobStore, Accounts, Mailboxes, Messages, MaildropLocks, Queue, SieveStore, SpamStore,
    ReportData, Metadata, WebState, Maintenance, UrlAuthStore, AccessControl, FanOut,
    Trace, SpamOverrides, ChangeFeed, Listings, Protocol,
):
    """Every role of the store together: what a backend implements and what `app` (and the
    CLI's `cli/common.py`) builds. Everything else asks for the roles it uses, and is handed
    this one object: the narrowing is by type only."""

    async def open(self) -> None:
        """Connect, migrate the schema, start the backend's workers. Raises StoreError when
        PostgreSQL cannot be reached, migrated or listened to."""
        ...
    async def close(self) -> None:
        """Stop the workers; nothing is lost (every change was durable when it returned)."""
        ...


# --- the listing of a mailbox ------------------------------------------------------------------


class MessageListing:
    """Every message of one mailbox at one HIGHESTMODSEQ, shared read-only.

    Dovecot answers SELECT from its index file in one read; this is our index: the records by
    UID (insertion order is UID order), the UID list, and the aggregates SELECT asks for
    (keywords in use, the first unseen message), each computed once per listing and then
    shared by every session that selects the mailbox until the next change. Nobody mutates
    `records` or `uids`: a session that changes its view copies them first
    (`imapd/view.py`), and a store refreshing its cache builds a new listing.
    """

    __slots__ = ("_counts", "_first_unseen", "_keywords", "derived", "mailbox_id", "modseq",
                 "records", "uids")

    def __init__(self, mailbox_id: int, modseq: int, records: dict[int, MessageRecord]) -> None:
        self.mailbox_id = mailbox_id
        self.modseq = modseq
        self.records = records
        self.uids: list[int] = list(records)
        self._keywords: frozenset[str] | None = None
        self._first_unseen: int | None = -1  # -1: not computed yet
        self._counts: tuple[int, int, int] | None = None
        #: what a reader derived from this listing and keeps with it (a protocol's rendering
        #: of every message), by the reader's own key; dropped with the listing, so it is
        #: never stale. Readers replace the dict rather than mutate it.
        self.derived: dict[object, object] = {}

    def __len__(self) -> int:
        return len(self.uids)

    @property
    def keywords(self) -> frozenset[str]:
        """The keywords (non-system flags) on any message."""
        if self._keywords is None:
            found: set[str] = set()
            # flag sets are few and shared between records: look at each distinct one once
            for flags in {r.flags for r in self.records.values()}:
                found.update(f for f in flags if not f.startswith("\\"))
            self._keywords = frozenset(found)
        return self._keywords

    @property
    def first_unseen(self) -> int | None:
        """The position (0-based) of the first message without ``\\Seen``, None if none."""
        if self._first_unseen == -1:
            self._first_unseen = next(
                (i for i, r in enumerate(self.records.values()) if "\\Seen" not in r.flags),
                None,
            )
        return self._first_unseen

    @property
    def counts(self) -> tuple[int, int, int]:
        """(messages without ``\\Seen``, messages with ``\\Deleted``, total size), computed once
        per listing: what STATUS asks besides MESSAGES (RFC 9051 6.3.11)."""
        if self._counts is None:
            by_flags: dict[frozenset[str], int] = {}
            size = 0
            for r in self.records.values():
                by_flags[r.flags] = by_flags.get(r.flags, 0) + 1
                size += r.size
            unseen = sum(n for f, n in by_flags.items() if "\\Seen" not in f)
            deleted = sum(n for f, n in by_flags.items() if "\\Deleted" in f)
            self._counts = (unseen, deleted, size)
        return self._counts
