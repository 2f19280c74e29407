"""Composing: the message a form describes, and the drafts that replies and forwards start as.

Pure functions over plain data (no store, no HTTP): `build_message` makes the RFC 5322 /
MIME message with the standard library's `email` package (RFC 2047 words for non-ASCII
header text, RFC 2231 file names, quoted-printable or base64 bodies, CRLF line ends);
`reply_draft` and `forward_draft` fill in a form from a message being answered.
"""

from __future__ import annotations

import email.policy
import email.utils
import mimetypes
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from mailwright.address import AddressError, parse_address

from .message import MessageView, Person

# RFC 5322 2.1.1: lines of at most 998 octets; the policy folds headers at 78.
_POLICY = email.policy.SMTP.clone(max_line_length=78)
MAX_RECIPIENTS = 100
MAX_REFERENCES = 20  # RFC 5322 3.6.4 lets the list grow; long threads keep the root and the tail
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_FWD_PREFIX = re.compile(r"^\s*(fwd?|wg|tr)\s*:", re.IGNORECASE)


class ComposeError(ValueError):
    """What the user wrote cannot be sent as it is (the message says what to fix)."""


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Draft:
    """A message being written, as the compose form holds it."""

    from_addr: str = ""
    from_name: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    attachments: tuple[Upload, ...] = field(default=())


def parse_recipients(text: str, what: str) -> list[Person]:
    """A To/Cc/Bcc field as typed: addresses separated by commas (or semicolons, as
    Outlook users write them), with or without display names."""
    text = text.replace(";", ",").replace("\r", " ").replace("\n", " ")
    out: list[Person] = []
    for name, addr in email.utils.getaddresses([text]):
        if not name and not addr:
            continue
        if not addr:
            raise ComposeError(f"{what}: no address in {name!r}")
        try:
            canonical = str(parse_address(addr))
        except AddressError as exc:
            raise ComposeError(f"{what}: {addr!r} is not an address ({exc})") from None
        out.append(Person(name.strip(), canonical))
    return out


def recipients(draft: Draft) -> list[str]:
    """Every envelope recipient (To, Cc and Bcc), once each, in order."""
    seen: dict[str, str] = {}
    for what, text in (("To", draft.to), ("Cc", draft.cc), ("Bcc", draft.bcc)):
        for person in parse_recipients(text, what):
            seen.setdefault(person.address.lower(), person.address)
    if len(seen) > MAX_RECIPIENTS:
        raise ComposeError(f"at most {MAX_RECIPIENTS} recipients")
    return list(seen.values())


def _header_address(person: Person) -> HeaderAddress:
    local, _, domain = person.address.rpartition("@")
    return HeaderAddress(display_name=person.name, username=local, domain=domain)


def new_message_id(hostname: str) -> str:
    return f"<{secrets.token_hex(12)}@{hostname}>"


def build_message(
    draft: Draft,
    *,
    hostname: str,
    message_id: str | None = None,
    date: datetime | None = None,
    keep_bcc: bool = False,
) -> tuple[bytes, str]:
    """The message as bytes (CRLF) and its Message-ID.

    `keep_bcc`: the copy kept in Sent or Drafts shows Bcc; the copy sent never does
    (RFC 5322 3.6.3, the first of the ways it offers)."""
    if not draft.from_addr:
        raise ComposeError("From: choose an address to send as")
    msg = EmailMessage(policy=_POLICY)
    sender = Person(draft.from_name.strip(), str(parse_address(draft.from_addr)))
    msg["From"] = _header_address(sender)
    for name, text in (("To", draft.to), ("Cc", draft.cc), ("Bcc", draft.bcc)):
        people = parse_recipients(text, name)
        if people and (name != "Bcc" or keep_bcc):
            msg[name] = [_header_address(p) for p in people]
    subject = " ".join(draft.subject.split())
    if subject:
        msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date or datetime.now(UTC))
    message_id = message_id or new_message_id(hostname)
    msg["Message-ID"] = message_id
    if draft.in_reply_to:
        msg["In-Reply-To"] = draft.in_reply_to
    if draft.references:
        msg["References"] = " ".join(draft.references)
    msg["MIME-Version"] = "1.0"
    body = draft.body.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    msg.set_content(body, subtype="plain", charset="utf-8", cte=_text_cte(body))
    for att in draft.attachments:
        maintype, _, subtype = (att.content_type or guess_type(att.filename)).partition("/")
        if maintype == "message" or not subtype:
            # message/rfc822 bodies must be 7bit/8bit (RFC 2046 5.2.1): attach as data
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype,
                           filename=att.filename or "attachment")
    data = msg.as_bytes(policy=_POLICY)
    return data, message_id


def _text_cte(body: str) -> str:
    if body.isascii() and all(len(line) <= 900 for line in body.split("\n")):
        return "7bit"
    return "quoted-printable"


def guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream"


# --- replies and forwards --------------------------------------------------------------------


def _quote(view: MessageView) -> str:
    who = str(view.from_[0]) if view.from_ else "someone"
    when = view.date.strftime("%a, %d %b %Y %H:%M") if view.date else ""
    intro = f"On {when}, {who} wrote:" if when else f"{who} wrote:"
    text = (view.text or "").replace("\r\n", "\n").rstrip("\n")
    quoted = "\n".join(("> " + line) if line else ">" for line in text.split("\n"))
    return f"\n\n{intro}\n{quoted}\n"


def _join(people: list[Person]) -> str:
    return ", ".join(str(p) for p in people)


def reply_draft(
    view: MessageView, *, own: set[str], identity: str, reply_all: bool = False
) -> Draft:
    """A reply to `view` (RFC 5322 3.6.4): to its Reply-To or From; with `reply_all`, also to
    its other recipients, except the user's own addresses (`own`, lower-case)."""
    to = list(view.reply_to or view.from_)
    cc: list[Person] = []
    if reply_all:
        taken = {p.address.lower() for p in to} | own
        for person in (*view.to, *view.cc):
            key = person.address.lower()
            if key and key not in taken:
                cc.append(person)
                taken.add(key)
        if not to or all(p.address.lower() in own for p in to):
            # answering one's own message: the reply goes to its recipients
            to, cc = cc, []
    subject = view.subject if _REPLY_PREFIX.match(view.subject) else f"Re: {view.subject}"
    references = list(view.references)
    if view.message_id:
        references.append(view.message_id)
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1):]
    # the author of the message being answered chose the address it went to: answer from it
    reply_from = next((p.address for p in (*view.to, *view.cc) if p.address.lower() in own),
                      identity)
    return Draft(
        from_addr=reply_from, to=_join(to), cc=_join(cc),
        subject=subject, body=_quote(view), in_reply_to=view.message_id,
        references=tuple(references),
    )


def forward_draft(view: MessageView, *, identity: str) -> Draft:
    """A forward of `view`: its text inline; the web layer attaches its attachments."""
    subject = view.subject if _FWD_PREFIX.match(view.subject) else f"Fwd: {view.subject}"
    lines = ["", "", "---------- Forwarded message ----------"]
    if view.from_:
        lines.append(f"From: {_join(list(view.from_))}")
    if view.date:
        lines.append(f"Date: {email.utils.format_datetime(view.date)}")
    lines.append(f"Subject: {view.subject}")
    if view.to:
        lines.append(f"To: {_join(list(view.to))}")
    if view.cc:
        lines.append(f"Cc: {_join(list(view.cc))}")
    lines.append("")
    lines.append((view.text or "").replace("\r\n", "\n"))
    return Draft(from_addr=identity, subject=subject, body="\n".join(lines))


def with_attachments(draft: Draft, extra: list[Upload]) -> Draft:
    return replace(draft, attachments=(*draft.attachments, *extra))
