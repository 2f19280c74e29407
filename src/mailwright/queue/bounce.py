"""Delivery status notifications (RFC 3464) for the outbound queue: bounces, delay warnings and,
when asked for with NOTIFY=SUCCESS, success and "relayed" reports (RFC 3461 5.2).

A DSN is a multipart/report; report-type=delivery-status (RFC 6522) with three parts: a text a
human reads, a message/delivery-status with one block per recipient, and the original message
(RET=FULL) or only its header (RET=HDRS, the default here and always for delay warnings). UTF-8
addresses switch the report to message/global-delivery-status (RFC 6533 3).

A DSN is never sent to the null reverse-path (RFC 5321 4.5.5, RFC 3464 2), and goes out itself
with a null reverse-path so that it can never cause another one.
"""

from __future__ import annotations

import datetime
import enum
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid

__all__ = ["Action", "DSNRecipient", "build_dsn", "wants_notification"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Action(enum.Enum):
    """RFC 3464 2.3.3."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"


_NOTIFY_WORD = {
    Action.FAILED: "FAILURE",
    Action.DELAYED: "DELAY",
    Action.DELIVERED: "SUCCESS",
    Action.RELAYED: "SUCCESS",
}


def wants_notification(notify: Sequence[str] | None, action: Action) -> bool:
    """Whether a recipient's NOTIFY asks for a report of ``action`` (RFC 3461 4.1).

    Without NOTIFY we report failures and delays, as Postfix and Exim do.
    """
    if notify is None:
        return action in (Action.FAILED, Action.DELAYED)
    words = {n.upper() for n in notify}
    if "NEVER" in words:
        return False
    return _NOTIFY_WORD[action] in words


@dataclass(frozen=True, slots=True)
class DSNRecipient:
    """One per-recipient block of the report (RFC 3464 2.3)."""

    address: str
    action: Action
    status: str  # RFC 3463, e.g. "5.1.1"
    diagnostic: str | None = None  # "smtp; 550 5.1.1 no such user" or plain text of ours
    remote_mta: str | None = None
    original_recipient: tuple[str, str] | None = None  # ORCPT (addr-type, address)
    last_attempt: datetime.datetime | None = None
    will_retry_until: datetime.datetime | None = None  # delay warnings only


def _clean(text: str, limit: int = 900) -> str:
    # Remote reply text ends up in header-like fields: no line breaks, bounded length.
    return _CONTROL.sub(" ", text).strip()[:limit]


def _date(when: datetime.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return format_datetime(when)


def _header_section(message: bytes) -> bytes:
    match = re.search(rb"\r?\n\r?\n", message)
    head = message if match is None else message[: match.start()]
    head = re.sub(rb"\r?\n", b"\r\n", head)
    return head + b"\r\n"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _human_text(
    kind: Action, recipients: Sequence[DSNRecipient], reporting_mta: str,
    will_retry_until: datetime.datetime | None,
) -> str:
    if kind is Action.FAILED:
        intro = (
            f"This is the mail system at host {reporting_mta}.\n\n"
            "Your message could not be delivered to one or more recipients.\n"
            "It is attached below.\n"
        )
    elif kind is Action.DELAYED:
        until = f" until {_date(will_retry_until)}" if will_retry_until else ""
        intro = (
            f"This is the mail system at host {reporting_mta}.\n\n"
            "Your message has not been delivered yet to one or more recipients.\n"
            f"The mail system will keep trying{until}; you do not need to send it again.\n"
        )
    else:
        intro = (
            f"This is the mail system at host {reporting_mta}.\n\n"
            "Your message was delivered or handed on as you asked to be told.\n"
        )
    lines = [intro]
    for r in recipients:
        line = f"<{r.address}>: {r.action.value}"
        if r.remote_mta:
            line += f" (remote host {r.remote_mta})"
        lines.append(line)
        if r.diagnostic:
            lines.append(f"    {_clean(r.diagnostic)}")
    return "\n".join(lines) + "\n"


def _addr_field(address: str) -> str:
    # RFC 6533 3: "utf-8" address type for internationalised addresses.
    return f"utf-8; {address}" if not address.isascii() else f"rfc822; {address}"


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    recipients: Sequence[DSNRecipient],
    original: bytes,
    ret: str | None = None,
    envid: str | None = None,
    arrival_date: datetime.datetime | None = None,
    now: datetime.datetime | None = None,
    max_returned_size: int = 10 * 1024 * 1024,
) -> bytes | None:
    """The report as a complete RFC 5322 message (CRLF), or None when none may be sent.

    None when ``sender`` is the null reverse-path or ``recipients`` is empty. All recipients of
    one report share one kind of action (failed, delayed, or delivered/relayed); the queue makes
    one report per kind.
    """
    if not sender or not recipients:
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    actions = {r.action for r in recipients}
    kind = (
        Action.FAILED if Action.FAILED in actions
        else Action.DELAYED if Action.DELAYED in actions
        else Action.DELIVERED
    )
    subject = {
        Action.FAILED: "Undelivered Mail Returned to Sender",
        Action.DELAYED: "Delayed Mail (still being retried)",
        Action.DELIVERED: "Successful Mail Delivery Report",
    }[kind]
    utf8 = not sender.isascii() or any(not r.address.isascii() for r in recipients)
    boundary = f"=_mailwright_dsn_{secrets.token_hex(12)}"
    domain = reporting_mta or "localhost"
    retry_until = next((r.will_retry_until for r in recipients if r.will_retry_until), None)

    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{domain}>",
        f"To: <{sender}>",
        f"Subject: {subject}",
        f"Date: {_date(now)}",
        f"Message-ID: {make_msgid('dsn', domain=domain)}",
        "Auto-Submitted: auto-replied",  # RFC 3834 5: never answer this automatically
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
    ]
    # RFC 3464 2.2: per-message fields, then one block per recipient, blocks separated by blank lines.
    status_lines = [f"Reporting-MTA: dns; {domain}"]
    if envid:
        status_lines.append(f"Original-Envelope-Id: {_clean(envid, 100)}")
    if arrival_date:
        status_lines.append(f"Arrival-Date: {_date(arrival_date)}")
    for r in recipients:
        block = [""]
        if r.original_recipient:
            addr_type, value = r.original_recipient
            block.append(f"Original-Recipient: {_clean(addr_type, 20)}; {_clean(value, 300)}")
        block.append(f"Final-Recipient: {_addr_field(r.address)}")
        block.append(f"Action: {r.action.value}")
        block.append(f"Status: {r.status}")
        if r.remote_mta:
            block.append(f"Remote-MTA: dns; {_clean(r.remote_mta, 255)}")
        if r.diagnostic:
            diag = _clean(r.diagnostic)
            if not re.match(r"^[A-Za-z0-9-]+; ", diag):
                diag = f"X-Mailwright; {diag}"  # RFC 3464 2.3.6: diagnostic-type; text
            block.append(f"Diagnostic-Code: {diag}")
        if r.last_attempt:
            block.append(f"Last-Attempt-Date: {_date(r.last_attempt)}")
        if r.will_retry_until:
            block.append(f"Will-Retry-Until: {_date(r.will_retry_until)}")
        status_lines.extend(block)

    parts: list[bytes] = []
    parts.append(
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"Content-Description: Notification\r\n\r\n"
        + _crlf(_human_text(kind, recipients, domain, retry_until))
    )
    status_type = "message/global-delivery-status" if utf8 else "message/delivery-status"
    parts.append(
        f"Content-Type: {status_type}\r\nContent-Description: Delivery report\r\n\r\n".encode()
        + _crlf("\n".join(status_lines) + "\n")
    )
    full = ret == "FULL" and kind is Action.FAILED and len(original) <= max_returned_size
    if full:
        body = re.sub(rb"\r?\n", b"\r\n", original)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        ctype = "message/global" if utf8 or not original.isascii() else "message/rfc822"
        parts.append(
            f"Content-Type: {ctype}\r\nContent-Description: Undelivered Message\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n".encode() + body
        )
    else:
        ctype = "message/global-headers" if not _header_section(original).isascii() else \
            "text/rfc822-headers"
        parts.append(
            f"Content-Type: {ctype}\r\nContent-Description: Message headers\r\n\r\n".encode()
            + _header_section(original)
        )

    out = _crlf("\n".join(head) + "\n\n")
    out += b"This is a MIME-encapsulated message.\r\n\r\n"
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part
        if not part.endswith(b"\r\n"):
            out += b"\r\n"
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out
