"""Learning from what users do, whatever interface they do it with.

Rather than a hook in every command that moves or flags a message (IMAP MOVE, COPY+EXPUNGE,
STORE, POP3, a future JMAP), the trainer reads the store's own change log: each mailbox's
`changes_since(position)` lists the messages that arrived in it or changed flags since the
trainer last looked, and the trainer's position per mailbox is kept in the store, so a restart
misses nothing and repeats nothing. What it learns from each message:

- in the Junk mailbox (special use \\Junk), or flagged `$Junk`: spam, unless our own
  X-Spam-Status says the filter put it there (then it is only remembered as "filed");
- flagged `$NotJunk` (wins over `$Junk`), or \\Answered, or in the \\Archive mailbox: ham;
- anywhere but Junk and Trash, a message remembered as spam or filed (moved out of Junk): ham,
  the most valuable lesson of all, a false positive corrected by its reader;
- in the \\Sent mailbox: its recipients become the account's contacts (reputation) and its
  words teach the account's own model ham;
- in Trash: nothing (deleting is not a judgement).

The store keeps one label per (account, message content), so the same message seen again (a
copy, a re-sync) teaches nothing twice, and a change of mind takes the old lesson back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from mailwright.log import event as log_event
from mailwright.spam.roles import TrainerStore
from mailwright.store.api import Account, Mailbox, MessageRecord

from .classifier import Analysis, Classifier, recipient_addresses, sender_keys

__all__ = ["Trainer", "messages_in"]

log = logging.getLogger("mailwright.spam")

MAX_LESSONS_PER_PASS = 500
MAX_MESSAGE_BYTES = 50 * 1024 * 1024


def _role(mailbox: Mailbox) -> str:
    use = (mailbox.special_use or "").lower()
    name = mailbox.name.lower()
    if use == "\\junk" or name in ("junk", "spam"):
        return "junk"
    if use == "\\trash" or name == "trash":
        return "trash"
    if use == "\\sent" or name == "sent":
        return "sent"
    if use == "\\archive":
        return "archive"
    return "normal"


def _filed_by_filter(analysis: Analysis) -> bool:
    status = analysis.document.header("x-spam-status") or ""
    return status.lower().startswith("yes")


class Trainer:
    def __init__(self, store: TrainerStore, classifier: Classifier, hostname: str) -> None:
        self.store = store
        self.classifier = classifier
        self.hostname = hostname.lower()

    def dmarc_pass_domain(self, analysis: Analysis) -> str | None:
        """The author domain our own Authentication-Results says passed DMARC, if any."""
        for name, value in analysis.document.headers:
            if name != "authentication-results":
                continue
            if value.split(";", 1)[0].strip().lower() != self.hostname:
                continue
            m = re.search(r"dmarc=pass\b[^;]*header\.from=([\w.-]+)", value, re.IGNORECASE)
            return m.group(1).lower() if m else None
        return None

    async def sync_all(self) -> int:
        taught = 0
        for account in await self.store.list_accounts():
            if not account.disabled:
                taught += await self.sync_account(account)
        return taught

    async def sync_account(self, account: Account) -> int:
        """Learn from every change in the account's mailboxes since the last pass."""
        mailboxes = await self.store.list_mailboxes(account.id)
        positions = await self.store.spam_positions([m.id for m in mailboxes])
        taught = 0
        for mailbox in mailboxes:
            position = positions.get(mailbox.id, 0)
            if mailbox.highestmodseq <= position:
                continue
            changes = await self.store.changes_since(mailbox.id, position)
            records = sorted(changes.updated, key=lambda r: r.modseq)
            done_to = changes.highestmodseq
            budget = max(MAX_LESSONS_PER_PASS - taught, 1)
            if len(records) > budget:
                # stop at a MODSEQ boundary so that the next pass starts exactly there; one
                # STORE on many messages gives them all one MODSEQ, so a group is never split
                cut = max(records[budget].modseq, records[0].modseq + 1)
                records = [r for r in records if r.modseq < cut]
                done_to = cut - 1
            role = _role(mailbox)
            # the ledger's labels for the whole pass in one read, not one per new message
            labels = await self.store.spam_labels_many(account.id, [r.blob_id for r in records])
            learnt: set[str] = set()
            for record in records:
                previous = (labels.get(record.blob_id) if record.blob_id not in learnt
                            # a second copy of the same content in this pass: what the first
                            # one taught counts
                            else await self.store.spam_label(account.id, record.blob_id))
                learnt.add(record.blob_id)
                if await self._learn_record(account, role, record, previous):
                    taught += 1
            await self.store.spam_set_position(mailbox.id, done_to)
            if taught >= MAX_LESSONS_PER_PASS:
                break
        if taught:
            log_event(log, "spam lessons", account=account.address, messages=taught)
        return taught

    async def _learn_record(
        self, account: Account, role: str, record: MessageRecord, previous: str | None
    ) -> bool:
        """Learn one message from where it is and its flags; `previous`: the ledger's label."""
        flags = {f.lower() for f in record.flags}
        label: str | None = None
        if "$notjunk" in flags:
            label = "ham"
        elif "$junk" in flags or role == "junk":
            label = "spam"
        elif role == "trash":
            return False
        elif role == "sent":
            label = "sent"
        elif "\\answered" in flags or role == "archive":
            label = "ham"
        elif previous in ("spam", "filed"):
            label = "ham"  # moved out of Junk
        if label is None or (label == previous) or (label == "sent" and previous is not None):
            return False
        if label == "spam" and role == "junk" and previous == "filed" and "$junk" not in flags:
            return False  # still where the filter put it: nothing new
        try:
            raw = await self.store.read_blob(record.blob_id)
        except Exception:  # noqa: BLE001 - expunged meanwhile: nothing to learn
            return False
        analysis = await self.classifier.analyse(raw[:MAX_MESSAGE_BYTES])
        if label == "spam" and role == "junk" and "$junk" not in flags and _filed_by_filter(analysis):
            label = "filed"
            if previous is not None:
                return False
        if label == "sent":
            contacts = [("contact", a) for a in recipient_addresses(analysis.document)]
            return await self.classifier.learn(account.id, record.blob_id, "ham", analysis,
                                               senders=contacts, server_wide=False)  # fmt: skip
        senders = sender_keys(analysis.document, self.dmarc_pass_domain(analysis))
        return await self.classifier.learn(account.id, record.blob_id, label, analysis,
                                           senders=senders)  # fmt: skip


def messages_in(paths: Iterable[Path]) -> Iterable[tuple[str, bytes]]:
    """(name, raw bytes) of every message in files, Maildirs (cur/ and new/) and mbox files."""
    import mailbox

    for path in paths:
        if path.is_dir():
            if (path / "cur").is_dir() or (path / "new").is_dir():
                for sub in ("new", "cur"):
                    folder = path / sub
                    if folder.is_dir():
                        for item in sorted(folder.iterdir()):
                            if item.is_file():
                                yield str(item), item.read_bytes()
            else:
                for item in sorted(path.iterdir()):
                    if item.is_file():
                        yield from messages_in([item])
            continue
        with path.open("rb") as f:
            head = f.read(5)
        if head == b"From ":
            box = mailbox.mbox(path, create=False)
            try:
                for key in box.iterkeys():
                    yield f"{path}#{key}", box.get_bytes(key)
            finally:
                box.close()
        else:
            yield str(path), path.read_bytes()
