"""Trace headers written at the SMTP server (RFC 5321 4.4, RFC 3848, RFC 6531 3.7.3).

Every value that came from the client (the EHLO name, the envelope addresses) is reduced to a
safe character set here, so nothing a client says can end a header line or open a new one.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime

_HELO_SAFE = re.compile(r"[^A-Za-z0-9.\-_:\[\]]")
_ADDR_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>]")


def with_protocol(*, esmtp: bool, tls: bool, authenticated: bool, utf8: bool) -> str:
    """The WITH keyword: RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA) and RFC 6531 (UTF8SMTP...)."""
    if not esmtp:
        return "SMTP"
    base = "UTF8SMTP" if utf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def safe_helo(name: str) -> str:
    return _HELO_SAFE.sub("_", name)[:255] or "unknown"


def safe_address(address: str) -> str:
    return _ADDR_UNSAFE.sub("_", address)


def received_header(
    *,
    helo: str,
    peer_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
    when: datetime,
) -> bytes:
    """`Received:` as RFC 5321 4.4 lays it out; `for` only with a single recipient, so the
    header does not disclose the other recipients of a Bcc'd message."""
    ip = f"IPv6:{peer_ip}" if ":" in peer_ip else peer_ip
    lines = [
        f"Received: from {safe_helo(helo)} ([{ip}])",
        f"\tby {safe_helo(hostname)} (Mailwright) with {protocol} id {queue_id}",
    ]
    if recipient is not None:
        lines.append(f"\tfor <{safe_address(recipient)}>;")
        lines.append(f"\t{format_datetime(when)}")
    else:
        lines[-1] += ";"
        lines.append(f"\t{format_datetime(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path_header(sender: str) -> bytes:
    """RFC 5321 4.4: the final delivery records the reverse-path; `<>` for bounces."""
    return f"Return-Path: <{safe_address(sender)}>\r\n".encode()
