"""The storage interface every other layer speaks to.

Protocol servers, delivery and the queue see only this module: typed records, typed errors and
the async `Store` protocol. Two backends implement it (`store.sqlite`, `store.postgres`); nothing
here may mention SQL, files or connection handling.

House rules for implementations:
- A method either changes everything it describes or nothing (one transaction).
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

    def write(self, data: bytes) -> None: ...

    @property
    def size(self) -> int: ...

    async def finish(self) -> StagedBlob: ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    """Message content, apart from the rows that reference it.

    A session streams a message in (`blob_writer`), then gives the staged blob to one unit of
    work, which references it, or back to `discard_staged`; stored content is read by id.
    Where the bytes live (files with fsync and directory fsync; PostgreSQL `bytea` behind a
    node-local file cache) is the backend's, never the session's."""

    # exact: keep the bytes as sent, no LF -> CRLF (binary content, RFC 3516 4.4)
    def blob_writer(self, *, exact: bool = False) -> BlobWriter:
        """A writer into staging (StorageFull at `finish` when the disk is full)."""
        ...

    async def read_staged(self, blob: StagedBlob, *, limit: int | None = None) -> bytes:
        """The content of a staged blob (before or after a unit referenced it), its first
        `limit` octets if given; NotFound once it was discarded."""
        ...

    def discard_staged(self, blob: StagedBlob) -> None:
        """Drop a staged blob no unit of work referenced (a refused or aborted message); safe
        to call for one that was referenced meanwhile: stored content is never touched."""
        ...

    async def read_blob(self, blob_id: str) -> bytes:
        """A stored blob's content; NotFound (it stays readable for the grace period after its
        last reference went, RFC 2180 4.1)."""
        ...

    async def get_meta(self, blob_id: str) -> bytes:
        """A stored blob's parse-once metadata (`MessageInfo.from_meta` reads it); NotFound."""
        ...


class AccountLookup(Protocol):
    """Domains, accounts, aliases and send-as grants as the sessions see them: reads only.
    What SMTP, IMAP, POP3 and the login paths look up; changing them is `Accounts`."""

    async def list_domains(self) -> list[Domain]:
        """Every local domain, by name."""
        ...
    async def has_domain(self, name: str) -> bool:
        """Whether `name` (canonical) is a local domain."""
        ...
    async def get_account(self, account_id: int) -> Account | None:
        """The account, or None."""
        ...
    async def find_account(self, address: str) -> Account | None:
        """The account of a canonical address, or None."""
        ...
    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        """Every account (of one domain, matched literally), by address."""
        ...
    async def usage(self, account_id: int) -> Usage:
        """Octets and messages the account holds (what its quota counts); NotFound."""
        ...
    async def get_alias(self, source: str) -> Alias | None:
        """The alias, or None."""
        ...
    async def list_aliases(self) -> list[Alias]:
        """Every alias, by source."""
        ...
    async def list_send_as(self, account_id: int | None = None) -> list[tuple[int, str]]:
        """(account id, address) grants, of one account or all, ordered."""
        ...
    async def message_quota(self, account_id: int) -> int:
        """The limit (0 = none); NotFound."""
        ...


class Accounts(AccountLookup, Protocol):
    """Domains, accounts, aliases and send-as grants as the operator manages them (CLI, web
    admin); `AccountLookup` is the part the sessions read."""

    async def add_domain(self, name: str) -> Domain:
        """A new local domain; AlreadyExists."""
        ...
    async def delete_domain(self, name: str) -> None:
        """Delete a domain and its aliases; InvalidOperation while it has accounts, NotFound."""
        ...
    async def add_account(
        self, address: str, password_hash: str, quota_bytes: int = 0
    ) -> Account:
        """A new account with the default mailboxes, subscribed; atomic. NotFound (domain not
        local), AlreadyExists (address taken)."""
        ...
    async def set_password(self, account_id: int, password_hash: str) -> None:
        """Replace the password hash; NotFound."""
        ...
    async def update_account(
        self,
        account_id: int,
        *,
        quota_bytes: int | None = None,
        pop3_keep: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Change the settings given (None keeps one); the account as it now is. NotFound."""
        ...
    async def delete_account(self, account_id: int) -> None:
        """Delete the account and all it owns (blobs released); atomic; NotFound."""
        ...
    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        """An alias or "@domain" catch-all; NotFound (domain), AlreadyExists (an account or an
        alias already)."""
        ...
    async def delete_alias(self, source: str) -> None:
        """Delete an alias; NotFound."""
        ...
    # send-as grants: addresses an administrator lets an account use in From:/Sender:
    # (RFC 6409 8.1 leaves the MSA's rules to local policy)
    async def grant_send_as(self, account_id: int, address: str) -> None:
        """Grant (twice is once); NotFound when the account does not exist."""
        ...
    async def revoke_send_as(self, account_id: int, address: str) -> bool:
        """Take a grant back; False if there was none."""
        ...
    # RFC 9208 QUOTA=RES-MESSAGE: the account's limit on its number of messages (0 = none),
    # enforced with the storage quota (QuotaExceeded) wherever messages are added
    async def set_message_quota(self, account_id: int, limit: int) -> None:
        """Set the limit; NotFound."""
        ...


class Mailboxes(Protocol):
    """An account's mailboxes as a hierarchy of names ("/" separator, INBOX any case)."""

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        """The account's mailboxes, by name."""
        ...
    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        """The mailbox of that name, or None."""
        ...
    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        """The mailbox, or None."""
        ...
    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """A new empty mailbox with a fresh UIDVALIDITY; AlreadyExists, NotFound (account)."""
        ...
    async def delete_mailbox(self, mailbox_id: int) -> None:
        """Delete a mailbox and its messages (quota uncharged, blobs released); atomic.
        NotFound; InvalidOperation for INBOX."""
        ...
    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        """Rename with inferiors, or move INBOX's messages (RFC 9051 6.3.6); atomic. NotFound,
        AlreadyExists (anywhere in the renamed subtree), InvalidOperation (into itself)."""
        ...
    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """(Un)subscribe a name, which need not exist; NotFound (account)."""
        ...
    async def list_subscriptions(self, account_id: int) -> list[str]:
        """Subscribed names, sorted."""
        ...
    async def set_retention(self, mailbox_id: int, days: int) -> None:
        """Keep messages `days` days (0: forever)."""
        ...
    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        """Counts, UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ from one snapshot; NotFound."""
        ...
    # IMAP \Recent (RFC 3501 2.3.2), kept per mailbox as Dovecot does: a message is recent
    # to the first session that sees it.
    async def claim_recent(self, mailbox_id: int, upto_uid: int, claim: bool) -> int:
        """The first recent UID; with `claim`, moved past `upto_uid` atomically. NotFound."""
        ...
    async def count_recent(self, mailbox_id: int) -> int:
        """Messages no session has claimed yet (STATUS RECENT)."""
        ...
    async def message_counts(self, account_id: int) -> dict[int, tuple[int, int, int, int]]:
        """Per mailbox: (messages, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ), one snapshot."""
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
        """Store one message; NotFound, QuotaExceeded, StorageFull."""
        ...
    async def append_many(
        self, mailbox_id: int, items: Sequence[AppendItem]
    ) -> list[MessageRecord]:
        """MULTIAPPEND (RFC 3502 3): every message in one transaction, or none of them."""
        ...
    async def deliver(
        self, blob: StagedBlob, targets: Sequence[DeliveryTarget]
    ) -> list[MessageRecord]:
        """One message into several mailboxes (a missing one falls back to INBOX), all or
        none; QuotaExceeded, StorageFull."""
        ...
    async def deliver_and_queue(
        self, local: LocalCopies | None, queued: QueueAddition | None,
        trace: Sequence[TraceEvent] = (),
    ) -> tuple[list[MessageRecord], list[int]]:
        """Local copies and outbound queue entries of one accepted message as one unit of
        work: a failure leaves neither (a client retrying after a 4xx gets no duplicate).
        `trace`: the message trace's events of this acceptance, in the same transaction."""
        ...
    async def list_messages(self, mailbox_id: int) -> list[MessageRecord]:
        """Every message of the mailbox, by UID."""
        ...
    async def get_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]:
        """The messages of those UIDs that exist, by UID."""
        ...
    async def changes_since(self, mailbox_id: int, modseq: int) -> ChangeSet:
        """What changed after `modseq` (RFC 7162 sync; IDLE); one snapshot."""
        ...
    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: Iterable[str],
        unchangedsince: int | None = None,
    ) -> StoreFlagsResult:
        """Change flags, one new MODSEQ for the changed ones; UNCHANGEDSINCE refusals in
        `failed` (RFC 7162 3.1.3)."""
        ...
    async def expunge(self, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """Remove messages (expunge records kept for QRESYNC, quota uncharged, blobs
        released); the UIDs removed."""
        ...
    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Copy messages: (old UID, new UID) pairs; QuotaExceeded; atomic."""
        ...
    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """Copy then expunge in one transaction (RFC 6851)."""
        ...
    async def expunge_older_than(self, mailbox_id: int, cutoff: datetime) -> list[int]:
        """Expunge messages whose internal date is before `cutoff` (retention)."""
        ...
    async def replace_message(
        self, mailbox_id: int, uid: int, dst_mailbox_id: int, item: AppendItem
    ) -> tuple[MessageRecord, list[int]]:
        """IMAP REPLACE (RFC 8508 3): the new message into `dst_mailbox_id` and the expunge of
        `uid` from `mailbox_id` in one transaction (NotFound when the old message is already
        gone: then nothing is stored); the new record and the expunged UIDs."""
        ...
    async def save_dates(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, float | None]:
        """IMAP SAVEDATE (RFC 8514): when each message was saved into its mailbox (epoch
        seconds; None for a message saved before save dates were kept)."""
        ...


class Metadata(Protocol):
    """IMAP METADATA (RFC 5464): annotations of a mailbox (`mailbox_id`) or of the server for
    the account (`mailbox_id` None); entry names are stored as given (the caller lower-cases)."""

    async def metadata_get(
        self, account_id: int, mailbox_id: int | None
    ) -> dict[str, bytes]:
        """The entries."""
        ...
    async def metadata_set(
        self,
        account_id: int,
        mailbox_id: int | None,
        changes: Sequence[tuple[str, bytes | None]],
        max_entries: int,
    ) -> None:
        """Set (value) or remove (None) entries in one transaction; MetadataLimit when the
        account would hold more than `max_entries` entries in all (nothing is changed then),
        NotFound when the mailbox is gone."""
        ...

    async def metadata_digests(self, account_id: int) -> dict[tuple[int | None, str], bytes]:
        """A digest of every annotation's value, keyed by (mailbox id or None, entry)."""
        ...


class MaildropLocks(Protocol):
    """POP3 maildrop lock (RFC 1939 8: exclusive access), shared across nodes."""

    async def lock_maildrop(self, account_id: int, owner: str, ttl: float) -> bool:
        """Take or extend the lock for `ttl` seconds; False while another owner holds it."""
        ...
    async def unlock_maildrop(self, account_id: int, owner: str) -> None:
        """Release the lock if `owner` holds it."""
        ...
    async def list_maildrop_locks(self) -> list[tuple[int, str]]:
        """(account id, owner) of every lock, expired ones included."""
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
        """Queue a message for its domains (one entry each, due now); atomic. StorageFull."""
        ...
    async def queue_list(self) -> list[QueueEntry]:
        """Every entry, by id."""
        ...
    async def queue_get(self, entry_id: int) -> QueueEntry | None:
        """One entry as it is now, or None."""
        ...
    async def queue_claim(self, owner: str, lease: float, limit: int) -> list[QueueEntry]:
        """Lease up to `limit` due entries nobody holds; never one entry to two claimers."""
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
        (compare-and-set), else LeaseLost (NotFound when the entry is gone). Releases the lease;
        `next_attempt=None` removes the entry; `extra=None` keeps the entry's extra data;
        `attempt=False` when no delivery attempt was made (the attempt count stays); `trace`:
        the message trace's events of the outcome, recorded with it."""
        ...
    async def queue_delete(self, entry_id: int) -> bool:
        """Remove an entry, leased or not (the operator); False if there was none."""
        ...
    async def queue_flush(self) -> int:
        """Make every entry due now; how many were waiting."""
        ...
    async def queue_due(self, limit: int) -> list[QueueEntry]:
        """Up to `limit` entries that are due and not leased (or whose lease ran out); no claim."""
        ...
    async def queue_claim_entry(self, entry_id: int, owner: str, lease: float) -> QueueEntry | None:
        """Lease one entry for one attempt if it is due and nobody holds it; its current state."""
        ...
    async def queue_renew(self, entry_ids: Sequence[int], owner: str, lease: float) -> list[int]:
        """Extend to `lease` seconds from now the leases `owner` still holds (unexpired); the ids
        renewed. An entry missing from the answer is no longer the owner's to deliver."""
        ...
    async def queue_retry(self, entry_id: int) -> bool:
        """Make one entry due now (the operator's "retry"); False when there is no such entry."""
        ...


class Maintenance(Protocol):
    async def check(self) -> list[str]:
        """Consistency problems, one line each; empty when the store is sound."""
        ...
    async def collect_garbage(self) -> int:
        """Remove released blobs past their grace period and orphaned files; how many."""
        ...


class SieveStore(Protocol):
    """Sieve scripts (RFC 5804 storage: at most one active per account) and the memory of
    vacation replies and duplicate tests (RFC 5230 4.6, RFC 7352 3), keyed per account."""

    async def sieve_put(self, account_id: int, name: str, content: str) -> None:
        """Create or replace a script (keeps its active state); NotFound (account)."""
        ...
    async def sieve_get(self, account_id: int, name: str) -> str | None:
        """A script's text, or None."""
        ...
    async def sieve_list(self, account_id: int) -> list[SieveScriptInfo]:
        """The account's scripts by name, sizes in octets."""
        ...
    async def sieve_delete(self, account_id: int, name: str) -> None:
        """NotFound; InvalidOperation for the active script (RFC 5804 2.10)."""
        ...
    async def sieve_rename(self, account_id: int, old: str, new: str) -> None:
        """NotFound (`old`), AlreadyExists (`new`, itself included)."""
        ...
    async def sieve_activate(self, account_id: int, name: str | None) -> None:
        """Make `name` the one active script (None: none); NotFound."""
        ...
    async def sieve_active(self, account_id: int) -> tuple[str, str] | None:
        """The active script's (name, text), or None."""
        ...
    async def sieve_remember(self, account_id: int, key: str, seconds: float) -> bool:
        """Remember `key` for `seconds`; True if it was not remembered already."""
        ...
    async def sieve_seen(self, account_id: int, key: str) -> bool:
        """Whether `key` is remembered and not expired."""
        ...
    async def sieve_active_many(self, account_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """`sieve_active` of several accounts in one read (those with an active script)."""
        ...


class SpamStore(Protocol):
    """The spam filter's classifier counts, training ledger, reputation and positions."""

    async def spam_counts(
        self, scopes: Sequence[int], tokens: Sequence[int]
    ) -> dict[tuple[int, int], tuple[int, int]]:
        """(scope, token) -> (ham, spam) for the known ones."""
        ...
    async def spam_totals(self, scopes: Sequence[int]) -> dict[int, tuple[int, int]]:
        """scope -> (ham, spam) messages taught, (0, 0) for none."""
        ...
    async def spam_learn(self, lesson: SpamLesson) -> bool:
        """Apply one lesson atomically (see `SpamLesson`); False when it changes nothing."""
        ...
    async def spam_label(self, account_id: int, blob_id: str) -> str | None:
        """The ledger's label for a message of the account, or None."""
        ...
    async def spam_senders(
        self, account_id: int, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(kind, name) -> (ham, spam) reputation of the known ones among `keys`."""
        ...
    async def spam_positions(self, mailbox_ids: Sequence[int]) -> dict[int, int]:
        """mailbox id -> MODSEQ the trainer has read up to (known ones)."""
        ...
    async def spam_set_position(self, mailbox_id: int, modseq: int) -> None:
        """Remember how far the trainer has read a mailbox."""
        ...
    # envelope state shared by every process of the server (times are Unix seconds):
    # greylisting triplets and rate-limit counts
    async def spam_greylist_seen(self, key: str, now: float) -> tuple[float, float]:
        """(first attempt, passed until) of triplet `key`; a new one is recorded with `now` as
        its first attempt (two processes seeing it at once agree on one row)."""
        ...
    async def spam_greylist_set(self, key: str, first: float, passed_until: float) -> None:
        """Record a triplet's first attempt and how long it has passed."""
        ...
    async def spam_rate_add(self, key: str, slot: int, since_slot: int, limit: int) -> bool:
        """Count one event for `key` in `slot` unless the slots from `since_slot` on already
        hold `limit`; True when counted. One transaction (two processes cannot both take the
        last place); the key's slots before `since_slot` are removed."""
        ...
    async def spam_envelope_purge(self, now: float, first_before: float, slot_before: int) -> int:
        """Remove triplets neither passed (until after `now`) nor first seen after
        `first_before`, and rate slots before `slot_before`; the number of rows removed."""
        ...
    async def spam_senders_many(
        self, account_ids: Sequence[int], keys: Sequence[tuple[str, str]]
    ) -> dict[int, dict[tuple[str, str], tuple[int, int]]]:
        """`spam_senders` of several accounts in one read (those that know a key)."""
        ...
    async def spam_labels_many(self, account_id: int, blob_ids: Sequence[str]) -> dict[str, str]:
        """`spam_label` of many messages of one account in one read (those it holds)."""
        ...


class ReportData(Protocol):
    """DMARC aggregate reporting (RFC 7489 7.2) and TLS reporting (RFC 8460): results our
    servers counted, and reports other domains sent us."""

    async def record_dmarc_result(self, row: DmarcResultRow) -> None:
        """Count one evaluated message into its row (created with `row.count`)."""
        ...
    async def dmarc_results(self, before_day: int) -> list[DmarcResultRow]:
        """Every recorded row of a day before `before_day`, ordered by domain and day."""
        ...
    async def delete_dmarc_results(self, policy_domain: str, before_day: int) -> int:
        """Forget a policy domain's rows before `before_day` (its report went out)."""
        ...
    async def add_dmarc_report(self, report: ReceivedDmarcReport) -> bool:
        """Keep a received report; False when (org_name, report_id) was already stored."""
        ...
    async def list_dmarc_reports(self, domain: str | None = None) -> list[ReceivedDmarcReport]:
        """Received reports, newest date range first (one domain's, or all)."""
        ...
    async def tls_result_add(self, result: TLSResult) -> None:
        """Add ``result.count`` to the matching day/domain/policy/outcome/host row."""
        ...
    async def tls_results_take(self, before_day: str) -> list[TLSResult]:
        """Remove and return every result of days before ``before_day`` (a report is built from
        them); one transaction."""
        ...
    async def tls_results(self) -> list[TLSResult]:
        """Every result not yet reported, oldest day first."""
        ...
    async def tls_report_add(self, report: TLSReport) -> int | None:
        """Store a received report; None when the same organisation's report id is known."""
        ...
    async def tls_reports(self, limit: int = 100) -> list[TLSReport]:
        """The newest received reports first."""
        ...


class WebState(Protocol):
    """The web interface's state: browser sessions, per-account settings (the admin role,
    the TOTP secret) and app passwords for mail clients."""

    async def web_session_put(self, session: WebSession) -> None:
        """Insert or replace the session with ``session.id``."""
        ...
    async def web_session_get(self, session_id: str) -> WebSession | None:
        """The session, or None."""
        ...
    async def web_session_delete(self, session_id: str) -> None:
        """End one session (none is fine)."""
        ...
    async def web_sessions_delete(self, account_id: int, keep: str | None = None) -> int:
        """End every session of the account but ``keep``; how many ended."""
        ...
    async def web_sessions_purge(self, now: float) -> int:
        """Delete the sessions expired at ``now``; how many."""
        ...
    async def account_setting(self, account_id: int, key: str) -> str | None:
        """One setting of the account, or None."""
        ...
    async def set_account_setting(self, account_id: int, key: str, value: str | None) -> None:
        """Set, or with None remove, one setting; NotFound for an unknown account."""
        ...
    async def account_settings(self, key: str) -> dict[int, str]:
        """Every account's value of ``key``, by account id (accounts without it left out)."""
        ...
    async def app_password_add(self, account_id: int, label: str, digest: str) -> AppPassword:
        """A new app password (its digest only is kept)."""
        ...
    async def app_passwords(self, account_id: int) -> list[AppPassword]:
        """The account's app passwords."""
        ...
    async def app_password_delete(self, account_id: int, password_id: int) -> bool:
        """Delete one; False if the account had no such password."""
        ...


class UrlAuthStore(Protocol):
    """IMAP URLAUTH (RFC 4467): the per-mailbox access keys that URLAUTH tokens are made from."""

    async def urlauth_key(self, account_id: int, mailbox_id: int) -> bytes | None:
        """The mailbox's access key, or None when it has none."""
        ...
    async def urlauth_key_ensure(self, account_id: int, mailbox_id: int) -> bytes:
        """The mailbox's access key, created when missing; NotFound for another's mailbox."""
        ...
    async def urlauth_reset(self, account_id: int, mailbox_id: int | None) -> int:
        """Drop one mailbox's key, or all of the account's (None); how many were dropped."""
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
        """The actor's effective rights (ALL_RIGHTS for the owner); NotFound."""
        ...
    async def acl_require(self, actor: int, mailbox_id: int, needed: str) -> Mailbox:
        """The mailbox if the actor holds every right of `needed`; AccessDenied, NotFound."""
        ...
    async def acl_get(self, actor: int, mailbox_id: int) -> list[tuple[str, str]]:
        """(identifier, rights) entries of the ACL, the owner first; needs ``a``."""
        ...
    async def acl_set(self, actor: int, mailbox_id: int, identifier: str, rights: str) -> None:
        """Set, add to (``+``) or take from (``-``) an identifier's rights (RFC 4314 3.1;
        empty: the entry goes); needs ``a``. InvalidOperation for the owner or an unknown
        identifier; ValueError for an unknown right."""
        ...
    async def acl_delete(self, actor: int, mailbox_id: int, identifier: str) -> None:
        """Remove an identifier's entry (RFC 4314 3.2); needs ``a``."""
        ...
    async def shared_mailboxes(self, actor: int) -> list[SharedMailbox]:
        """Other accounts' mailboxes the actor may look up (``l``), by owner and name."""
        ...
    async def create_mailbox_as(
        self, actor: int, owner_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """CREATE in an owner's tree: ``k`` on the parent for anyone but the owner; the new
        mailbox inherits its parent's ACL (so a child of a shared folder stays shared)."""
        ...
    async def delete_mailbox_as(self, actor: int, mailbox_id: int) -> None:
        """DELETE with ``x``."""
        ...
    async def list_messages_as(self, actor: int, mailbox_id: int) -> list[MessageRecord]:
        """SELECT's message list with ``r``."""
        ...
    async def mailbox_status_as(self, actor: int, mailbox_id: int) -> MailboxStatus:
        """STATUS with ``r``."""
        ...
    async def append_as(
        self, actor: int, mailbox_id: int, items: Sequence[AppendItem]
    ) -> list[MessageRecord]:
        """APPEND with ``i``; flags the actor may not set are dropped (``s`` for \\Seen,
        ``t`` for \\Deleted, ``w`` for the others)."""
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
        \\Deleted, ``w`` the others; the rest stay as they are); AccessDenied only when they
        may change none of the flags named (any, for a REPLACE), RFC 4314 4."""
        ...
    async def expunge_as(self, actor: int, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """EXPUNGE with ``e``."""
        ...
    async def copy_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """COPY: ``r`` on the source, ``i`` on the target; the copies keep only the flags the
        actor may set in the target (RFC 4314 4)."""
        ...
    async def move_as(
        self, actor: int, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> list[tuple[int, int]]:
        """MOVE: ``r``, ``t`` and ``e`` on the source, ``i`` on the target (RFC 6851 3);
        flags as for COPY."""
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
        """Store the local copies and add the queue entries of one accepted message in one
        unit of work, the blob referenced once per copy. With `report`, an account that cannot
        take its copy (over quota, disabled, deleted) gets none and is named in `refused`, the
        others are committed, and so are the entries `report` makes of the refusals; without
        it, or when nothing else would be stored, any refusal fails the whole unit
        (QuotaExceeded when all are the quota's, else NotFound). Durable when it returns.
        `trace`: the message trace's events, in the same unit of work (a function of what was
        stored when they depend on it, e.g. which accounts were refused)."""
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
        """Record events (one small insert); their time is the store's clock."""
        ...
    async def trace_find(self, key: str, limit: int = 500) -> list[TraceEvent]:
        """Every event of the message with this queue id or Message-ID (angle brackets or
        not), and of every queue id that Message-ID was seen with; oldest first."""
        ...
    async def trace_purge(self, older_than: float) -> int:
        """Delete events older than `older_than` seconds; how many."""
        ...


class SpamOverrides(Protocol):
    """The administrator's spam settings over the configuration's `[spam]` (web admin):
    `scope` "" is the server, else a recipient domain; `value` is the key's JSON text."""

    async def spam_overrides(self) -> dict[tuple[str, str], str]:
        """(scope, key) -> JSON text of every override."""
        ...
    async def spam_overrides_set(self, changes: Mapping[tuple[str, str], str | None]) -> None:
        """Set (JSON text) or remove (None) overrides, all in one transaction."""
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
        indexed query for the delta and no per-message work."""
        ...
    async def listing_as(self, actor: int, mailbox_id: int) -> MessageListing:
        """`listing` with ``r`` (RFC 4314 4: SELECT and EXAMINE); AccessDenied, NotFound."""
        ...


class Store(
    BlobStore, Accounts, Mailboxes, Messages, MaildropLocks, Queue, SieveStore, SpamStore,
    ReportData, Metadata, WebState, Maintenance, UrlAuthStore, AccessControl, FanOut,
    Trace, SpamOverrides, ChangeFeed, Listings, Protocol,
):
    """Every role of the store together: what a backend implements and what `app` builds.
    Code that needs only some roles may ask for those (e.g. `Queue`)."""

    async def open(self) -> None:
        """Connect, migrate the schema, start the backend's workers."""
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

    __slots__ = ("_first_unseen", "_keywords", "mailbox_id", "modseq", "records", "uids")

    def __init__(self, mailbox_id: int, modseq: int, records: dict[int, MessageRecord]) -> None:
        self.mailbox_id = mailbox_id
        self.modseq = modseq
        self.records = records
        self.uids: list[int] = list(records)
        self._keywords: frozenset[str] | None = None
        self._first_unseen: int | None = -1  # -1: not computed yet

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
