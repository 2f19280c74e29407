"""Sending from the webmail: the same submission session SMTP clients get, minus the socket.

House rules:
- A message written in the browser takes exactly the path of one submitted on port 587: the
  parsed SMTP events go to `smtpd.session.SmtpSession` in submission mode, with the account
  signed in on the web as its authenticated user. So the From:/Sender: policy and send-as
  grants, the Received field, DKIM signing, local delivery and the outbound queue, and the
  "one accepted message, one transaction" rule are SMTP's own, never a second copy of them;
  and nothing goes over SMTP or IMAP to ourselves.
- The copy in Sent is stored only after the submission was accepted (a refused message must
  not look sent); it keeps the Bcc field, which the copy sent never has (RFC 5322 3.6.3).
- Drafts are ordinary messages in the Drafts mailbox flagged \\Draft and \\Seen; saving one
  replaces the previous version (append the new one, then expunge the old).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from mailwright.accounts.directory import Directory
from mailwright.address import AddressError, parse_address
from mailwright.proto.smtp import (
    DataChunk,
    Event,
    Hello,
    MailFrom,
    MailParams,
    MessageEnd,
    MessageStart,
    RcptTo,
    Reply,
)
from mailwright.proto.smtp.address import PathError, parse_path
from mailwright.smtpd.session import Mode, Services, SessionSettings, SmtpSession
from mailwright.store.api import Account, BlobStore, Mailbox, Mailboxes, MessageRecord, StagedBlob
from mailwright.web.roles import WebmailStore

from .compose import ComposeError, Draft, build_message, new_message_id, recipients

CHUNK = 64 * 1024


class SendRefused(Exception):
    """The submission policy refused the message; `reply` is what an SMTP client would see."""

    def __init__(self, reply: Reply, recipient: str | None = None) -> None:
        self.reply = reply
        self.recipient = recipient
        who = f"{recipient}: " if recipient else ""
        super().__init__(f"{who}{reply_text(reply)}")


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: str
    queue_reply: str  # "250 2.0.0 Ok: queued as ..."
    sent_copy: MessageRecord | None


async def special_mailbox(store: Mailboxes, account_id: int, use: str) -> Mailbox | None:
    """The account's mailbox with this SPECIAL-USE attribute (RFC 6154), e.g. "\\Sent"."""
    for box in await store.list_mailboxes(account_id):
        if box.special_use == use:
            return box
    return None


async def identities(store: WebmailStore, directory: Directory, account: Account) -> list[str]:
    """The addresses the account may write as: its own first, then aliases that deliver only
    to it, then the administrator's send-as grants (what the submission policy allows)."""
    own = await directory.addresses_of(account)
    grants = {address for _, address in await store.list_send_as(account.id)}
    rest = sorted((own | grants) - {account.address})
    return [account.address, *rest]


async def _stage(store: BlobStore, data: bytes) -> StagedBlob:
    writer = store.blob_writer()
    try:
        for i in range(0, len(data), CHUNK):
            writer.write(data[i : i + CHUNK])
        return await writer.finish()
    except BaseException:
        writer.abort()
        raise


async def submit(
    services: Services,
    account: Account,
    draft: Draft,
    *,
    peer_ip: str,
    max_message_size: int = 50 * 1024 * 1024,
) -> Sent:
    """Send `draft` as `account` through the submission session; then keep a copy in Sent."""
    rcpts = recipients(draft)
    if not rcpts:
        raise ComposeError("To: at least one recipient is needed")
    hostname = services.hostname
    message_id = new_message_id(hostname)
    now = datetime.now(UTC)
    data, _ = build_message(draft, hostname=hostname, message_id=message_id, date=now)
    if len(data) > max_message_size:
        raise ComposeError(f"the message is larger than {max_message_size} bytes allowed")
    try:
        sender = parse_path(f"<{parse_address(draft.from_addr)}>")
    except (PathError, AddressError) as exc:
        raise ComposeError(f"From: {exc}") from None
    session = SmtpSession(services, SessionSettings(mode=Mode.SUBMISSION,
                                                    max_message_size=max_message_size),
                          peer_ip=peer_ip, tls=True)
    session.account = account  # signed in on the web (same authenticator, same bans)
    try:
        await _expect(session, Hello(name="webmail", extended=True, valid=True))
        await _expect(session, MailFrom(sender, MailParams(size=len(data), body="8BITMIME")))
        for rcpt in rcpts:
            try:
                path = parse_path(f"<{rcpt}>")
            except PathError as exc:
                raise ComposeError(f"{rcpt}: {exc}") from None
            await _expect(session, RcptTo(path), rcpt)
        await _expect(session, MessageStart(chunking=False))
        for i in range(0, len(data), CHUNK):
            await _expect(session, DataChunk(data[i : i + CHUNK]))
        reply = await session.handle(MessageEnd(size=len(data), bare_lf=False))
    finally:
        session.close()
    if reply is None or reply.code >= 400:
        raise SendRefused(reply or Reply(451, "4.3.0", "not accepted"))
    sent_copy = None
    box = await special_mailbox(services.store, account.id, "\\Sent")
    if box is not None:
        copy, _ = build_message(draft, hostname=hostname, message_id=message_id, date=now,
                                keep_bcc=True)
        blob = await _stage(services.store, copy)
        sent_copy = await services.store.append(box.id, blob, ("\\Seen",), now)
    return Sent(message_id, reply_text(reply), sent_copy)


def reply_text(reply: Reply) -> str:
    text = reply.text if isinstance(reply.text, str) else " ".join(reply.text)
    return " ".join(x for x in (str(reply.code), reply.enhanced or "", text) if x)


async def _expect(session: SmtpSession, event: Event, recipient: str | None = None) -> None:
    reply = await session.handle(event)
    if reply is not None and reply.code >= 400:
        raise SendRefused(reply, recipient)


async def save_draft(
    store: WebmailStore,
    account: Account,
    draft: Draft,
    *,
    hostname: str,
    replaces: Sequence[int] = (),
) -> MessageRecord:
    """Store `draft` in Drafts (with Bcc) and drop the versions it replaces."""
    box = await special_mailbox(store, account.id, "\\Drafts")
    if box is None:
        box = await store.get_mailbox(account.id, "Drafts") or await store.create_mailbox(
            account.id, "Drafts", "\\Drafts")
    data, _ = build_message(draft, hostname=hostname, keep_bcc=True,
                            date=datetime.now(UTC)) if draft.from_addr else (b"", "")
    blob = await _stage(store, data)
    record = await store.append(box.id, blob, ("\\Draft", "\\Seen"))
    if replaces:
        await store.expunge(box.id, [uid for uid in replaces if uid != record.uid])
    return record
