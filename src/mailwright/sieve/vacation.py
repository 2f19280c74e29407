"""Vacation replies (RFC 5230) under the rules for automatic responses (RFC 3834).

`refusal` says why a message must not be answered, or None; `build_reply` writes the reply.
Both are pure: the caller remembers who was answered (per handle and sender, for the period)
and sends the reply with a null envelope sender (RFC 3834 3.3, RFC 5230 5).
"""

from __future__ import annotations

import email.header
import email.utils
import uuid
from collections.abc import Iterable
from datetime import datetime

from .actions import Vacation
from .message import SieveMessage, addresses, decode_header_value

_LIST_HEADERS = ("list-id", "list-help", "list-subscribe", "list-unsubscribe", "list-post",
                 "list-owner", "list-archive")
_RECIPIENT_HEADERS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")


def refusal(message: SieveMessage, sender: str, own: Iterable[str]) -> str | None:
    """Why not to answer `message` (RFC 5230 4.5-4.6, RFC 3834 2), or None to answer it."""
    if not sender:
        return "null sender"
    own_set = {a.lower() for a in own if a}
    if sender.lower() in own_set:
        return "sender is the recipient"
    local = sender.rpartition("@")[0].lower()
    if (local in ("mailer-daemon", "listserv", "majordomo", "postmaster")
            or local.startswith("owner-") or local.endswith("-request")
            or local.startswith("bounce") or local.startswith("noreply")
            or local.startswith("no-reply")):
        return "sender is an automatic address"
    for value in message.values("auto-submitted"):
        if value.split(";")[0].strip().lower() != "no":
            return "message is Auto-Submitted"  # RFC 3834 5
    for value in message.values("precedence"):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return "message is bulk or list mail"
    if any(message.raw_values(h) for h in _LIST_HEADERS):
        return "message is list mail"  # RFC 2369, RFC 2919
    named: set[str] = set()
    for h in _RECIPIENT_HEADERS:
        for raw in message.raw_values(h):
            named.update(a.lower() for a in addresses(raw))
    if not named & own_set:
        return "recipient is not named in To, Cc or Bcc"  # RFC 5230 4.5
    return None


def build_reply(
    action: Vacation,
    message: SieveMessage,
    *,
    sender: str,
    recipient: str,
    hostname: str,
    now: datetime | None = None,
) -> bytes:
    """The reply message (RFC 5230 5)."""
    subject = action.subject
    if subject is None:
        original = message.values("subject")
        subject = "Auto: " + original[0] if original else "Automated reply"
    from_addr = action.from_address or recipient
    msgid = message.values("message-id")
    refs = message.values("references")
    lines = [
        f"From: {_header(from_addr)}",
        f"To: <{sender}>",
        f"Subject: {_header(subject)}",
        f"Date: {email.utils.format_datetime(now or datetime.now().astimezone())}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-replied (vacation)",  # RFC 3834 5.1
        "Precedence: bulk",
    ]
    if msgid:
        lines.append(f"In-Reply-To: {msgid[0]}")  # RFC 5230 5.8
        lines.append(f"References: {(refs[0] + ' ') if refs else ''}{msgid[0]}")
    lines.append("MIME-Version: 1.0")
    head = "\r\n".join(lines) + "\r\n"
    if action.mime:
        # RFC 5230 5.7: the reason is a MIME entity, headers included
        entity = action.reason.replace("\r\n", "\n").replace("\n", "\r\n")
        if not entity.endswith("\r\n"):
            entity += "\r\n"
        return head.encode("utf-8") + entity.encode("utf-8")
    body = action.reason.replace("\r\n", "\n").replace("\n", "\r\n")
    if not body.endswith("\r\n"):
        body += "\r\n"
    head += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    return head.encode("utf-8") + b"\r\n" + body.encode("utf-8")


def _header(value: str) -> str:
    value = decode_header_value(value).replace("\r", " ").replace("\n", " ")
    if value.isascii():
        return value
    return email.header.Header(value, "utf-8").encode()
