"""Filter rules, forwarding and a vacation reply as settings, written out as a Sieve script.

The web interface's account pages edit these settings rather than a script; this module turns
them into a Sieve script (RFC 5228 with `fileinto`, `reject` (RFC 5429), `copy` (RFC 3894),
`imap4flags` (RFC 5232) and `vacation` (RFC 5230)) that is stored and activated like any
script a ManageSieve client uploads, so delivery has one filter path.

Round trip: the script carries its settings as JSON in one structured comment
(`# mailwright-rules: {...}`). `parse` reads them back and accepts them only if writing them
out again gives exactly the stored text; a script changed by hand (in the raw editor or by a
filter app) fails that check, and the pages show it read-only instead of overwriting it.

Order in the script: the filter rules first, in the user's order, then the vacation reply,
then forwarding; a rule ending in `stop` (and `discard` or `reject`, which imply it) ends the
script, so mail it matched gets neither a vacation reply nor forwarding.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mailwright.sieve.validator import compile_script

SCRIPT_NAME = "mailwright-rules"
MAX_TEXT = 10_000  # characters of a vacation message
MAX_FILTERS = 50
MAX_CONDITIONS = 5
MAX_ACTIONS = 4
MAX_VALUE = 200  # characters of a condition's value, a folder name, a reject text
MARKER = "# mailwright-rules: "

# what a condition looks at -> the match types it offers
FIELDS = {"from": ("contains", "is", "matches"), "to": ("contains", "is", "matches"),
          "cc": ("contains", "is", "matches"), "subject": ("contains", "is", "matches"),
          "header": ("contains", "is", "matches"), "size": ("over", "under")}
FIELD_NAMES = {"from": "From", "to": "To", "cc": "Cc", "subject": "Subject",
               "header": "Other header", "size": "Size"}
OP_NAMES = {"contains": "contains", "is": "is", "matches": "matches (* and ?)",
            "over": "greater than", "under": "less than"}
# what an action does -> whether it takes a folder, an address, a text, or nothing
ACTIONS = {"move": "folder", "copy": "folder", "flag": "", "read": "", "redirect": "address",
           "redirect_copy": "address", "discard": "", "reject": "text", "stop": ""}
ACTION_NAMES = {"move": "Move to folder", "copy": "Copy to folder", "flag": "Flag",
                "read": "Mark as read", "redirect": "Redirect to (no copy kept)",
                "redirect_copy": "Forward a copy to", "discard": "Discard",
                "reject": "Reject with text", "stop": "Stop (no further rules)"}
# actions are written in this order: flags first, so that they apply to the copy filed by the
# same rule (RFC 5232 3: fileinto and keep use the flags set so far); stop last
_ACTION_ORDER = ("flag", "read", "copy", "redirect_copy", "move", "redirect", "discard", "reject",
                 "stop")
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")  # RFC 5322 2.2: printable ASCII but colon
_SIZE = re.compile(r"[0-9]{1,9}[KMG]?")  # RFC 5228 2.4.1: a number with a quantifier


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # a key of FIELDS
    op: str  # one of FIELDS[field]
    value: str
    header: str = ""  # the field name when `field` is "header"

    def describe(self) -> str:
        what = self.header if self.field == "header" else FIELD_NAMES.get(self.field, "?")
        return f"{what} {OP_NAMES.get(self.op, self.op)} “{self.value}”"


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # a key of ACTIONS
    argument: str = ""  # the folder, the address or the text

    def describe(self) -> str:
        name = ACTION_NAMES.get(self.kind, self.kind)
        return f"{name} “{self.argument}”" if self.argument else name


@dataclass(frozen=True, slots=True)
class Filter:
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    any_of: bool = False  # match any of the conditions rather than all

    def describe(self) -> str:
        joined = (" or " if self.any_of else " and ").join(c.describe() for c in self.conditions)
        return f"If {joined}: " + ", ".join(a.describe() for a in self.actions)


@dataclass(frozen=True, slots=True)
class Rules:
    forward_to: str = ""  # an address, or "" for no forwarding
    keep_copy: bool = True  # forwarded mail is also kept here (redirect :copy)
    vacation: bool = False
    subject: str = ""
    message: str = ""
    days: int = 7  # RFC 5230 4.1: at most one reply per sender in this many days
    addresses: tuple[str, ...] = field(default=())  # the account's other addresses
    filters: tuple[Filter, ...] = field(default=())

    def to_json(self) -> str:
        data = asdict(self)
        data["addresses"] = list(self.addresses)
        return json.dumps(data, ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Rules:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(str(data.get("forward_to", "")), bool(data.get("keep_copy", True)),
                       bool(data.get("vacation", False)), str(data.get("subject", "")),
                       str(data.get("message", "")), int(data.get("days", 7)),
                       tuple(str(a) for a in data.get("addresses", ())),
                       tuple(_filter(f) for f in data.get("filters", ())[:MAX_FILTERS]))
        except (ValueError, TypeError, AttributeError, KeyError):
            return cls()

    @property
    def active(self) -> bool:
        return bool(self.forward_to) or self.vacation or bool(self.filters)


def _filter(data: dict[str, Any]) -> Filter:
    return Filter(
        tuple(Condition(str(c["field"]), str(c["op"]), str(c["value"]), str(c.get("header", "")))
              for c in data["conditions"][:MAX_CONDITIONS]),
        tuple(Action(str(a["kind"]), str(a.get("argument", "")))
              for a in data["actions"][:MAX_ACTIONS]),
        bool(data.get("any_of", False)))


def quote(text: str) -> str:
    """RFC 5228 2.4.2: a quoted string; only backslash and double quote are escaped (line
    breaks may stand as they are, as CRLF)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_filter(rule: Filter) -> str | None:
    """What is wrong with a rule as the user gave it, in words for the page; None if fine.
    (Addresses are checked by the caller, which knows the account and the address grammar.)"""
    if not rule.conditions:
        return "A rule needs at least one condition."
    if len(rule.conditions) > MAX_CONDITIONS or len(rule.actions) > MAX_ACTIONS:
        return f"A rule has at most {MAX_CONDITIONS} conditions and {MAX_ACTIONS} actions."
    for c in rule.conditions:
        if c.op not in FIELDS.get(c.field, ()):
            return "Choose what each condition looks at and how it compares."
        if not c.value or len(c.value) > MAX_VALUE or any(ch in c.value for ch in "\r\n\0"):
            return f"A condition needs a value of one line (at most {MAX_VALUE} characters)."
        if c.field == "header" and not _HEADER_NAME.fullmatch(c.header):
            return "Name the header field (such as List-Id), without a colon."
        if c.field == "size" and not _SIZE.fullmatch(c.value.upper()):
            return "A size is a number of bytes, or with K, M or G (such as 500K)."
    if not rule.actions:
        return "A rule needs at least one action."
    kinds = [a.kind for a in rule.actions]
    if len(set(kinds)) != len(kinds):
        return "Each action at most once in a rule."
    for a in rule.actions:
        takes = ACTIONS.get(a.kind)
        if takes is None:
            return "Choose what each action does."
        if takes and (not a.argument.strip() or len(a.argument) > MAX_VALUE
                      or any(ch in a.argument for ch in "\r\n\0")):
            return f"“{ACTION_NAMES[a.kind]}” needs a {takes} (one line)."
    # RFC 5429 2.1: a rejected message is not also delivered, filed or forwarded
    if "reject" in kinds and set(kinds) - {"reject", "stop"}:
        return "“Reject” cannot be combined with other actions in one rule."
    if "discard" in kinds and set(kinds) & {"move", "copy", "redirect", "redirect_copy"}:
        return "“Discard” and filing or forwarding in one rule contradict each other."
    return None


def _condition(c: Condition) -> str:
    if c.field == "size":
        return f":{c.op} {c.value.upper()}"  # written after "size " by the caller
    if c.field in ("from", "to", "cc") and c.op in ("is", "matches"):
        # the address part of the field (RFC 5228 5.1), so "is a@b" matches "A <a@b>"
        return f'address :all :{c.op} "{c.field}" {quote(c.value)}'
    name = c.header if c.field == "header" else c.field
    return f"header :{c.op} {quote(name)} {quote(c.value)}"


def _test(c: Condition) -> str:
    return "size " + _condition(c) if c.field == "size" else _condition(c)


def _filter_lines(rule: Filter, require: set[str]) -> list[str]:
    tests = [_test(c) for c in rule.conditions]
    if len(tests) == 1:
        head = f"if {tests[0]} {{"
    else:
        head = f"if {'anyof' if rule.any_of else 'allof'} ({', '.join(tests)}) {{"
    body: list[str] = []
    kinds = sorted(rule.actions, key=lambda a: _ACTION_ORDER.index(a.kind))
    for a in kinds:
        if a.kind in ("flag", "read"):
            require.add("imap4flags")
            body.append(f"addflag {quote(chr(92) + ('Flagged' if a.kind == 'flag' else 'Seen'))};")
        elif a.kind == "move":
            require.add("fileinto")
            body.append(f"fileinto {quote(a.argument)};")
        elif a.kind == "copy":
            require.update(("fileinto", "copy"))
            body.append(f"fileinto :copy {quote(a.argument)};")
        elif a.kind == "redirect":
            body.append(f"redirect {quote(a.argument)};")
        elif a.kind == "redirect_copy":
            require.add("copy")
            body.append(f"redirect :copy {quote(a.argument)};")
        elif a.kind == "discard":
            body.append("discard;")
        elif a.kind == "reject":
            require.add("reject")
            body.append(f"reject {quote(a.argument)};")
    if any(a.kind in ("stop", "discard", "reject") for a in rule.actions):
        body.append("stop;")
    return [head, *("    " + line for line in body), "}"]


def script(rules: Rules) -> str:
    """The Sieve script for `rules` (validated: a bug here must not store a broken script)."""
    require: set[str] = set()
    lines: list[str] = []
    for rule in rules.filters:
        lines += _filter_lines(rule, require)
    if rules.vacation:
        require.add("vacation")
        days = max(1, min(rules.days, 90))
        tags = f":days {days}"
        if rules.subject:
            tags += f" :subject {quote(rules.subject[:200])}"
        if rules.addresses:
            tags += " :addresses [" + ", ".join(quote(a) for a in rules.addresses) + "]"
        lines.append(f"vacation {tags} {quote(rules.message[:MAX_TEXT] or 'I am away.')};")
    if rules.forward_to:
        if rules.keep_copy:
            require.add("copy")
            lines.append(f"redirect :copy {quote(rules.forward_to)};")
        else:
            lines.append(f"redirect {quote(rules.forward_to)};")
    head = ["# Written by the Mailwright web interface (Account: Filters, Forwarding and",
            "# vacation); saving there replaces it. Changed by hand, it is left alone.",
            MARKER + rules.to_json()]
    if require:
        head.append("require [" + ", ".join(f'"{r}"' for r in sorted(require)) + "];")
    text = "\r\n".join([*head, *lines]) + "\r\n"
    compile_script(text)
    return text


def parse(text: str) -> Rules | None:
    """The settings a script written by `script` came from; None for any other script (one
    written or changed by hand), which the editor must not take over."""
    normal = text.replace("\r\n", "\n").replace("\n", "\r\n")
    for line in normal.split("\r\n", 4)[:4]:
        if line.startswith(MARKER):
            rules = Rules.from_json(line[len(MARKER):])
            try:
                again = script(rules)
            except Exception:  # noqa: BLE001 - settings that no longer make a valid script
                return None
            return rules if again == normal else None
    return None
