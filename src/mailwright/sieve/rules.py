"""Forwarding and a vacation reply as settings, written out as a Sieve script.

The web interface's account page edits these few settings rather than a script; this module
turns them into a Sieve script (RFC 5228 with `copy`, RFC 3894, and `vacation`, RFC 5230)
that is stored and activated like any script a ManageSieve client uploads, so delivery has
one filter path. The settings are kept as JSON beside the account, so the form shows what was
saved rather than parsing a script back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from mailwright.sieve.validator import compile_script

SCRIPT_NAME = "mailwright-rules"
MAX_TEXT = 10_000  # characters of a vacation message


@dataclass(frozen=True, slots=True)
class Rules:
    forward_to: str = ""  # an address, or "" for no forwarding
    keep_copy: bool = True  # forwarded mail is also kept here (redirect :copy)
    vacation: bool = False
    subject: str = ""
    message: str = ""
    days: int = 7  # RFC 5230 4.1: at most one reply per sender in this many days
    addresses: tuple[str, ...] = field(default=())  # the account's other addresses

    def to_json(self) -> str:
        data = asdict(self)
        data["addresses"] = list(self.addresses)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> Rules:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(str(data.get("forward_to", "")), bool(data.get("keep_copy", True)),
                       bool(data.get("vacation", False)), str(data.get("subject", "")),
                       str(data.get("message", "")), int(data.get("days", 7)),
                       tuple(str(a) for a in data.get("addresses", ())))
        except (ValueError, TypeError, AttributeError):
            return cls()

    @property
    def active(self) -> bool:
        return bool(self.forward_to) or self.vacation


def quote(text: str) -> str:
    """RFC 5228 2.4.2: a quoted string; only backslash and double quote are escaped (line
    breaks may stand as they are, as CRLF)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(rules: Rules) -> str:
    """The Sieve script for `rules` (validated: a bug here must not store a broken script)."""
    require: list[str] = []
    lines: list[str] = []
    if rules.vacation:
        require.append('"vacation"')
        days = max(1, min(rules.days, 90))
        tags = f":days {days}"
        if rules.subject:
            tags += f" :subject {quote(rules.subject[:200])}"
        if rules.addresses:
            tags += " :addresses [" + ", ".join(quote(a) for a in rules.addresses) + "]"
        lines.append(f"vacation {tags} {quote(rules.message[:MAX_TEXT] or 'I am away.')};")
    if rules.forward_to:
        if rules.keep_copy:
            require.append('"copy"')
            lines.append(f"redirect :copy {quote(rules.forward_to)};")
        else:
            lines.append(f"redirect {quote(rules.forward_to)};")
    head = ["# Written by the Mailwright web interface (Account, Forwarding and vacation);",
            "# saving that page again replaces this script."]
    if require:
        head.append(f"require [{', '.join(require)}];")
    text = "\r\n".join([*head, *lines]) + "\r\n"
    compile_script(text)
    return text
